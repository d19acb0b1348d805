import { formatTxid } from '../src/ryw/position.js';
import { APP_COMMAND, startProcess, type AppProcess } from './support/app-process.js';
import type { BenchCluster } from './support/bench-cluster.js';
import { load, type LoadResult } from './support/load.js';
import { rawGet } from './support/raw-http.js';
import { median } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 2. Against LiteFS's built-in proxy, on real LiteFS: a replica's `GET /`
 * served by our app directly (read-your-writes on; the page cache on, and
 * off) vs the same app with read-your-writes off behind LiteFS's proxy
 * (which then does the waiting), and, to isolate the hop, that app straight.
 * Same replica, same requests, the same write's token in each one's format,
 * measured in rotation; twice: the app behind the proxy as it was before the
 * page cache (cache off), and with the cache on.
 */

const CONNECTIONS = 10;
export const PROXY_CONFIGS = [
  'ours, direct (RYW on, cache on)',
  'ours, direct (RYW on, cache off)',
  'LiteFS proxy → app (RYW off)',
  'app direct (RYW off, no consistency)',
] as const;
export type ProxyConfig = (typeof PROXY_CONFIGS)[number];
/** What the app behind LiteFS's proxy (and "app direct") runs with: as before the page cache, or with it. */
export const PROXY_PHASES = ['cache off', 'cache on'] as const;
export type ProxyPhase = (typeof PROXY_PHASES)[number];
/** LiteFS's proxy is measured against this: at least 2× its throughput (issue 13). */
export const PROXY_TARGET = 2;

export interface ProxyRow {
  /** The page cache of the app behind the proxy and of "app direct". */
  readonly phase: ProxyPhase;
  readonly config: ProxyConfig;
  readonly tokens: 'no token' | 'token met';
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** Median over rounds of this configuration's throughput / the proxy's in the same round. */
  readonly rpsVsProxy: number;
}

export interface LiteFSProxyResult {
  readonly rounds: number;
  readonly durationS: number;
  readonly connections: number;
  readonly phases: readonly ProxyPhase[];
  readonly rows: readonly ProxyRow[];
}

const cacheEnv = (on: boolean) => ({ PAGE_CACHE_MB: on ? undefined : '0' });

export async function benchLiteFSProxy(bench: BenchCluster, mode: BenchMode): Promise<LiteFSProxyResult> {
  const { cluster } = bench;
  const rounds = mode.quick ? 1 : 4;
  const durationS = mode.quick ? 1 : 3;
  // Quick: only the comparison the goal is about (the proxy in front of the app as it was).
  const phases = mode.quick ? (['cache off'] as const) : PROXY_PHASES;
  const ewr = cluster.nodes.find((n) => n.region === 'ewr')!;
  if (!ewr.proxyUrl) throw new Error('the bench cluster was started without LiteFS proxies');

  const samples = new Map<string, LoadResult[]>();
  try {
    for (const phase of phases) {
      // The app LiteFS execs (the proxy's target) runs with read-your-writes
      // off; ours runs beside it on the same mount, started exactly as LiteFS
      // starts the app (same command, same environment but RYW_ENABLED and
      // the cache), so that all are up at once and measured in close
      // alternation. Restarting ewr remounts it: the copies beside it start after.
      await cluster.restartNode('ewr', { RYW_ENABLED: 'false', ...cacheEnv(phase === 'cache on') });
      const sidecars: AppProcess[] = [];
      try {
        const sidecar = async (cache: boolean, machine: string) => {
          const env: Record<string, string> = { ...ewr.env(), RYW_ENABLED: 'true', FLY_MACHINE_ID: machine };
          if (cache) delete env.PAGE_CACHE_MB;
          else env.PAGE_CACHE_MB = '0';
          const app = await startProcess(APP_COMMAND, env);
          sidecars.push(app);
          return app;
        };
        const oursOn = await sidecar(true, 'ewr-2');
        const oursOff = phase === 'cache off' ? await sidecar(false, 'ewr-3') : null;
        // Written once every copy follows ewr's stream: each has seen the write arrive (its checksum
        // too, which a token now carries), as a replica that was up when it was made.
        const written = await bench.write();
        await ewr.waitForPosition(written.txid, 10_000);
        const ours = { cookie: written.cookie };
        const litefs = { cookie: `__txid=${formatTxid(written.txid)}` };
        const configs: { config: ProxyConfig; url: string; token: Record<string, string> }[] = [
          { config: 'ours, direct (RYW on, cache on)', url: `${oursOn.url}/`, token: ours },
          ...(oursOff ? [{ config: 'ours, direct (RYW on, cache off)' as const, url: `${oursOff.url}/`, token: ours }] : []),
          { config: 'LiteFS proxy → app (RYW off)', url: `${ewr.proxyUrl}/`, token: litefs },
          { config: 'app direct (RYW off, no consistency)', url: `${ewr.appUrl}/`, token: ours },
        ];
        for (const c of configs) {
          // Served here, at once: else the figures would be of replays or refusals.
          const res = await rawGet(c.url, c.token);
          const timing = String(res.headers['server-timing'] ?? '');
          if (res.status !== 200 || (c.config.startsWith('ours') && !/ryw;desc=fresh/.test(timing)))
            throw new Error(
              `${c.config}, token met: ${res.status}, Server-Timing ${timing || 'none'}, fly-replay ${String(res.headers['fly-replay'] ?? 'none')}`,
            );
        }
        for (const c of configs) await load({ url: c.url, connections: CONNECTIONS, durationS: 1, headers: c.token }); // warm
        for (let round = 0; round < rounds; round++) {
          for (const [tokens, pick] of [
            ['no token', () => ({})],
            ['token met', (c: (typeof configs)[number]) => c.token],
          ] as const) {
            // Rotate who goes first each round, so a trend in the machine's load favours no one.
            const order = configs.map((_, i) => configs[(i + round) % configs.length]!);
            for (const c of order) {
              const result = await load({ url: c.url, connections: CONNECTIONS, durationS, headers: pick(c) });
              if (result.non2xx > 0 || result.errors > 0)
                throw new Error(`${c.config} ${tokens}: ${result.non2xx} non-2xx, ${result.errors} errors`);
              const key = `${phase}|${c.config}|${tokens}`;
              samples.set(key, [...(samples.get(key) ?? []), result]);
              mode.log(
                `litefs-proxy (${phase} behind the proxy) ${c.config}, ${tokens}, round ${round + 1}: ${Math.round(result.rps)} req/s, p50 ${result.latency.p50.toFixed(2)} ms, p99 ${result.latency.p99.toFixed(2)} ms`,
              );
            }
          }
        }
      } finally {
        for (const app of sidecars) await app.stop();
      }
    }
  } finally {
    await cluster.restartNode('ewr', { RYW_ENABLED: 'true' });
  }
  const rows: ProxyRow[] = [];
  for (const phase of phases) {
    for (const config of PROXY_CONFIGS) {
      for (const tokens of ['no token', 'token met'] as const) {
        const list = samples.get(`${phase}|${config}|${tokens}`);
        if (!list) continue;
        const proxy = samples.get(`${phase}|LiteFS proxy → app (RYW off)|${tokens}`) ?? [];
        rows.push({
          phase,
          config,
          tokens,
          rps: median(list.map((r) => r.rps)),
          p50: median(list.map((r) => r.latency.p50)),
          p99: median(list.map((r) => r.latency.p99)),
          rpsVsProxy: median(list.map((r, i) => r.rps / proxy[i]!.rps)),
        });
      }
    }
  }
  return { rounds, durationS, connections: CONNECTIONS, phases, rows };
}
