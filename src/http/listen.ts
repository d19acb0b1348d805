import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The request line and headers must have arrived within this (else 408 and
 * the connection is closed). Browsers send them in one packet; only a
 * slow-loris client takes seconds.
 */
export const HEADERS_TIMEOUT_MS = 10_000;
/**
 * The whole request, headers and body, must have arrived within this. The
 * largest body we take (FORM_BODY_LIMIT, 256 kB, in src/http/articles.ts)
 * needs 30 s only below ~9 kB/s. It does not cover the answer: a read that
 * waits for its replica (at most RYW_WAIT_MS) has its request in full already.
 */
export const REQUEST_TIMEOUT_MS = 30_000;
/**
 * Fly's proxy closes idle connections after 60 s (fly.io/docs/reference/services,
 * "Idle Connection Timeouts"). A kept-alive connection between the proxy and
 * the app is closed by whichever side times out first; if that is the
 * app, the proxy may send the next request down a connection the app is
 * closing at that very moment, and that request fails (a 502 the app never
 * saw). So the app must time out later than the proxy.
 */
export const FLY_PROXY_IDLE_TIMEOUT_MS = 60_000;
/** Longer than FLY_PROXY_IDLE_TIMEOUT_MS, with a margin: the proxy is the one that closes idle connections. */
export const KEEP_ALIVE_TIMEOUT_MS = 75_000;
/** Node checks the two request timeouts on a sweep every this often (its default, 30 s, would let them fire 30 s late). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
/**
 * A socket on which nothing moves either way for this long mid-request (a
 * client that stopped reading its answer) is closed. Well above the longest
 * wait anyone may configure (MAX_WAIT_MS, 30 s), during which the socket is
 * quiet by design.
 */
export const SOCKET_TIMEOUT_MS = 60_000;
/** Browsers send about 20 headers; Node keeps only this many (its default: 2000). */
export const MAX_HEADERS_COUNT = 100;
/** Request line and headers larger than this get 431 (Node's default: 16 KiB). Our own cookies take under 1 KiB. */
export const MAX_HEADER_BYTES = 8 * 1024;
/**
 * Open connections past this are closed as they arrive. Fly's edge holds
 * requests to ~250 at once (fly.toml's hard_limit), so this is far above
 * what it sends; it stops a flood that bypasses it from exhausting memory.
 */
export const MAX_CONNECTIONS = 1_024;
/**
 * How long requests in flight may finish after SIGTERM (a deploy, a handoff)
 * before their connections are cut: longer than the default read-your-writes
 * wait plus a search's deadline, and shorter than Fly.io's default
 * `kill_timeout` (5 s), after which the machine is killed anyway.
 */
export const SHUTDOWN_GRACE_MS = 4_000;
/** How often idle connections are closed while shutting down. */
export const SHUTDOWN_IDLE_CHECK_MS = 50;

export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  timeoutCheckIntervalMs: number;
  socketTimeoutMs: number;
  maxHeadersCount: number;
  maxHeaderBytes: number;
  maxConnections: number;
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  headersTimeoutMs: HEADERS_TIMEOUT_MS,
  requestTimeoutMs: REQUEST_TIMEOUT_MS,
  keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
  timeoutCheckIntervalMs: TIMEOUT_CHECK_INTERVAL_MS,
  socketTimeoutMs: SOCKET_TIMEOUT_MS,
  maxHeadersCount: MAX_HEADERS_COUNT,
  maxHeaderBytes: MAX_HEADER_BYTES,
  maxConnections: MAX_CONNECTIONS,
};

/**
 * An HTTP server for `app` with every timeout and limit set on purpose
 * rather than left at Node's defaults (under which a client sending its body
 * a byte at a time held a connection for five minutes). main.ts and the tests
 * start the app's listeners through this, so they run with the same settings.
 *
 * @example
 * const server = createServer(app);
 * const { port } = await listen(server, 8080);
 */
export function createServer(app: RequestListener, limits: Partial<ServerLimits> = {}): Server {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const server = createHttpServer(
    {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      connectionsCheckingInterval: l.timeoutCheckIntervalMs,
      maxHeaderSize: l.maxHeaderBytes,
    },
    app,
  );
  server.timeout = l.socketTimeoutMs;
  server.maxHeadersCount = l.maxHeadersCount;
  server.maxConnections = l.maxConnections;
  return server;
}

/** Listens on `port` (0: any free one) and `host` (default: every interface), and says where. */
export function listen(server: Server, port: number, host?: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Stops `server` gracefully: no new connections, idle keep-alive ones closed
 * at once, requests in flight answered (a reader waiting for their token, a
 * search, a write's answer) for up to `graceMs`, then whatever is left cut.
 * Resolves once the server has closed.
 */
export function shutdown(server: Server, graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    // A keep-alive connection turns idle once its answer is sent: close it then.
    const idle = setInterval(() => server.closeIdleConnections(), SHUTDOWN_IDLE_CHECK_MS);
    server.close(() => {
      clearTimeout(cut);
      clearInterval(idle);
      resolve();
    });
    server.closeIdleConnections();
  });
}
