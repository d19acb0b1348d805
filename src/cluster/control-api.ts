import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProcessCluster } from './process-cluster.js';

/** Everything `status` prints: URLs of every part, and what is injected. */
export interface ControlStatus {
  readonly dir: string;
  readonly primaryRegion: string;
  readonly edge: { readonly main: string; readonly regions: Readonly<Record<string, string>>; readonly statusPage: string };
  readonly toxiproxyApi: string;
  readonly nodes: readonly {
    readonly region: string;
    readonly instance: string;
    readonly role: string;
    readonly appUrl: string;
    readonly litefsApi: string;
    readonly position: string | null;
    readonly behindTx: number | null;
    readonly lagMs: number | null;
    readonly injected: string | null;
    readonly log: string;
  }[];
}

interface ControlRequest {
  region?: unknown;
  ms?: unknown;
  jitter?: unknown;
  kbps?: unknown;
  env?: unknown;
}

/**
 * The running cluster's control API, served by the edge under
 * `/_cluster/api/`: what the CLI's `lag`, `cut`, `heal` and `status` verbs call
 * from another terminal. Loopback only, like the edge itself.
 */
export function createControlHandler(cluster: ProcessCluster) {
  return async function control(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const verb = (req.url ?? '').split('?')[0]!.replace(/^\/_cluster\/api\//, '');
    try {
      if (verb === 'status' && req.method === 'GET') return json(res, 200, await controlStatus(cluster));
      if (req.method !== 'POST') return json(res, 405, { error: `use POST for ${verb}` });
      const input = (body.length > 0 ? JSON.parse(body.toString('utf8')) : {}) as ControlRequest;
      const region = typeof input.region === 'string' ? input.region : undefined;
      switch (verb) {
        case 'lag':
          await cluster.lag(required(region, 'region'), number(input.ms, 'ms'), input.jitter === undefined ? 0 : number(input.jitter, 'jitter'));
          break;
        case 'bandwidth':
          await cluster.bandwidth(required(region, 'region'), input.kbps === null ? null : number(input.kbps, 'kbps'));
          break;
        case 'cut':
          await cluster.cut(required(region, 'region'));
          break;
        case 'heal':
          await cluster.heal(region);
          break;
        case 'restart':
          await cluster.restartNode(required(region, 'region'), envOf(input.env));
          break;
        default:
          return json(res, 404, { error: `unknown control verb ${verb}` });
      }
      json(res, 200, { ok: true, faults: cluster.faults() });
    } catch (err) {
      json(res, 400, { error: err instanceof Error ? err.message : String(err) });
    }
  };
}

export async function controlStatus(cluster: ProcessCluster): Promise<ControlStatus> {
  const status = await cluster.status();
  return {
    dir: cluster.dir,
    primaryRegion: cluster.primaryRegion,
    edge: {
      main: cluster.edgeUrl(),
      regions: Object.fromEntries(cluster.regions.map((r) => [r, cluster.edgeUrl(r)])),
      statusPage: `${cluster.edgeUrl()}/_cluster`,
    },
    toxiproxyApi: cluster.toxiproxyApi,
    nodes: status.nodes.map((s) => {
      const node = cluster.nodes.find((n) => n.region === s.region)!;
      return {
        region: s.region,
        instance: s.instance,
        role: s.role,
        appUrl: s.appUrl,
        litefsApi: node.litefsApiUrl,
        position: s.position,
        behindTx: s.behindTx,
        lagMs: s.lagMs,
        injected: s.injected,
        log: node.logFile,
      };
    }),
  };
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new Error(`missing ${name}`);
  return value;
}

function number(value: unknown, name: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number >= 0, got ${JSON.stringify(value)}`);
  return n;
}

function envOf(value: unknown): Record<string, string | undefined> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object') throw new Error('env must be an object');
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(value)) env[k] = v === null ? undefined : String(v);
  return env;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}
