import { TOKEN_COOKIE } from '../src/ryw/index.js';
import { servedAs } from '../tools/checker/check.js';
import { hiddenFields, SessionClient } from '../tools/checker/session-client.js';
import { mustSignIn } from '../tools/checker/sign-in.js';
import type { BenchCluster } from './support/bench-cluster.js';
import { sleep, summarize, type Summary } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 5. Served where: an author writes through a replica region's edge port and
 * at once reads the home page there, as injected lag on that replica's link
 * goes from 0 to 2 s (RYW_WAIT_MS=500). ewr falls back by replaying to the
 * primary, syd by serving stale (and saying so). Each region's author signs
 * in once, before any lag (signing in is a write too), and each sample
 * starts without the token of the one before, as a new author's would.
 */

export const SERVED_KINDS = ['local', 'waited', 'replayed', 'stale', 'other'] as const;
export type ServedKind = (typeof SERVED_KINDS)[number];

export interface ServedRow {
  readonly region: string;
  readonly fallback: 'replay' | 'stale';
  readonly lagMs: number;
  readonly samples: number;
  readonly counts: Readonly<Record<ServedKind, number>>;
  /** Read round trips through the edge (ms). */
  readonly latency: Summary;
}

export interface ServedWhereResult {
  readonly lags: readonly number[];
  readonly samplesPerCell: number;
  readonly rows: readonly ServedRow[];
}

const kindOf = (served: string): ServedKind =>
  served === 'fresh' || served === 'none' ? 'local' : served === 'waited' || served === 'replayed' || served === 'stale' ? served : 'other';

export async function benchServedWhere(bench: BenchCluster, mode: BenchMode): Promise<ServedWhereResult> {
  const { cluster } = bench;
  const lags = mode.quick ? [0, 500, 2_000] : [0, 100, 250, 400, 500, 750, 1_000, 1_500, 2_000];
  const samplesPerCell = mode.quick ? 2 : 20;
  const regions = [
    { region: 'ewr', fallback: 'replay' as const },
    { region: 'syd', fallback: 'stale' as const },
  ];
  const rows: ServedRow[] = [];
  try {
    await Promise.all(regions.map(({ region }) => cluster.lag(region, 0)));
    const authors = new Map<string, SessionClient>();
    for (const { region } of regions) {
      const author = new SessionClient(() => performance.now());
      await mustSignIn(author, cluster.edgeUrl(region));
      authors.set(region, author);
    }
    for (const lagMs of lags) {
      for (const { region } of regions) await cluster.lag(region, lagMs);
      await sleep(lagMs + 200); // let anything sent before the change drain through
      const cells = await Promise.all(
        regions.map(async ({ region, fallback }): Promise<ServedRow> => {
          const counts = Object.fromEntries(SERVED_KINDS.map((k) => [k, 0])) as Record<ServedKind, number>;
          const latencies: number[] = [];
          const base = cluster.edgeUrl(region);
          const author = authors.get(region)!;
          for (let i = 0; i < samplesPerCell; i++) {
            author.forget(TOKEN_COOKIE);
            const form = await author.get(`${base}/new`);
            if (form.status !== 200) throw new Error(`GET /new via ${region} answered ${form.status}`);
            const post = await author.postForm(`${base}/new`, {
              ...hiddenFields(form.body),
              title: `Served-where ${region} ${lagMs} ${i}`,
              content: 'A sample for the served-where benchmark.',
            });
            if (post.status !== 303) throw new Error(`POST /new via ${region} answered ${post.status}`);
            const read = await author.get(`${base}/`);
            counts[kindOf(servedAs(read))]++;
            latencies.push(read.doneAt - read.sentAt);
            await sleep(20);
          }
          return { region, fallback, lagMs, samples: samplesPerCell, counts, latency: summarize(latencies) };
        }),
      );
      for (const row of cells) {
        mode.log(
          `served-where lag ${lagMs} ms ${row.region} (${row.fallback}): ${SERVED_KINDS.filter((k) => row.counts[k] > 0)
            .map((k) => `${k} ${row.counts[k]}`)
            .join(', ')}; p50 ${Math.round(row.latency.p50)} ms`,
        );
        rows.push(row);
      }
    }
  } finally {
    await cluster.heal();
  }
  return { lags, samplesPerCell, rows };
}
