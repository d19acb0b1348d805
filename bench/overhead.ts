import { signToken, tokenPayload } from '../src/ryw/token.js';
import { BENCH_SECRET, FakeReplicaDir, startReplicaApp, type AppProcess } from './support/app-process.js';
import { load, type LoadResult } from './support/load.js';
import { median } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 1. Overhead: replica `GET /` with the read-your-writes layer on vs the same
 * app with it off (RYW_ENABLED=false), without a token and with a token the
 * replica has already met. Both apps run side by side over one fake LiteFS
 * directory and are measured in alternation, so drift hits both alike.
 */

export const OVERHEAD_TARGETS = { 'no token': 0.97, 'token met': 0.95 } as const;
const POSITION = 1_000n;
const CONNECTIONS = 10;

export interface OverheadCase {
  readonly name: keyof typeof OVERHEAD_TARGETS;
  readonly target: number;
  readonly off: { rps: number; p50: number; p99: number };
  readonly on: { rps: number; p50: number; p99: number };
  /** on / off, per round, median over rounds: 1.0 means no cost. */
  readonly rpsRatio: number;
  /** off p99 / on p99, per round, median over rounds: 1.0 means no cost. */
  readonly p99Ratio: number;
  readonly decisionOn: string;
}

export interface OverheadResult {
  readonly rounds: number;
  readonly durationS: number;
  readonly connections: number;
  readonly articles: number;
  readonly cases: readonly OverheadCase[];
}

export async function benchOverhead(mode: BenchMode): Promise<OverheadResult> {
  const rounds = mode.quick ? 1 : 8;
  const durationS = mode.quick ? 1 : 3;
  const articles = 60;
  const dir = new FakeReplicaDir(articles, POSITION);
  const apps: { on: AppProcess | null; off: AppProcess | null } = { on: null, off: null };
  try {
    apps.on = await startReplicaApp(dir, { RYW_ENABLED: 'true' });
    apps.off = await startReplicaApp(dir, { RYW_ENABLED: 'false' });
    const token = signToken(tokenPayload(POSITION, Date.now()), [BENCH_SECRET]);
    const requests = {
      'no token': {},
      'token met': { cookie: `ryw=${encodeURIComponent(token)}` },
    } as const;

    const decisionOf = async (url: string, headers: Record<string, string>): Promise<string> => {
      const res = await fetch(`${url}/`, { headers });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`GET / answered ${res.status}`);
      return /ryw;desc=([a-z]+)/.exec(res.headers.get('server-timing') ?? '')?.[1] ?? 'none';
    };
    const decisions = {
      'no token': await decisionOf(apps.on.url, requests['no token']),
      'token met': await decisionOf(apps.on.url, requests['token met']),
    };
    if (decisions['token met'] !== 'fresh') throw new Error(`token met: the app decided ${decisions['token met']}, expected fresh`);

    // Warm both (JIT, SQLite page cache) before anything counts.
    for (const app of [apps.off, apps.on]) await load({ url: `${app.url}/`, connections: CONNECTIONS, durationS: 1 });

    const samples = new Map<string, LoadResult[]>();
    for (let round = 0; round < rounds; round++) {
      for (const name of Object.keys(requests) as (keyof typeof requests)[]) {
        // Alternate who goes first, so a trend in the machine's load favours neither.
        const order = round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
        for (const which of order) {
          const app = apps[which]!;
          const result = await load({ url: `${app.url}/`, headers: requests[name], connections: CONNECTIONS, durationS });
          if (result.non2xx > 0 || result.errors > 0)
            throw new Error(`${which}/${name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
          const key = `${which}/${name}`;
          samples.set(key, [...(samples.get(key) ?? []), result]);
          mode.log(`overhead ${key} round ${round + 1}: ${Math.round(result.rps)} req/s, p99 ${result.latency.p99.toFixed(2)} ms`);
        }
      }
    }
    const pick = (key: string) => {
      const list = samples.get(key)!;
      return {
        rps: median(list.map((r) => r.rps)),
        p50: median(list.map((r) => r.latency.p50)),
        p99: median(list.map((r) => r.latency.p99)),
      };
    };
    const cases = (Object.keys(requests) as (keyof typeof requests)[]).map((name): OverheadCase => {
      const off = pick(`off/${name}`);
      const on = pick(`on/${name}`);
      // Ratios within a round (measured seconds apart), then the median over rounds: drift cancels.
      const offs = samples.get(`off/${name}`)!;
      const ons = samples.get(`on/${name}`)!;
      return {
        name,
        target: OVERHEAD_TARGETS[name],
        off,
        on,
        rpsRatio: median(ons.map((r, i) => r.rps / offs[i]!.rps)),
        p99Ratio: median(ons.map((r, i) => offs[i]!.latency.p99 / r.latency.p99)),
        decisionOn: decisions[name],
      };
    });
    return { rounds, durationS, connections: CONNECTIONS, articles, cases };
  } finally {
    await apps.on?.stop();
    await apps.off?.stop();
    dir.remove();
  }
}
