import type { IncomingMessage } from 'node:http';

/** Fly.io buffers at most 1 MiB of a request so that it can replay it. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export type BufferedBody = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly reason: 'too-large' | 'aborted' };

/**
 * Reads a whole request body into memory, so that it can be sent again on a
 * replay. Stops reading (and reports `too-large`) as soon as the limit is
 * passed, whether or not the client declared a Content-Length.
 */
export async function bufferRequestBody(req: IncomingMessage, maxBytes: number): Promise<BufferedBody> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > maxBytes) return { ok: false, reason: 'too-large' };
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > maxBytes) return { ok: false, reason: 'too-large' };
      chunks.push(buf);
    }
  } catch {
    return { ok: false, reason: 'aborted' };
  }
  return { ok: true, body: Buffer.concat(chunks, size) };
}
