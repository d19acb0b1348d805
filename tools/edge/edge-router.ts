import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import { isLive, nodeInRegion, type EdgeNode } from './edge-node.js';
import { FLY_REPLAY, FLY_REPLAY_SRC, formatReplaySource, nowMicros, parseFlyReplay } from '../../src/ryw/fly-replay.js';
import { bufferRequestBody, DEFAULT_MAX_BODY_BYTES } from './request-body.js';
import { basicStatus, type EdgeStatus } from './status.js';
import { STATUS_PAGE_HTML } from './status-page.js';

/** Fly.io gives up after a handful of replays; 10 is plenty for any real chain. */
export const DEFAULT_MAX_REPLAYS = 10;
/** The header a client sets on the main port to pick a region (Fly honours it too). */
export const PREFER_REGION_HEADER = 'fly-prefer-region';
/** Everything under this path is the edge's own, never proxied. */
export const CLUSTER_PATH = '/_cluster';
/** How long the edge waits for an app's response headers. */
export const DEFAULT_PROXY_TIMEOUT_MS = 60_000;
/**
 * `Retry-After` of a replay whose target is down or cannot be reached: the
 * primary a replica names has just crashed, and a new one is being elected
 * (seconds). A 503 says "try again", which a 502 does not.
 */
export const REPLAY_UNREACHABLE_RETRY_AFTER_S = 1;
/** Connection errors that mean the target is not there (crashed, restarting), not that it answered wrongly. */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

export interface EdgeOptions {
  /** The nodes, asked on every request so that a restarted node is picked up. */
  readonly nodes: () => readonly EdgeNode[];
  /** Where the main port sends requests without `fly-prefer-region`. */
  readonly primaryRegion: string;
  /** Defaults to 127.0.0.1: the edge stands for Fly's proxy on this machine only. */
  readonly host?: string;
  /** The main port (0 for any free one). */
  readonly mainPort: number;
  /** One port per region (0 for any free one): "a user near that region". */
  readonly regionPorts: Readonly<Record<string, number>>;
  readonly maxReplays?: number;
  readonly maxBodyBytes?: number;
  readonly proxyTimeoutMs?: number;
  /** Feeds `/_cluster/status.json`; defaults to asking each node's `/healthz`. */
  readonly status?: () => Promise<EdgeStatus>;
  /** Handles `/_cluster/api/…` (fault injection, for a test cluster); 404 without it. */
  readonly control?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>;
}

export interface Edge {
  readonly mainUrl: string;
  /** The per-region URLs, in the order of the regions given. */
  readonly regionUrls: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'];

/**
 * Starts an edge router that does on one machine what Fly.io's proxy does in
 * production: routes a user to a live node of their region (any one, at
 * random, when the region has several) and honours the apps' `fly-replay`
 * answers by replaying the buffered request elsewhere: `instance=` to that
 * exact machine, whichever is primary now, `region=` to any live one there.
 *
 * @example
 * const edge = await startEdge({
 *   nodes: () => [{ instance: 'fra-1', region: 'fra', url: 'http://127.0.0.1:9001' }],
 *   primaryRegion: 'fra', mainPort: 8080, regionPorts: { fra: 8081 },
 * });
 */
export async function startEdge(options: EdgeOptions): Promise<Edge> {
  const host = options.host ?? '127.0.0.1';
  const maxReplays = options.maxReplays ?? DEFAULT_MAX_REPLAYS;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  // No keep-alive to the apps: a connection costs ~0.1 ms on loopback, and a
  // pooled one can race an app's idle timeout or restart (a spurious 502).
  const agent = new http.Agent({ keepAlive: false });
  const proxy = httpProxy.createProxyServer({
    selfHandleResponse: true,
    xfwd: false,
    agent,
    proxyTimeout: options.proxyTimeoutMs ?? DEFAULT_PROXY_TIMEOUT_MS,
  });
  // http-proxy reports responses on the server, not per call: each request in
  // flight registers what to do with its current attempt's response here.
  const onResponse = new WeakMap<IncomingMessage, (proxyRes: IncomingMessage) => void>();
  proxy.on('proxyRes', (proxyRes, req) => onResponse.get(req)?.(proxyRes));

  const servers: http.Server[] = [];
  const regionUrls: Record<string, string> = {};
  let mainUrl = '';

  const statusOf = async (): Promise<EdgeStatus> =>
    options.status ? options.status() : basicStatus(options.nodes(), options.primaryRegion, mainUrl, regionUrls);

  const handle = async (req: IncomingMessage, res: ServerResponse, entryRegion: string | undefined): Promise<void> => {
    const started = performance.now();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === CLUSTER_PATH || path.startsWith(`${CLUSTER_PATH}/`)) {
      await serveCluster(req, res, path, statusOf, options.control, maxBodyBytes);
      return;
    }
    const buffered = await bufferRequestBody(req, maxBodyBytes);
    if (!buffered.ok) {
      if (buffered.reason === 'too-large') {
        plain(res, 413, `edge: request bodies over ${maxBodyBytes} bytes cannot be replayed\n`, { connection: 'close' });
      } else {
        res.destroy();
      }
      return;
    }
    const nodes = options.nodes();
    const region = pickRegion(req, entryRegion, nodes, options.primaryRegion);
    const first = nodeInRegion(nodes, region);
    if (!first) {
      plain(res, 502, `edge: no live node in region ${region}\n`);
      return;
    }
    prepareHeaders(req, entryRegion ?? region, buffered.body.length);
    // http-proxy adds 'error' and 'aborted' listeners to the request per attempt.
    req.setMaxListeners(2 * (maxReplays + 1) + 10);
    const hops: string[] = [];

    const forward = (node: EdgeNode, replays: number, replaySrc: string | undefined): void => {
      hops.push(node.instance);
      onResponse.set(req, (proxyRes) => {
        const replay = proxyRes.headers[FLY_REPLAY];
        if (typeof replay === 'string' && replay !== '') {
          proxyRes.resume(); // Fly discards the body of a replay answer
          const next = resolveReplay(replay, node, options.nodes());
          if (!next.ok) {
            if (next.down) unreachable(res, `edge: ${next.reason}; try again in a moment\n`);
            else plain(res, 502, `edge: ${next.reason}\n`);
          } else if (replays >= maxReplays) {
            plain(res, 508, `edge: gave up after ${maxReplays} replays (${hops.join(' > ')})\n`);
          } else {
            const src = formatReplaySource({
              instance: node.instance,
              region: node.region,
              timeMicros: nowMicros(),
              ...(next.state !== undefined ? { state: next.state } : {}),
            });
            forward(next.node, replays + 1, src);
          }
          return;
        }
        relayResponse(proxyRes, res, hops, performance.now() - started);
      });
      const headers: Record<string, string> = replaySrc !== undefined ? { [FLY_REPLAY_SRC]: replaySrc } : {};
      const body = Readable.from(buffered.body.length > 0 ? [buffered.body] : []);
      proxy.web(req, res, { target: node.url, buffer: body, headers }, (err) => {
        if (res.headersSent) return void res.destroy();
        const code = errorCode(err);
        // A replay's target named by another instance, gone (the primary just
        // crashed and a replica still names it): try again once one is elected.
        if (replays > 0 && UNREACHABLE_CODES.has(code)) {
          unreachable(res, `edge: ${node.instance} cannot be reached (${code}); try again in a moment\n`);
        } else plain(res, 502, `edge: ${node.instance} unreachable: ${code}\n`);
      });
    };
    forward(first, 0, undefined);
  };

  const listen = async (port: number, entryRegion: string | undefined): Promise<string> => {
    const server = http.createServer((req, res) => {
      handle(req, res, entryRegion).catch((err: unknown) => {
        if (!res.headersSent) plain(res, 500, `edge: ${err instanceof Error ? err.message : String(err)}\n`);
        else res.destroy();
      });
    });
    server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
      // WebSockets pass through to the routed node; they are never replayed.
      const nodes = options.nodes();
      const node = nodeInRegion(nodes, pickRegion(req, entryRegion, nodes, options.primaryRegion));
      if (!node) {
        socket.destroy();
        return;
      }
      proxy.ws(req, socket, head, { target: node.url }, () => socket.destroy());
    });
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return `http://${host}:${(server.address() as AddressInfo).port}`;
  };

  try {
    mainUrl = await listen(options.mainPort, undefined);
    for (const [region, port] of Object.entries(options.regionPorts)) {
      regionUrls[region] = await listen(port, region);
    }
  } catch (err) {
    await closeAll(servers);
    throw err;
  }

  return {
    mainUrl,
    regionUrls,
    async close() {
      await closeAll(servers);
      proxy.close();
      agent.destroy();
    },
  };
}

/** Per-region ports pin the region; the main port honours `fly-prefer-region` for a known region. */
function pickRegion(req: IncomingMessage, entryRegion: string | undefined, nodes: readonly EdgeNode[], primaryRegion: string): string {
  if (entryRegion !== undefined) return entryRegion;
  const preferred = req.headers[PREFER_REGION_HEADER];
  if (typeof preferred === 'string' && nodes.some((n) => n.region === preferred.trim())) return preferred.trim();
  return primaryRegion;
}

/**
 * Headers set once per client request, before the first hop: a client must
 * not be able to forge `fly-replay-src` (it would suppress replays), and the
 * forwarding headers must not grow on every replay.
 */
function prepareHeaders(req: IncomingMessage, edgeRegion: string, bodyLength: number): void {
  delete req.headers[FLY_REPLAY_SRC];
  // The body is sent again from memory, so its length is known now.
  delete req.headers['transfer-encoding'];
  if (bodyLength > 0) req.headers['content-length'] = String(bodyLength);
  req.headers['fly-region'] = edgeRegion;
  const remote = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  req.headers['x-forwarded-for'] = prior ? `${String(prior)}, ${remote}` : remote;
  // As Fly's edge does: the client's address, from the connection, whatever the client sent.
  req.headers['fly-client-ip'] = remote;
  req.headers['x-forwarded-proto'] ??= 'http';
  if (req.headers.host) req.headers['x-forwarded-host'] ??= req.headers.host;
}

function resolveReplay(
  value: string,
  from: EdgeNode,
  nodes: readonly EdgeNode[],
): { ok: true; node: EdgeNode; state?: string } | { ok: false; reason: string; down?: true } {
  const parsed = parseFlyReplay(value);
  if (!parsed.ok) return parsed;
  const { target } = parsed;
  if ('instance' in target) {
    const named = nodes.find((n) => n.instance === target.instance);
    if (!named) return { ok: false, reason: `${from.instance} asked to replay to ${value}, which names no known node` };
    // As on Fly.io: that machine or nothing (a write must not land on another one).
    if (!isLive(named)) return { ok: false, reason: `${from.instance} asked to replay to ${value}, which is down`, down: true };
    return { ok: true, node: named, ...(target.state !== undefined ? { state: target.state } : {}) };
  }
  const node = nodeInRegion(nodes, target.region, target.elsewhere ? from.instance : undefined);
  if (!node) return { ok: false, reason: `${from.instance} asked to replay to ${value}, which has no live node` };
  return { ok: true, node, ...(target.state !== undefined ? { state: target.state } : {}) };
}

/** Sends the app's answer on, naming the hops in a `Server-Timing: edge` entry. */
function relayResponse(proxyRes: IncomingMessage, res: ServerResponse, hops: readonly string[], ms: number): void {
  const headers: http.OutgoingHttpHeaders = { ...proxyRes.headers };
  for (const name of HOP_BY_HOP) delete headers[name];
  const edgeTiming = `edge;desc="${hops.join('>')}";dur=${ms.toFixed(1)}`;
  const timing = headers['server-timing'];
  headers['server-timing'] = timing ? `${String(timing)}, ${edgeTiming}` : edgeTiming;
  res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, headers);
  proxyRes.pipe(res);
}

async function serveCluster(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  status: () => Promise<EdgeStatus>,
  control: EdgeOptions['control'],
  maxBodyBytes: number,
): Promise<void> {
  if (path === CLUSTER_PATH || path === `${CLUSTER_PATH}/`) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(STATUS_PAGE_HTML);
  } else if (path === `${CLUSTER_PATH}/status.json`) {
    const body = JSON.stringify(await status());
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(body);
  } else if (path.startsWith(`${CLUSTER_PATH}/api/`) && control) {
    const buffered = await bufferRequestBody(req, maxBodyBytes);
    if (!buffered.ok) return plain(res, 413, 'too large\n');
    await control(req, res, buffered.body);
  } else {
    plain(res, 404, 'not found\n');
  }
}

function plain(res: ServerResponse, status: number, text: string, extra: http.OutgoingHttpHeaders = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...extra });
  res.end(text);
}

/** 503 with `Retry-After`: the replay's target is down or unreachable for now. */
function unreachable(res: ServerResponse, text: string): void {
  plain(res, 503, text, { 'retry-after': String(REPLAY_UNREACHABLE_RETRY_AFTER_S) });
}

function errorCode(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

async function closeAll(servers: readonly http.Server[]): Promise<void> {
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    ),
  );
}
