/**
 * Conditional GETs, Cache-Control and compression of shareable pages
 * (src/http/page-cache.ts) and static files (src/http/compression-static.ts).
 */
import { createServer, get, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type { ArticleStore } from '../../src/article.js';
import { FakeLiteFS, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';
import { openForm, sessionOf, submitForm } from '../support/forms.js';
import { until } from '../support/until.js';

let fs: FakeLiteFS | undefined;
const servers: Server[] = [];
afterEach(async () => {
  fs?.close();
  fs = undefined;
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

const SITE = { SITE_URL: 'http://blog.test' };
type AppOptions = NonNullable<Parameters<FakeLiteFS['app']>[0]>;
const blogOn = (fake: FakeLiteFS, options: AppOptions = {}) => fake.app({ ...options, env: { ...SITE, ...options.env } });

/** One server for the whole test, so that every request names the same host. */
async function listen(app: RequestListener): Promise<string> {
  const server = createServer(app).listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Raw {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A GET (or HEAD) whose body is the bytes as sent, not decoded. */
function raw(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
  });
}

function decoded(res: Raw): string {
  const encoding = res.headers['content-encoding'];
  if (encoding === 'br') return brotliDecompressSync(res.body).toString();
  if (encoding === 'gzip') return gunzipSync(res.body).toString();
  expect(encoding).toBeUndefined();
  return res.body.toString();
}

function counting(calls: { reads: number }): (store: ArticleStore) => ArticleStore {
  return (store) =>
    ({
      list: (...args) => (calls.reads++, store.list(...args)),
      latest: (...args) => (calls.reads++, store.latest(...args)),
      index: (...args) => (calls.reads++, store.index(...args)),
      search: (...args) => (calls.reads++, store.search(...args)),
      get: (...args) => (calls.reads++, store.get(...args)),
      create: store.create.bind(store),
      update: store.update.bind(store),
      delete: store.delete.bind(store),
    }) satisfies ArticleStore;
}

describe('ETag and 304', () => {
  it('a shareable page has a strong ETag; If-None-Match answers 304 with no body, until a write moves the state', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = blogOn(fs);
    const url = await listen(app);
    const first = await raw(`${url}/`);
    const etag = first.headers.etag!;
    expect(etag).toMatch(/^"[^"]+"$/); // strong: no W/
    expect(first.headers['cache-control']).toBe('no-cache');
    expect(first.headers.vary).toMatch(/Accept-Encoding/);
    // A hit goes out with the same headers as the page rendered: type, helmet's, Server-Timing.
    const hit = await raw(`${url}/`);
    expect(hit.body.equals(first.body)).toBe(true);
    for (const res of [first, hit]) {
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toBeDefined();
      expect(res.headers['server-timing']).toMatch(/ryw;desc=none/);
      expect(res.headers.etag).toBe(etag);
    }
    const again = await raw(`${url}/`, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    expect((await raw(`${url}/`, { 'if-none-match': `"other", W/${etag}` })).status).toBe(304);
    expect((await raw(`${url}/`, { 'if-none-match': etag }, 'HEAD')).status).toBe(304);

    await submitForm(app, await openForm(app), { title: 'After the tag', content: 'New.' }).expect(303);
    const changed = await raw(`${url}/`, { 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.headers.etag).not.toBe(etag);
    expect(decoded(changed)).toContain('After the tag');
  });

  it('never 304 for an ETag from before the reader’s token: a replica behind waits and sends the page with their write', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    // Heard from its primary just now: its lineage, so its checksums, are known (LiteFSNode.checksumAt()).
    fs.setLag(0);
    const { app, node } = blogOn(fs, { waitMs: 5_000, pollMs: 5 });
    const url = await listen(app);
    const at5 = await raw(`${url}/`, { cookie: tokenCookie(tokenFor(5n)) });
    expect(at5.status).toBe(200);
    const etag = at5.headers.etag!;
    expect(etag).toMatch(/^"/); // the cache's own tag, not Express's weak one
    expect((await raw(`${url}/`, { cookie: tokenCookie(tokenFor(5n)), 'if-none-match': etag })).status).toBe(304);

    const mine = tokenCookie(tokenFor(6n));
    const answer = raw(`${url}/`, { cookie: mine, 'if-none-match': etag });
    await until(() => node.stats().waiting === 1);
    fs.insertArticle('Written at 6', 'Mine.');
    fs.setPosition(6n);
    const res = await answer;
    expect(res.status).toBe(200);
    expect(serverTiming(res.headers['server-timing'] as string).desc).toBe('waited');
    expect(decoded(res)).toContain('Written at 6');
    // Once here, their token is met: the tag of the new state is confirmed, the old one never again.
    const fresh = await raw(`${url}/`, { cookie: mine });
    expect(fresh.headers['cache-control']).toBe('private');
    expect((await raw(`${url}/`, { cookie: mine, 'if-none-match': fresh.headers.etag! })).status).toBe(304);
    expect((await raw(`${url}/`, { cookie: mine, 'if-none-match': etag })).status).toBe(200);
  });

  it('per-visitor pages get no ETag of ours and no 304 for a shared page’s tag', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = blogOn(fs);
    const url = await listen(app);
    const etag = (await raw(`${url}/`)).headers.etag!;
    const session = sessionOf(app);
    const mine = await raw(`${url}/`, { cookie: session, 'if-none-match': etag });
    expect(mine.status).toBe(200);
    expect(mine.headers.etag ?? '').not.toBe(etag);
    expect(mine.headers['cache-control']).toBe('private');
    expect(mine.headers['content-encoding']).toBeUndefined(); // a page with a CSRF token is not compressed (BREACH)
    expect(decoded(mine)).toContain('Signed in as');
  });
});

describe('compression', () => {
  it('gzip and brotli by Accept-Encoding and its q-values, each decoding to the very page sent uncompressed', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    for (let i = 0; i < 5; i++) fs.insertArticle(`Article ${i}`, 'Some words to make the page longer. '.repeat(5));
    const { app } = blogOn(fs);
    const url = await listen(app);
    const plain = await raw(`${url}/`);
    expect(plain.headers['content-encoding']).toBeUndefined();
    const page = plain.body.toString();
    expect(page.length).toBeGreaterThan(2_000);
    const cases: [string, string | undefined][] = [
      ['gzip, deflate, br', 'br'],
      ['gzip', 'gzip'],
      ['br;q=0.5, gzip;q=0.9', 'gzip'],
      ['br;q=0, gzip', 'gzip'],
      ['*', 'br'],
      ['identity', undefined],
      ['deflate', undefined],
    ];
    for (const [accept, expected] of cases) {
      for (let i = 0; i < 2; i++) {
        // The first compresses (a miss for that coding), the second is the kept copy.
        const res = await raw(`${url}/`, { 'accept-encoding': accept });
        expect(res.headers['content-encoding'], accept).toBe(expected);
        expect(Number(res.headers['content-length'])).toBe(res.body.length);
        expect(decoded(res)).toBe(page);
        if (expected !== undefined) expect(res.body.length).toBeLessThan(plain.body.length);
      }
    }
    // Each coding is its own representation, with its own tag.
    const br = await raw(`${url}/`, { 'accept-encoding': 'br' });
    const gz = await raw(`${url}/`, { 'accept-encoding': 'gzip' });
    expect(new Set([plain.headers.etag, br.headers.etag, gz.headers.etag]).size).toBe(3);
    expect((await raw(`${url}/`, { 'accept-encoding': 'br', 'if-none-match': br.headers.etag! })).status).toBe(304);
  });

  it('static files: compressed once at start, with a strong ETag; small files as they are', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = blogOn(fs);
    const url = await listen(app);
    const plain = await raw(`${url}/static/app.css`);
    expect(plain.headers['cache-control']).toBe('public, max-age=3600');
    await until(async () => (await raw(`${url}/static/app.css`, { 'accept-encoding': 'br' })).headers['content-encoding'] === 'br', 5_000);
    for (const [accept, expected] of [
      ['br', 'br'],
      ['gzip', 'gzip'],
    ] as const) {
      const res = await raw(`${url}/static/app.css`, { 'accept-encoding': accept });
      expect(res.headers['content-encoding']).toBe(expected);
      expect(res.headers.vary).toBe('Accept-Encoding');
      expect(decoded(res)).toBe(plain.body.toString());
      expect((await raw(`${url}/static/app.css`, { 'accept-encoding': accept, 'if-none-match': res.headers.etag! })).status).toBe(304);
    }
    const icon = await raw(`${url}/static/favicon.svg`, { 'accept-encoding': 'br' });
    expect(icon.status).toBe(200);
    expect(icon.headers['content-encoding']).toBeUndefined();
    expect(icon.headers['content-type']).toMatch(/svg/);
  });
});

describe('PAGE_CACHE_MB and metrics', () => {
  it('PAGE_CACHE_MB=0 keeps nothing (every page rendered), while ETags and 304s still work', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const calls = { reads: 0 };
    const { app, metrics } = blogOn(fs, { wrapStore: counting(calls), env: { PAGE_CACHE_MB: '0' } });
    const url = await listen(app);
    const first = await raw(`${url}/`);
    const reads = calls.reads;
    await raw(`${url}/`);
    expect(calls.reads).toBe(2 * reads);
    expect((await raw(`${url}/`, { 'if-none-match': first.headers.etag! })).status).toBe(304);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^page_cache_entries 0$/m);
    expect(text).toMatch(/^page_cache_hits_total 0$/m);
    expect(text).toMatch(/^page_cache_max_bytes 0$/m);
  });

  it('counts hits, misses and what it holds on /metrics; a move of the position empties it', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 3n });
    fs.setLag(0);
    const { app } = blogOn(fs);
    const url = await listen(app);
    await raw(`${url}/`);
    await raw(`${url}/`);
    await raw(`${url}/`, { 'accept-encoding': 'br' });
    const scrape = async () => (await request(app).get('/metrics').expect(200)).text;
    const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    let text = await scrape();
    expect(value(text, 'page_cache_misses_total')).toBe(1);
    expect(value(text, 'page_cache_hits_total')).toBe(2);
    expect(value(text, 'page_cache_entries')).toBe(1);
    expect(value(text, 'page_cache_bytes')).toBeGreaterThan(2_000);
    expect(value(text, 'page_cache_max_bytes')).toBe(32 * 1024 * 1024);
    fs.setPosition(4n);
    await raw(`${url}/?search=nothing`);
    text = await scrape();
    expect(text).toMatch(/^page_cache_evictions_total\{reason="moved"\} 1$/m);
    expect(value(text, 'page_cache_entries')).toBe(1);
  });
});

describe('the site’s address is part of the page', () => {
  it('without SITE_URL, each Host gets a page naming its own', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const url = await listen(app);
    for (const host of ['one.test', 'two.test', 'one.test']) {
      const res = await raw(`${url}/`, { host });
      expect(decoded(res)).toContain(`<link rel="canonical" href="http://${host}/">`);
    }
  });
});
