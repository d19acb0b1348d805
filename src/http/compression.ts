import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { Encoding } from './page-cache-key.js';

/** Below this a body goes as it is: a compressed copy saves less than its headers and the work cost. */
export const MIN_COMPRESS_BYTES = 1024;
/** gzip's level for pages, as the original Go app's `middleware.Compress(5)`. */
export const PAGE_GZIP_LEVEL = 5;
/**
 * Brotli's quality for pages: 5 compresses a page smaller than gzip's 5 in
 * about the same time; 11 would take tens of milliseconds a page, which a
 * miss should not cost. Static files, compressed once at start, get 11.
 */
export const PAGE_BROTLI_QUALITY = 5;
export const STATIC_BROTLI_QUALITY = constants.BROTLI_MAX_QUALITY;
export const STATIC_GZIP_LEVEL = constants.Z_BEST_COMPRESSION;

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);

export type Effort = 'page' | 'static';

/**
 * `body` in `encoding`, compressed on libuv's thread pool (node:zlib's
 * asynchronous calls), so that the event loop answers other requests
 * meanwhile. Null when compressing would not make it smaller. The bytes
 * are a buffer of their own, exactly their size (see exactCopy()), so that
 * what a cache counts is what it holds.
 */
export async function compressed(body: Buffer, encoding: Exclude<Encoding, 'identity'>, effort: Effort): Promise<Buffer | null> {
  if (body.length < MIN_COMPRESS_BYTES) return null;
  const out =
    encoding === 'br'
      ? await brotli(body, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: effort === 'page' ? PAGE_BROTLI_QUALITY : STATIC_BROTLI_QUALITY,
            [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
            [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
          },
        })
      : await gzipped(body, { level: effort === 'page' ? PAGE_GZIP_LEVEL : STATIC_GZIP_LEVEL });
  return out.length < body.length ? exactCopy(out) : null;
}

/**
 * `buffer` in memory of its own and of its size. zlib's result is a view
 * into the 16 KiB chunk it wrote into (Buffer.concat of one chunk returns
 * it as it is), so a 2 kB page kept as zlib gave it holds 16 KiB alive;
 * and Buffer.from() of a small string is a slice of the shared 8 KiB pool.
 * allocUnsafeSlow() takes neither: the copy is its own allocation.
 */
export function exactCopy(buffer: Buffer): Buffer {
  if (buffer.byteOffset === 0 && buffer.buffer.byteLength === buffer.length) return buffer;
  const copy = Buffer.allocUnsafeSlow(buffer.length);
  buffer.copy(copy);
  return copy;
}

/** `text` as UTF-8 in a buffer of its own and exactly its size (not a slice of the shared pool: see exactCopy()). */
export function exactBuffer(text: string): Buffer {
  const buffer = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  buffer.write(text);
  return buffer;
}
