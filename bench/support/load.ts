import autocannon from 'autocannon';
import { summarize, type Summary } from './stats.js';

export interface LoadOptions {
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly durationS: number;
  /** The status that counts as answered (default: any 2xx); e.g. 304 for conditional GETs. */
  readonly status?: number;
}

export interface LoadResult {
  /** Answered responses (2xx, or the expected status) per second. */
  readonly rps: number;
  /** Per-request latency in ms, measured by autocannon with hrtime (not its integer-ms histogram). */
  readonly latency: Summary;
  /** Responses of any other status. */
  readonly non2xx: number;
  readonly errors: number;
}

/**
 * Drives one URL with autocannon for a fixed time. Latencies come from each
 * response's own hrtime duration, so sub-millisecond differences survive.
 */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let ok = 0;
  let finish!: (result: autocannon.Result) => void;
  let fail!: (err: Error) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const instance = autocannon(
    { url: options.url, connections: options.connections, duration: options.durationS, headers: { ...options.headers } },
    (err: Error | null, result) => (err ? fail(err) : finish(result)),
  );
  const answered = (status: number) => (options.status === undefined ? status >= 200 && status < 300 : status === options.status);
  let other = 0;
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (answered(statusCode)) {
      ok++;
      latencies.push(responseTime);
    } else other++;
  });
  const result = await done;
  return {
    rps: ok / result.duration,
    latency: summarize(latencies),
    non2xx: other,
    errors: result.errors + result.timeouts,
  };
}
