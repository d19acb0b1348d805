/**
 * The real HTTP server (createServer, as main.ts starts it) on 127.0.0.1:0,
 * driven over raw sockets: clients that dawdle are cut off within a bound.
 * Limits are injected small; clocks are real and bounds generous.
 */
import type { Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createServer,
  DEFAULT_LIMITS,
  FLY_PROXY_IDLE_TIMEOUT_MS,
  listen,
  MAX_CONNECTIONS,
  MAX_HEADER_BYTES,
  type ServerLimits,
} from '../../src/http/listen.js';
import { MAX_WAIT_MS } from '../../src/config.js';
import { FakeLiteFS } from '../support/fake-litefs.js';
import { until } from '../support/until.js';

let fs: FakeLiteFS | undefined;
const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  fs?.close();
  fs = undefined;
});

/** Sweeps often, so that the timeouts under test fire close to when they are due. */
const QUICK: Partial<ServerLimits> = { timeoutCheckIntervalMs: 50 };

async function start(limits: Partial<ServerLimits>): Promise<number> {
  fs = new FakeLiteFS({ role: 'standalone' });
  const server = createServer(fs.app().app, { ...QUICK, ...limits });
  servers.push(server);
  return (await listen(server, 0, '127.0.0.1')).port;
}

interface Client {
  socket: Socket;
  received: () => string;
  /** Resolves with the ms from connecting until the server closed the connection. */
  closed: Promise<number>;
}

function client(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => {}); // a reset is one way of being cut off
    const closed = new Promise<number>((done) => socket.once('close', () => done(performance.now() - started)));
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

/** Writes `text` a character every `everyMs` until the socket closes. */
function dribble(socket: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || socket.writableEnded) return clearInterval(timer);
    socket.write(text[i % text.length]!);
    i += 1;
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
}

/** Fails the test rather than hanging it when the server keeps the connection. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms)),
  ]);
}

const connections = (server: Server) =>
  new Promise<number>((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));

const request = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;

describe('the server cuts off clients that dawdle', () => {
  it('closes a connection whose headers come a byte at a time, with 408, once headersTimeout has passed', async () => {
    const port = await start({ headersTimeoutMs: 500, requestTimeoutMs: 2_000 });
    const { socket, received, closed } = await client(port);
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    dribble(socket, 'X-Slow: aaaa\r\n', 50);
    const ms = await within(closed, 5_000, 'slow headers');
    expect(received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(ms).toBeGreaterThanOrEqual(400);
  });

  it('closes a connection whose body comes a byte at a time, once requestTimeout has passed', async () => {
    const port = await start({ headersTimeoutMs: 300, requestTimeoutMs: 1_000 });
    const { socket, closed } = await client(port);
    socket.write(
      'POST /new HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n',
    );
    dribble(socket, 'title=slow&', 50);
    const ms = await within(closed, 6_000, 'slow body');
    expect(ms).toBeGreaterThanOrEqual(900);
  });

  it('closes an idle kept-alive connection after keepAliveTimeout, and not before a request on it is answered', async () => {
    const port = await start({ headersTimeoutMs: 300, requestTimeoutMs: 1_000, keepAliveTimeoutMs: 1_000 });
    const { socket, received, closed } = await client(port);
    socket.write(request('/healthz'));
    // Idle past headersTimeout: the next request on the connection is still served.
    await new Promise((resolve) => setTimeout(resolve, 700));
    socket.write(request('/healthz'));
    await within(
      new Promise<void>((resolve) => {
        const check = () => ((received().match(/HTTP\/1\.1 200 /g) ?? []).length === 2 ? resolve() : setTimeout(check, 20));
        check();
      }),
      3_000,
      'second request on the kept-alive connection',
    );
    // Node's default (5 s) would keep it past this bound.
    const ms = await within(closed, 4_000, 'idle kept-alive connection');
    expect(ms).toBeGreaterThanOrEqual(700 + 800);
  });

  it('answers 431 to headers over the size limit', async () => {
    const port = await start({ maxHeaderBytes: 4 * 1024 });
    const { socket, received, closed } = await client(port);
    socket.write(request('/', `Cookie: big=${'x'.repeat(6 * 1024)}\r\n`));
    await within(closed, 5_000, 'oversized headers');
    expect(received()).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('closes connections past maxConnections at once, and serves again when one is freed', async () => {
    const port = await start({ maxConnections: 2 });
    const server = servers.at(-1)!;
    const first = await client(port);
    const second = await client(port);
    // Both are open and accepted: each gets an answer.
    for (const c of [first, second]) c.socket.write(request('/healthz'));
    await until(() => [first, second].every((c) => /^HTTP\/1\.1 200 /.test(c.received())), 3_000, 'answers on the first two connections');
    const third = await client(port);
    third.socket.write(request('/healthz'));
    await within(third.closed, 3_000, 'a connection past the cap');
    expect(third.received()).toBe('');
    first.socket.destroy();
    // The server, not only the client, has let the first one go.
    await until(async () => (await connections(server)) === 1, 3_000, 'the freed connection');
    const fourth = await client(port);
    fourth.socket.write(request('/healthz', 'Connection: close\r\n'));
    await within(fourth.closed, 3_000, 'a connection after one was freed');
    expect(fourth.received()).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe('the limits main.ts starts with', () => {
  it('are set on the server, not left at Node’s defaults', () => {
    const server = createServer(() => {});
    expect(server.headersTimeout).toBe(DEFAULT_LIMITS.headersTimeoutMs);
    expect(server.requestTimeout).toBe(DEFAULT_LIMITS.requestTimeoutMs);
    expect(server.requestTimeout).toBeLessThan(300_000); // Node's default
    expect(server.keepAliveTimeout).toBe(DEFAULT_LIMITS.keepAliveTimeoutMs);
    expect(server.maxHeadersCount).toBe(DEFAULT_LIMITS.maxHeadersCount);
    expect(server.maxConnections).toBe(MAX_CONNECTIONS);
    expect((server as unknown as { maxHeaderSize: number }).maxHeaderSize).toBe(MAX_HEADER_BYTES);
    expect(server.timeout).toBe(DEFAULT_LIMITS.socketTimeoutMs);
  });

  it('keep idle connections open longer than Fly’s proxy, and quiet sockets longer than any wait', () => {
    expect(DEFAULT_LIMITS.keepAliveTimeoutMs).toBeGreaterThan(FLY_PROXY_IDLE_TIMEOUT_MS);
    expect(DEFAULT_LIMITS.socketTimeoutMs).toBeGreaterThan(MAX_WAIT_MS);
    expect(DEFAULT_LIMITS.headersTimeoutMs).toBeLessThanOrEqual(DEFAULT_LIMITS.requestTimeoutMs);
  });
});
