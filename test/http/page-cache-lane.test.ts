/**
 * The page cache's lane (PageCache.answer(), the server's first step): a
 * hit answered before Express carries the very bytes and headers that
 * Express's own hit gives, and only a request that Express would answer
 * that same way takes it. Each test compares the blog as servers run it
 * (Blog.handler) with Express alone (Blog.app) on the same cache.
 */
import { createServer, get, type IncomingMessage, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type { Blog } from '../../src/blog.js';
import { CAUGHT_UP_COOKIE } from '../../src/http/notice.js';
import { formatPosFile } from '../../src/ryw/litefs/files.js';
import { FakeLiteFS, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';
import { sessionOf } from '../support/forms.js';

/** A raw GET, the target sent as it is (supertest would cut a `#`), to `app` on a server of its own. */
async function rawGet(app: RequestListener, target: string): Promise<{ status: number; body: string }> {
  const server = createServer(app).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      get({ host: '127.0.0.1', port, path: target, headers: { host: 'blog.test' } }, resolve).on('error', reject),
    );
    let body = '';
    for await (const chunk of res) body += String(chunk);
    return { status: res.statusCode!, body };
  } finally {
    server.close();
  }
}

let fs: FakeLiteFS | undefined;
afterEach(() => {
  fs?.close();
  fs = undefined;
});

/** Links name the site's address, so every request here names one (SITE_URL), as production should. */
const SITE = { SITE_URL: 'http://blog.test' };

/** How many requests reached Express (its app.handle()), from now on. */
function expressCalls(app: Express): { count: number } {
  const calls = { count: 0 };
  const patched = app as unknown as { handle: (...args: unknown[]) => void };
  const handle = patched.handle.bind(app);
  patched.handle = (...args) => {
    calls.count++;
    handle(...args);
  };
  return calls;
}

/** Every header but the date, which moves. */
const headersOf = (res: request.Response) => {
  const { date, ...rest } = res.headers as Record<string, string>;
  expect(date).toBeDefined();
  return rest;
};

/** A replica at TXID 7 that has heard from its primary: its pages can be kept (LiteFSNode.checksumAt()). */
function replica(): { blog: Blog; id: number; express: { count: number } } {
  fs = new FakeLiteFS({ role: 'replica', position: 7n });
  fs.setLag(0);
  const id = fs.insertArticle('Kept in memory', 'Sent as bytes, before Express.');
  const { blog } = fs.app({ env: SITE });
  return { blog, id, express: expressCalls(blog.app) };
}

describe('the lane before Express', () => {
  it('answers a kept page with the bytes and headers of Express’s own hit: 200, compressed, 304 and HEAD, with and without a met token', async () => {
    const { blog, id, express } = replica();
    const met = { Cookie: tokenCookie(tokenFor(7n)) };
    const variants: { path: string; headers: Record<string, string> }[] = [
      { path: '/', headers: { 'Accept-Encoding': 'identity' } },
      { path: '/', headers: { 'Accept-Encoding': 'gzip, deflate, br' } },
      { path: `/articles/${id}`, headers: { 'Accept-Encoding': 'gzip' } },
      { path: '/?search=bytes', headers: { 'Accept-Encoding': 'identity' } },
      { path: '/', headers: { 'Accept-Encoding': 'br', ...met } },
    ];
    for (const { path, headers } of variants) {
      // Rendered and kept, then a hit, by Express (which the lane learns from).
      await request(blog.app).get(path).set(headers).expect(200);
      const expressHit = await request(blog.app).get(path).set(headers).expect(200);
      const before = express.count;
      const laneHit = await request(blog.handler).get(path).set(headers).expect(200);
      expect(express.count, `${path} ${JSON.stringify(headers)}`).toBe(before);
      expect(headersOf(laneHit)).toEqual(headersOf(expressHit));
      expect(laneHit.body).toEqual(expressHit.body);
      expect(laneHit.text).toBe(expressHit.text);

      const etag = expressHit.headers.etag as string;
      const expressNotModified = await request(blog.app).get(path).set(headers).set('If-None-Match', etag).expect(304);
      const laneNotModified = await request(blog.handler).get(path).set(headers).set('If-None-Match', etag).expect(304);
      expect(headersOf(laneNotModified)).toEqual(headersOf(expressNotModified));
      const expressHead = await request(blog.app).head(path).set(headers).expect(200);
      const laneHead = await request(blog.handler).head(path).set(headers).expect(200);
      expect(headersOf(laneHead)).toEqual(headersOf(expressHead));
      expect(laneHead.text).toBeUndefined();
      expect(express.count).toBe(before + 2);
    }
    // Helmet's headers are among those sent: the lane sends no less than the app.
    const last = await request(blog.handler).get('/').set('Accept-Encoding', 'identity').expect(200);
    expect(last.headers['content-security-policy']).toBeDefined();
    expect(last.headers['x-content-type-options']).toBe('nosniff');
    expect(serverTiming(last.headers['server-timing'])).toEqual({ desc: 'none', dur: 0 });
  });

  it('counts what it answers, as the app would: a page-cache hit and a read-your-writes decision', async () => {
    const { blog } = replica();
    await request(blog.app).get('/').expect(200);
    await request(blog.app).get('/').expect(200);
    const metric = async (name: string, label = '') =>
      Number(new RegExp(`^${name}${label.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(await blog.metrics.registry.metrics())?.[1] ?? 0);
    const hits = await metric('page_cache_hits_total');
    const decided = await metric('ryw_decisions_total', '{decision="none"}');
    await request(blog.handler).get('/').expect(200);
    expect(await metric('page_cache_hits_total')).toBe(hits + 1);
    expect(await metric('ryw_decisions_total', '{decision="none"}')).toBe(decided + 1);
  });

  it('leaves to Express whatever Express would answer otherwise: a session, a notice, a token not met or refused, a region, a write', async () => {
    const { blog, express } = replica();
    const app = blog.handler;
    await request(blog.app).get('/').expect(200);
    await request(blog.app).get('/').expect(200);
    await request(blog.app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(7n)))
      .expect(200);
    await request(blog.app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(7n)))
      .expect(200);
    const before = express.count;
    await request(app).get('/').expect(200);
    await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(7n)))
      .expect(200);
    expect(express.count).toBe(before); // both taken by the lane

    // Signed in: the page names its author.
    const signedIn = await request(app).get('/').set('Cookie', sessionOf(app)).expect(200);
    expect(signedIn.text).toContain('Signed in as');
    // A stale page reloaded: "caught up" is that reader's alone.
    await request(app).get('/').set('Cookie', `${CAUGHT_UP_COOKIE}=1`).expect(200);
    // A token the replica has not reached: the reader waits, or is replayed (here: replayed after the budget).
    const ahead = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(8n)))
      .expect(409);
    expect(ahead.headers['fly-replay']).toMatch(/state=ryw/);
    // A token that does not verify: the cookie is cleared, and the page says nothing of it.
    const refused = await request(app).get('/').set('Cookie', 'ryw=s:not-a-token').expect(200);
    expect(String(refused.headers['set-cookie'])).toMatch(/^ryw=;/);
    // Pinned to a region by the reader.
    await request(app).get('/?region=zzz').expect(409);
    // A write.
    await request(app).post('/articles').type('form').send({}).expect(409);
    expect(express.count).toBe(before + 6);
  });

  it('leaves to Express a URL that Express reads otherwise (a `#`, an encoded `region`), and a valid header token beside a refused cookie', async () => {
    const { blog, express } = replica();
    for (const path of ['/?search=a%23b', '/?search=a']) {
      await request(blog.app).get(path).expect(200);
      await request(blog.app).get(path).expect(200);
    }
    const before = express.count;
    // Express cuts `#b` off: the search for `a`, never the page kept for `a#b`.
    const cut = await rawGet(blog.handler, '/?search=a#b');
    expect(cut.status).toBe(200);
    expect(cut.body).toContain('value="a"');
    expect(cut.body).not.toContain('value="a#b"');
    // `%72egion` is `region` once decoded: pinned to a region this replica is not in, so replayed.
    await request(blog.handler).get('/?%72egion=zzz').expect(409);
    // The header's token is met, but the cookie beside it is refused: Express clears the cookie.
    const mixed = await request(blog.handler).get('/').set('RYW-Token', tokenFor(7n)).set('Cookie', 'ryw=s:not-a-token').expect(200);
    expect(String(mixed.headers['set-cookie'])).toMatch(/^ryw=;/);
    expect(express.count).toBe(before + 3);
  });

  it('hands the request to Express, which answers it, should the lane ever throw', async () => {
    const { blog, express } = replica();
    await request(blog.app).get('/').expect(200);
    await request(blog.app).get('/').expect(200);
    blog.ryw.immediate = () => {
      throw new Error('a bug in the lane');
    };
    const before = express.count;
    const res = await request(blog.handler).get('/').expect(200);
    expect(res.text).toContain('Kept in memory');
    expect(express.count).toBe(before + 1);
  });

  it('never answers from before the position moved: the next read after a new article is the app’s, and shows it', async () => {
    const { blog, express } = replica();
    await request(blog.app).get('/').expect(200);
    await request(blog.app).get('/').expect(200);
    await request(blog.handler).get('/').expect(200);
    const before = express.count;
    fs!.insertArticle('Arrived by replication', 'A new position.');
    fs!.writePositionFile(formatPosFile({ txid: 8n, checksum: 'a'.repeat(16) }));
    const after = await request(blog.handler).get('/').expect(200);
    expect(after.text).toContain('Arrived by replication');
    expect(express.count).toBe(before + 1);
  });
});
