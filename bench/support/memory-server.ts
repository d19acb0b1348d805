/**
 * The yardsticks of the page-cache benchmark: a server that sends pages
 * captured from the app (status, headers and body) straight from memory,
 * either through Express (`MEMORY_SERVER=express`) or bare `node:http`
 * (`MEMORY_SERVER=node`). A request carrying `If-None-Match` gets a bare 304
 * (no headers set by hand). Started by bench/page-cache.ts only, as its own
 * process like the app, so that neither shares an event loop with the load.
 */
import { readFileSync } from 'node:fs';
import http, { type OutgoingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { RawAnswer } from './raw-http.js';

/** One captured answer, by request path and `Accept-Encoding` (see fixtureKey()). */
export interface CapturedPage {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly bodyBase64: string;
}

/** Where the fixture is looked up: the path, and the encoding asked for (which changes the bytes). */
export function fixtureKey(path: string, acceptEncoding: string | undefined): string {
  return `${acceptEncoding ?? ''} ${path}`;
}

/** How the benchmarks start this file (with MEMORY_SERVER and MEMORY_PAGES in its environment). */
export const MEMORY_SERVER_SCRIPT = fileURLToPath(import.meta.url);

/** An answer of the app as the yardsticks replay it. */
export function capturedPage(res: RawAnswer): CapturedPage {
  return {
    status: res.status,
    headers: Object.fromEntries(Object.entries(res.headers).filter((e): e is [string, string | string[]] => e[1] !== undefined)),
    bodyBase64: res.body.toString('base64'),
  };
}

/** Headers Node writes itself: copying them would send them twice or wrong. */
const HOP_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

interface Page {
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
}

function loadPages(file: string): Map<string, Page> {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, CapturedPage>;
  const pages = new Map<string, Page>();
  for (const [key, page] of Object.entries(raw)) {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(page.headers)) if (!HOP_HEADERS.has(name)) headers[name] = value;
    pages.set(key, { headers, body: Buffer.from(page.bodyBase64, 'base64') });
  }
  return pages;
}

function main(): void {
  const kind = process.env.MEMORY_SERVER;
  const file = process.env.MEMORY_PAGES;
  if ((kind !== 'express' && kind !== 'node') || !file) throw new Error('MEMORY_SERVER=express|node and MEMORY_PAGES=<file> are required');
  const pages = loadPages(file);
  const port = Number(process.env.PORT);
  const lookup = (url: string, acceptEncoding: string | undefined) => pages.get(fixtureKey(url, acceptEncoding));

  let server: http.Server;
  if (kind === 'express') {
    const app = express();
    app.disable('x-powered-by');
    app.get('/healthz', (_req, res) => void res.send('ok'));
    app.use((req, res) => {
      if (req.headers['if-none-match'] !== undefined) return void res.status(304).end();
      const page = lookup(req.url, req.headers['accept-encoding']);
      if (!page) return void res.status(404).end();
      // The app's own headers (its ETag among them, so Express does not hash the body for one of its own).
      res.set(page.headers as Record<string, string>).send(page.body);
    });
    server = app.listen(port, '127.0.0.1');
  } else {
    server = http.createServer((req, res) => {
      if (req.url === '/healthz') return void res.end('ok');
      if (req.headers['if-none-match'] !== undefined) return void res.writeHead(304).end();
      const page = lookup(req.url ?? '/', req.headers['accept-encoding']);
      if (!page) return void res.writeHead(404).end();
      res.writeHead(200, { ...page.headers, 'content-length': page.body.length }).end(page.body);
    });
    server.listen(port, '127.0.0.1');
  }
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}

if (process.env.MEMORY_SERVER) main();
