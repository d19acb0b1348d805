import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LeaseStatus } from '../edge/status.js';
import type { PrimaryChange } from './cluster.js';
import {
  ControlInputError,
  isControlVerb,
  parseControlCommand,
  type ClusterRegions,
  type ControlCommand,
  type ControlRequest,
} from './control-command.js';
import type { ProcessCluster } from './process-cluster-type.js';

/** Everything `status` prints: URLs of every part, the lease, and what is injected. */
export interface ControlStatus {
  readonly dir: string;
  readonly primaryRegion: string;
  readonly edge: { readonly main: string; readonly regions: Readonly<Record<string, string>>; readonly statusPage: string };
  readonly toxiproxyApi: string;
  /** Absent from a stand-in cluster (tests of the CLI). */
  readonly lease?: LeaseStatus;
  readonly primaryChanges?: readonly PrimaryChange[];
  readonly nodes: readonly {
    readonly region: string;
    readonly instance: string;
    readonly role: string;
    readonly candidate?: boolean;
    readonly leaseHolder?: boolean;
    readonly live?: boolean;
    readonly appUrl: string;
    readonly litefsApi: string;
    readonly position: string | null;
    readonly behindTx: number | null;
    readonly lagMs: number | null;
    readonly injected: string | null;
    readonly log: string;
  }[];
}

/** What the control API drives: the fault verbs, restarts, crashes and handoffs of a cluster. */
export type ControlTarget = Pick<
  ProcessCluster,
  | 'regions'
  | 'primaryRegion'
  | 'instances'
  | 'lease'
  | 'edgeUrl'
  | 'lag'
  | 'bandwidth'
  | 'cut'
  | 'heal'
  | 'restartNode'
  | 'faults'
  | 'kill'
  | 'start'
  | 'handoff'
>;

/** The region of one of our instance names (`fra-2` → `fra`). */
export function regionOfInstance(instance: string): string {
  const dash = instance.lastIndexOf('-');
  return dash > 0 ? instance.slice(0, dash) : instance;
}

/** What a command's target is checked against: the cluster's regions, instances and lease. */
export function clusterShape(cluster: Pick<ControlTarget, 'regions' | 'primaryRegion' | 'instances' | 'lease'>): ClusterRegions {
  return {
    regions: cluster.regions,
    primaryRegion: cluster.primaryRegion,
    instances: cluster.instances.map((instance) => ({ instance, region: regionOfInstance(instance) })),
    lease: cluster.lease.type,
  };
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
      if (!isControlVerb(verb)) return json(res, 404, { error: `unknown control verb ${verb}` });
      const message = await run(cluster, parseControlCommand(verb, parseRequest(body), clusterShape(cluster)));
      json(res, 200, { ok: true, ...(message ? { message } : {}), faults: cluster.faults() });
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
    ...(status.lease ? { lease: status.lease } : {}),
    primaryChanges: status.primaryChanges ?? [],
    nodes: status.nodes.map((s) => {
      const node = cluster.nodes.find((n) => n.instance === s.instance)!;
      return {
        region: s.region,
        instance: s.instance,
        role: s.role,
        candidate: node.candidate,
        leaseHolder: s.leaseHolder ?? false,
        live: s.live,
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

/** Does what the command says; a line to print instead of "ok", when there is more to say. */
async function run(cluster: ControlTarget, command: ControlCommand): Promise<string | undefined> {
  switch (command.verb) {
    case 'lag':
      return cluster.lag(command.target, command.ms, command.jitterMs).then(() => undefined);
    case 'bandwidth':
      return cluster.bandwidth(command.target, command.kbps).then(() => undefined);
    case 'cut':
      return cluster.cut(command.target).then(() => undefined);
    case 'heal':
      return cluster.heal(command.target).then(() => undefined);
    case 'restart':
      return cluster.restartNode(command.target, command.env).then(() => undefined);
    case 'kill':
      return cluster.kill(command.target).then((killed) => `killed ${killed.join(', ')}`);
    case 'start':
      return cluster.start(command.target).then(() => `${command.target} started`);
    case 'handoff':
      return cluster.handoff(command.target).then((primary) => `${primary} holds the lease now`);
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}
