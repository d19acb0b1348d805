import { formatTxid } from '../src/ryw/position.js';
import { APP_COMMAND, startProcess, type AppProcess } from './support/app-process.js';
import type { BenchCluster } from './support/bench-cluster.js';
import { load, type LoadResult } from './support/load.js';
import { median } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 2. Against LiteFS's built-in proxy, on real LiteFS: a replica's `GET /`
 * served by our app directly (read-your-writes on) vs the same app with
 * read-your-writes off behind LiteFS's proxy (which then does the waiting),
 * and, to isolate the hop, that app straight. Same replica, same requests,
 * the same write's token in each one's format, measured in rotation.
 */

const CONNECTIONS = 10;
export const PROXY_CONFIGS = ['ours, direct (RYW on)', 'LiteFS proxy → app (RYW off)', 'app direct (RYW off, no consistency)'] as const;
export type ProxyConfig = (typeof PROXY_CONFIGS)[number];

export interface ProxyRow {
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
  readonly rows: readonly ProxyRow[];
}

export async function benchLiteFSProxy(bench: BenchCluster, mode: BenchMode): Promise<LiteFSProxyResult> {
  const { cluster } = bench;
  const rounds = mode.quick ? 1 : 4;
  const durationS = mode.quick ? 1 : 3;
  const ewr = cluster.nodes.find((n) => n.region === 'ewr')!;
  if (!ewr.proxyUrl) throw new Error('the bench cluster was started without LiteFS proxies');
  const written = await bench.write();
  await ewr.waitForPosition(written.txid, 10_000);
  const ours = { cookie: written.cookie };
  const litefs = { cookie: `__txid=${formatTxid(written.txid)}` };

  // The app LiteFS execs (the proxy's target) runs with read-your-writes off;
  // ours runs beside it on the same mount, started exactly as LiteFS starts
  // the app (same command, same environment but RYW_ENABLED), so that all
  // three are up at once and can be measured in close alternation.
  let sidecar: AppProcess | null = null;
  const samples = new Map<string, LoadResult[]>();
  try {
    await cluster.restartNode('ewr', { RYW_ENABLED: 'false' });
    sidecar = await startProcess(APP_COMMAND, { ...ewr.env(), RYW_ENABLED: 'true', FLY_MACHINE_ID: 'ewr-2' });
    const configs: { config: ProxyConfig; url: string; token: Record<string, string> }[] = [
      { config: 'ours, direct (RYW on)', url: `${sidecar.url}/`, token: ours },
      { config: 'LiteFS proxy → app (RYW off)', url: `${ewr.proxyUrl}/`, token: litefs },
      { config: 'app direct (RYW off, no consistency)', url: `${ewr.appUrl}/`, token: ours },
    ];
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
          const key = `${c.config}|${tokens}`;
          samples.set(key, [...(samples.get(key) ?? []), result]);
          mode.log(
            `litefs-proxy ${c.config}, ${tokens}, round ${round + 1}: ${Math.round(result.rps)} req/s, p50 ${result.latency.p50.toFixed(2)} ms, p99 ${result.latency.p99.toFixed(2)} ms`,
          );
        }
      }
    }
  } finally {
    await sidecar?.stop();
    await cluster.restartNode('ewr', { RYW_ENABLED: 'true' });
  }
  const rows: ProxyRow[] = [];
  for (const config of PROXY_CONFIGS) {
    for (const tokens of ['no token', 'token met'] as const) {
      const list = samples.get(`${config}|${tokens}`) ?? [];
      const proxy = samples.get(`LiteFS proxy → app (RYW off)|${tokens}`) ?? [];
      rows.push({
        config,
        tokens,
        rps: median(list.map((r) => r.rps)),
        p50: median(list.map((r) => r.latency.p50)),
        p99: median(list.map((r) => r.latency.p99)),
        rpsVsProxy: median(list.map((r, i) => r.rps / proxy[i]!.rps)),
      });
    }
  }
  return { rounds, durationS, connections: CONNECTIONS, rows };
}
