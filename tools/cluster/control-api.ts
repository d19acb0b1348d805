import type { IncomingMessage, ServerResponse } from 'node:http';
import { ControlInputError, isControlVerb, parseControlCommand, type ControlCommand, type ControlRequest } from './control-command.js';
import type { ProcessCluster } from './process-cluster-type.js';

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

/** What the control API drives: the fault verbs and restarts of a cluster. */
export type ControlTarget = Pick<
  ProcessCluster,
  'regions' | 'primaryRegion' | 'edgeUrl' | 'lag' | 'bandwidth' | 'cut' | 'heal' | 'restartNode' | 'faults'
>;

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
      if (!isControlVerb(verb)) return json(res, 404, { error: `unknown control verb ${verb}` });
      await run(cluster, parseControlCommand(verb, parseRequest(body), cluster));
      json(res, 200, { ok: true, faults: cluster.faults() });
    } catch (err) {
      // The caller's mistake is a 400; the cluster failing to do it (Toxiproxy, a node) is not.
      json(res, err instanceof ControlInputError ? 400 : 500, { error: err instanceof Error ? err.message : String(err) });
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
  let input: unknown;
  try {
    input = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ControlInputError('the body is not JSON');
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ControlInputError('the body must be a JSON object');
  return input;
}

async function run(cluster: ControlTarget, command: ControlCommand): Promise<void> {
  switch (command.verb) {
    case 'lag':
      return cluster.lag(command.region, command.ms, command.jitterMs);
    case 'bandwidth':
      return cluster.bandwidth(command.region, command.kbps);
    case 'cut':
      return cluster.cut(command.region);
    case 'heal':
      return cluster.heal(command.region);
    case 'restart':
      return cluster.restartNode(command.region, command.env);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}
