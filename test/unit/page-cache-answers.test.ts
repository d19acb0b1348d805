/**
 * The page cache's answers when something goes wrong or changes late, on a
 * bare Express app through the real middleware: an error while a page
 * waits for its compression becomes the app's error page (never an
 * unhandled rejection, which ends a Node 20 process), and a page whose
 * answer is made the reader's as its headers go out (a token cookie, a
 * committed write) is sent but not kept.
 */
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type Express } from 'express';
import onHeaders from 'on-headers';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createPageCache, type PageCache } from '../../src/http/page-cache.js';
import { anonymousReadOnReplica } from '../support/anonymous-read.js';

function appWith(before: express.RequestHandler): { app: Express; pages: PageCache } {
  const pages = createPageCache({
    maxBytes: 1024 * 1024,
    node: { position: () => 9n, checksumAt: () => 'ab'.repeat(8), role: () => ({ role: 'replica', primary: 'fra-1' }) },
    generation: () => '1.0',
    site: { title: 't', description: 'd', url: new URL('http://blog.test') },
  });
  const render = pages.shareable((res, _view, _data, status = 200) => {
    // Long enough to be compressed.
    res
      .status(status)
      .type('html')
      .send(`<!doctype html>${'<p>Some words of an article.</p>'.repeat(100)}`);
  });
  const app = express();
  app.use(anonymousReadOnReplica);
  app.use(before);
  app.use(pages.middleware);
  app.get('/', (_req, res) => render(res, 'home'));
  const errors: ErrorRequestHandler = (_error, _req, res, _next) => {
    res.status(500).type('text').send('Something went wrong.');
  };
  app.use(errors);
  return { app, pages };
}

describe('an error while a page waits for its compression', () => {
  it('is answered by the app’s error handler, and the server goes on answering', async () => {
    let failNext = false;
    const { app } = appWith((_req, res, next) => {
      const writeHead = res.writeHead;
      res.writeHead = function failingOnce(this: typeof res, ...args: Parameters<typeof writeHead>) {
        if (failNext) {
          failNext = false;
          throw new Error('a header the socket refused');
        }
        return writeHead.apply(this, args);
      } as typeof writeHead;
      next();
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      // Kept as it is; brotli is made on the next request that asks, off the event loop.
      await request(url).get('/').set('Accept-Encoding', 'identity').expect(200);
      failNext = true;
      const failed = await request(url).get('/').set('Accept-Encoding', 'br').expect(500);
      expect(failed.text).toBe('Something went wrong.');
      const after = await request(url).get('/').set('Accept-Encoding', 'br').expect(200);
      expect(after.headers['content-encoding']).toBe('br');
      // And on a miss, whose route has been left already: another page (its query), brotli first.
      failNext = true;
      expect((await request(url).get('/?page=2').set('Accept-Encoding', 'br').expect(500)).text).toBe('Something went wrong.');
      expect((await request(url).get('/?page=2').set('Accept-Encoding', 'br').expect(200)).headers['content-encoding']).toBe('br');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('an answer made the reader’s as its headers go out', () => {
  it.each([
    ['a token cookie set by a listener that runs after the page was rendered', 'cookie'],
    ['a write the route said it committed', 'committed'],
  ] as const)('%s: sent, not kept', async (_name, how) => {
    const { app, pages } = appWith((req, res, next) => {
      if (req.get('x-mine') !== undefined) {
        if (how === 'cookie') onHeaders(res, () => res.cookie('ryw', 'their-token'));
        else res.locals.ryw!.committed = true;
      }
      next();
    });
    const mine = await request(app).get('/').set('x-mine', '1').expect(200);
    if (how === 'cookie') expect(String(mine.headers['set-cookie'])).toMatch(/^ryw=their-token/);
    expect(pages.stats().entries).toBe(0);
    // Anyone else's: rendered (a miss), then kept, without the cookie.
    await request(app).get('/').expect(200);
    expect(pages.stats()).toMatchObject({ entries: 1, hits: 0 });
    const hit = await request(app).get('/').expect(200);
    expect(hit.headers['set-cookie']).toBeUndefined();
    expect(pages.stats().hits).toBe(1);
  });
});
