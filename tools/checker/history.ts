import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';

/**
 * The checker's history: one JSON object per line, written as operations
 * complete, so that a run that crashes still leaves what it saw. The first
 * line describes the run; the checker (check.ts) needs nothing else.
 */

export const HISTORY_VERSION = 1;

/** What a session did: the op kinds a history holds. */
export const OP_KINDS = ['write', 'read-form', 'read-home', 'read-article', 'final-read'] as const;
export type OpKind = (typeof OP_KINDS)[number];

export interface RunMeta {
  readonly type: 'meta';
  readonly version: number;
  readonly seed: number;
  readonly startedAt: string;
  /** RYW_WAIT_MS of the apps: what "waited too long" is measured against. */
  readonly budgetMs: number;
  /** How many articles the home page lists (HOME_PAGE_SIZE). */
  readonly homePageSize: number;
  readonly regions: readonly string[];
  readonly primaryRegion: string;
  readonly rywEnabled: boolean;
  /** RYW_FALLBACK per region. */
  readonly fallbacks: Readonly<Record<string, string>>;
  readonly sessions: number;
}

export interface OpRecord {
  readonly type: 'op';
  /** Order of completion in this run. */
  readonly id: number;
  /** `s1`, `s2`, … ; `final` for the end-of-run reads. */
  readonly session: string;
  /** The region the request entered through (the node's region for final reads). */
  readonly region: string;
  readonly kind: OpKind;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Milliseconds since the run started, when the request was sent and when its whole answer was in. */
  readonly start: number;
  readonly end: number;
  /** HTTP status, or null when no answer came (network error, timeout). */
  readonly status: number | null;
  readonly error?: string;
  /** The app's read-your-writes decision (`Server-Timing: ryw;desc=`) of the answer that came back. */
  readonly decision: string | null;
  /** The app's reported wait (`Server-Timing: ryw;dur=`), ms. */
  readonly waitMs: number | null;
  /** The instances the edge sent the request to, in order. */
  readonly hops: readonly string[];
  /** The page said it was served stale (`<body data-ryw="stale">`). */
  readonly stale: boolean;
  /** write: the title sent. read-article/final-read: the title the page showed (null: none). */
  readonly title?: string | null;
  /** write: the id the 303 named (null: not acknowledged). read-article/final-read: the id asked for. */
  readonly articleId?: number | null;
  /** read-home: the article ids the page listed, in order. */
  readonly listed?: readonly number[];
}

export interface NemesisRecord {
  readonly type: 'nemesis';
  readonly time: number;
  readonly action: 'lag' | 'cut' | 'heal';
  /** null: every replica. */
  readonly region: string | null;
  readonly lagMs?: number;
  readonly jitterMs?: number;
}

/** Marks the end of the session phase: final reads follow after healing and syncing. */
export interface PhaseRecord {
  readonly type: 'phase';
  readonly time: number;
  readonly phase: 'sessions-done' | 'synced' | 'final-done';
}

export type HistoryEntry = RunMeta | OpRecord | NemesisRecord | PhaseRecord;

/** Appends entries to a JSONL file as they happen. */
export class HistoryWriter {
  private readonly stream: WriteStream;
  readonly entries: HistoryEntry[] = [];

  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { flags: 'w' });
  }

  append(entry: HistoryEntry): void {
    this.entries.push(entry);
    this.stream.write(`${JSON.stringify(entry)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

/** Reads a history file back; a torn last line (a crash mid-write) is ignored. */
export function readHistory(path: string): HistoryEntry[] {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .map((line, i) => ({ line, number: i + 1 }))
    .filter(({ line }) => line.trim() !== '');
  const entries: HistoryEntry[] = [];
  for (const [i, { line, number }] of lines.entries()) {
    try {
      entries.push(JSON.parse(line) as HistoryEntry);
    } catch (err) {
      if (i === lines.length - 1) break;
      throw new Error(`${path}:${number}: not JSON: ${String(err)}`, { cause: err });
    }
  }
  return entries;
}
