/**
 * The page cache stays within its bound however many distinct pages are
 * asked for: 10,000 distinct searches, half of them compressed, through the
 * real middleware on a bare Express app (a page per query, as the blog's
 * search renders one). Both as it counts and as the process holds them:
 * what it counts must be the memory its pages keep alive.
 */
import { Agent, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { createPageCache, ENTRY_OVERHEAD_BYTES } from '../../src/http/page-cache.js';
import type { Render } from '../../src/http/views.js';
import { anonymousReadOnReplica } from '../support/anonymous-read.js';

const BOUND = 1024 * 1024;
const QUERIES = 10_000;
/**
 * What the process may hold in buffers beyond the bound once it is full:
 * the sockets', the agent's and the test's own. Pages kept as zlib and
 * Buffer.from() gave them held about three times the bound here.
 */
const SLACK = BOUND / 4;

/** A full collection, so that what is measured is what is still reachable (V8's gc, exposed once for this process). */
function collector(): () => void {
  const exposed = globalThis.gc;
  if (exposed !== undefined) return () => void exposed();
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('bounded memory', () => {
  it(`holds at most ${BOUND} bytes under ${QUERIES} distinct search queries, evicting the oldest`, async () => {
    const pages = createPageCache({
      maxBytes: BOUND,
      node: { position: () => 9n, checksumAt: () => 'ab'.repeat(8), role: () => ({ role: 'replica', primary: 'fra-1' }) },
      generation: () => '1.0',
      site: { title: 't', description: 'd', url: new URL('http://blog.test') },
    });
    const render: Render = pages.shareable((res, _view, data = {}, status = 200) => {
      // About 3 kB, like a search page: the query, then text that compresses.
      res
        .status(status)
        .type('html')
        .send(`<!doctype html><h1>${String(data.search)}</h1>${'<p>A result of the search.</p>'.repeat(100)}`);
    });
    const app = express();
    app.set('query parser', 'simple');
    app.use(anonymousReadOnReplica);
    app.use(pages.middleware);
    app.get('/', (req, res) => render(res, 'search', { search: req.query.search }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const fetchOne = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const headers = i % 2 === 0 ? { 'accept-encoding': 'br' } : {};
        get({ host: '127.0.0.1', port, path: `/?search=word${i}`, agent, headers }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        }).on('error', reject);
      });
    const gc = collector();
    gc();
    const before = process.memoryUsage().arrayBuffers;
    let held: number;
    let highest = 0;
    try {
      for (let i = 0; i < QUERIES; i += 8) {
        await Promise.all(Array.from({ length: 8 }, (_, j) => fetchOne(i + j)));
        highest = Math.max(highest, pages.stats().bytes);
      }
      // Twice, a moment apart: V8 frees buffers' memory on a sweep after the collection.
      gc();
      await new Promise((resolve) => setTimeout(resolve, 100));
      gc();
      held = process.memoryUsage().arrayBuffers - before;
      // A query asked again long ago was evicted; a recent one is still there.
      const counted = pages.stats();
      await fetchOne(QUERIES - 1);
      expect(pages.stats().hits).toBe(counted.hits + 1);
      await fetchOne(1);
      expect(pages.stats().misses).toBe(counted.misses + 1);
    } finally {
      agent.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
    const stats = pages.stats();
    expect(highest).toBeLessThanOrEqual(BOUND);
    expect(held, `buffers held: ${held} bytes`).toBeLessThanOrEqual(BOUND + SLACK);
    expect(stats.bytes).toBeLessThanOrEqual(BOUND);
    expect(stats.misses).toBeGreaterThanOrEqual(QUERIES);
    expect(stats.evictions.full).toBeGreaterThan(QUERIES / 2);
    // What it holds is what it counts: each entry at least its page and overhead.
    expect(stats.entries).toBeGreaterThan(100);
    expect(stats.bytes).toBeGreaterThanOrEqual(stats.entries * (3_000 + ENTRY_OVERHEAD_BYTES));
  }, 60_000);
});
