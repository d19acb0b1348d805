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

/**
 * The only variables `restart` may set or remove: the app's own settings
 * (src/config.ts). Anything else (NODE_OPTIONS, PATH, LD_PRELOAD, …) would
 * let a request run code; PORT, DATABASE_URL and FLY_* are the cluster's.
 */
export const CONTROL_ENV_ALLOWED: ReadonlySet<string> = new Set([
  'RYW_WAIT_MS',
  'RYW_FALLBACK',
  'RYW_TTL_S',
  'RYW_ENABLED',
  'RYW_SECRET',
  'LITEFS_API',
  'MIGRATE_TOKEN',
]);

/** What the control API drives: the fault verbs and restarts of a cluster. */
export type ControlTarget = Pick<ProcessCluster, 'regions' | 'edgeUrl' | 'lag' | 'bandwidth' | 'cut' | 'heal' | 'restartNode' | 'faults'>;

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
 * from another terminal. Loopback only, like the edge itself; and since any
 * web page the developer visits can send requests to 127.0.0.1 too, it
 * refuses requests from another origin (403) and POSTs that are not
 * `application/json` (415), which a page can only send cross-origin after a
 * CORS preflight this API never grants.
 */
export function createControlHandler(cluster: ControlTarget, status: () => Promise<ControlStatus>) {
  return async function control(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const verb = (req.url ?? '').split('?')[0]!.replace(/^\/_cluster\/api\//, '');
    const origin = req.headers.origin;
    if (origin !== undefined && !ownOrigins(cluster).has(origin)) {
      return json(res, 403, { error: `requests from ${origin} may not drive the cluster` });
    }
    try {
      if (verb === 'status' && req.method === 'GET') return json(res, 200, await status());
      if (req.method !== 'POST') return json(res, 405, { error: `use POST for ${verb}` });
      if (!isJson(req.headers['content-type'])) {
        return json(res, 415, { error: 'send the request as content-type: application/json' });
      }
      const input = parseRequest(body);
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

/**
 * The edge's own origins, as a browser names them on a page the edge served:
 * its URLs, and the same ports spelled `localhost`.
 */
function ownOrigins(cluster: ControlTarget): Set<string> {
  const origins = new Set<string>();
  for (const url of [cluster.edgeUrl(), ...cluster.regions.map((r) => cluster.edgeUrl(r))]) {
    const parsed = new URL(url);
    origins.add(parsed.origin);
    origins.add(`${parsed.protocol}//localhost${parsed.port ? `:${parsed.port}` : ''}`);
  }
  return origins;
}

/** `application/json`, with or without parameters (`; charset=utf-8`). */
function isJson(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

function parseRequest(body: Buffer): ControlRequest {
  if (body.length === 0) return {};
  const input: unknown = JSON.parse(body.toString('utf8'));
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new Error('the body must be a JSON object');
  return input as ControlRequest;
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

/** `{NAME: value}` (null removes the variable), names from CONTROL_ENV_ALLOWED only. */
function envOf(value: unknown): Record<string, string | undefined> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error('env must be an object');
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!CONTROL_ENV_ALLOWED.has(k)) {
      throw new Error(`env: ${k} cannot be set here (allowed: ${[...CONTROL_ENV_ALLOWED].join(', ')})`);
    }
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new Error(`env: ${k} must be a string, or null to remove it`);
    }
    env[k] = v === null ? undefined : String(v);
  }
  return env;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}
