import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { extname, join } from 'node:path';
import type { RequestHandler } from 'express';
import { compressed } from './compression.js';
import { memoizedPreferredEncoding, noneMatch, type Encoding } from './page-cache-key.js';

/** What the static files' types are; any other file is left to express.static after this. */
export const STATIC_TYPES: Readonly<Record<string, string>> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};
/** Static files larger than this are left to express.static (streamed from disk, not held in memory). */
export const MAX_PRECOMPRESSED_BYTES = 1024 * 1024;

interface StaticFile {
  reps: Partial<Record<Encoding, { body: Buffer; ok: OutgoingHttpHeaders; notModified: OutgoingHttpHeaders }>>;
}

/**
 * `public/` served from memory, each file read once at start and compressed
 * there (brotli at its best quality, gzip at its best level, off the event
 * loop) so that no request pays for it: until a file's compressed copies
 * are ready it goes out as it is. A strong ETag per file and coding (the
 * content's hash, computed once), `Vary: Accept-Encoding`, and the
 * `Cache-Control` given. Files changed on disk after start are not seen:
 * restart the process (a deploy does).
 *
 * @example
 * app.use('/static', precompressedStatic(PUBLIC_DIR, 'public, max-age=3600').middleware);
 * app.use('/static', express.static(PUBLIC_DIR)); // anything else
 */
export function precompressedStatic(dir: string, cacheControl: string): { middleware: RequestHandler; ready: Promise<void> } {
  const files = new Map<string, StaticFile>();
  const encodingOf = memoizedPreferredEncoding();
  const work: Promise<void>[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // No directory: express.static answers 404 as before.
  }
  for (const name of names) {
    const type = STATIC_TYPES[extname(name)];
    const path = join(dir, name);
    if (type === undefined || !statSync(path).isFile() || statSync(path).size > MAX_PRECOMPRESSED_BYTES) continue;
    const body = readFileSync(path);
    const tag = createHash('sha256').update(body).digest('base64url').slice(0, 22);
    const rep = (content: Buffer, encoding: Encoding) => {
      const etag = `"${tag}${encoding === 'identity' ? '' : `-${encoding}`}"`;
      const notModified: OutgoingHttpHeaders = { ETag: etag, 'Cache-Control': cacheControl, Vary: 'Accept-Encoding' };
      const ok: OutgoingHttpHeaders = { ...notModified, 'Content-Type': type, 'Content-Length': content.length };
      if (encoding !== 'identity') ok['Content-Encoding'] = encoding;
      return { body: content, ok, notModified };
    };
    const file: StaticFile = { reps: { identity: rep(body, 'identity') } };
    files.set(`/${name}`, file);
    for (const encoding of ['br', 'gzip'] as const) {
      work.push(
        compressed(body, encoding, 'static').then(
          (out) => {
            file.reps[encoding] = out === null ? file.reps.identity : rep(out, encoding);
          },
          () => {
            file.reps[encoding] = file.reps.identity;
          },
        ),
      );
    }
  }

  const middleware: RequestHandler = function precompressedStaticFiles(req, res, next) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const file = files.get(req.path);
    if (file === undefined) return next();
    const encoding = encodingOf(req.headers['accept-encoding']);
    const rep = file.reps[encoding] ?? file.reps.identity!;
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && noneMatch(inm, rep.ok.ETag as string)) {
      res.writeHead(304, rep.notModified);
      res.end();
      return;
    }
    res.writeHead(200, rep.ok);
    if (req.method === 'HEAD') res.end();
    else res.end(rep.body);
  };
  return { middleware, ready: Promise.all(work).then(() => undefined) };
}
