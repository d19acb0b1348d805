/** How long each benchmark runs: `--quick` (a smoke test, seconds) or full (the published figures). */
export interface BenchMode {
  readonly quick: boolean;
  readonly log: (line: string) => void;
}
