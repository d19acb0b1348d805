/**
 * The rendered-page cache (src/http/page-cache.ts): a hit costs no store
 * call, and a page changes as soon as the position (or, standalone, the
 * database) moves, on the primary and on replicas; a reader with a token
 * never gets a page from before their write; a page with anything of one
 * visitor's is never served to another.
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type { ArticleStore } from '../../src/article.js';
import { CAUGHT_UP_COOKIE } from '../../src/http/notice.js';
import type { Metrics } from '../../src/http/metrics.js';
import { formatTxid } from '../../src/ryw/index.js';
import { formatPosFile } from '../../src/ryw/litefs/files.js';
import { signToken, tokenPayload } from '../../src/ryw/token.js';
import { fakeEvents, type FakeEvents } from '../support/fake-events.js';
import { FakeLiteFS, PRIMARY_ID, SECRETS, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';
import { openEdit, openForm, saveEdit, sessionOf, submitForm, type App } from '../support/forms.js';
import { until } from '../support/until.js';

let fs: FakeLiteFS | undefined;
let events: FakeEvents | undefined;
afterEach(async () => {
  fs?.close();
  fs = undefined;
  await events?.close();
  events = undefined;
});

/** A store that counts the reads pages make, then does them. */
function counting(calls: { reads: number }): (store: ArticleStore) => ArticleStore {
  const read =
    <A extends unknown[], R>(fn: (...args: A) => R) =>
    (...args: A): R => {
      calls.reads++;
      return fn(...args);
    };
  return (store) =>
    ({
      list: read(store.list.bind(store)),
      latest: read(store.latest.bind(store)),
      index: read(store.index.bind(store)),
      search: read(store.search.bind(store)),
      get: read(store.get.bind(store)),
      create: store.create.bind(store),
      update: store.update.bind(store),
      delete: store.delete.bind(store),
    }) satisfies ArticleStore;
}

/**
 * The site's address is part of a page (og:url, canonical) and so of its
 * key; supertest gives every request a server of its own, on a new port, so
 * these apps name their address once (SITE_URL), as production should.
 */
const SITE = { SITE_URL: 'http://blog.test' };
type AppOptions = NonNullable<Parameters<FakeLiteFS['app']>[0]>;
const blogOn = (fake: FakeLiteFS, options: AppOptions = {}) => fake.app({ ...options, env: { ...SITE, ...options.env } });

/** What the cache holds now, as /metrics says. */
const entries = async (metrics: Metrics) =>
  Number(/^page_cache_entries (\S+)$/m.exec(await metrics.registry.getSingleMetricAsString('page_cache_entries'))?.[1]);

/** A replica's database as LiteFS leaves it at `txid`: the checksum after it names its lineage. */
const at = (fake: FakeLiteFS, txid: bigint, checksum: string) => fake.writePositionFile(formatPosFile({ txid, checksum }));

/** `GET /` with `cookie`, which waits on the replica; `arrive` (the write replicating) once it does: the answer. */
async function readWhileArriving(app: App, node: { stats(): { waiting: number } }, cookie: string, arrive: () => void) {
  const answer = request(app)
    .get('/')
    .set('Cookie', cookie)
    .then((res) => res);
  await until(() => node.stats().waiting === 1);
  arrive();
  return answer;
}

describe('a hit', () => {
  it('serves the same bytes again without asking the store, for the list, an article and a search', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 7n });
    // Heard from its primary just now: its lineage, so its checksums, are known (LiteFSNode.checksumAt()).
    fs.setLag(0);
    const id = fs.insertArticle('Cached once', 'Replication is the topic here.');
    const calls = { reads: 0 };
    const { app } = blogOn(fs, { wrapStore: counting(calls) });
    for (const path of ['/', `/articles/${id}`, '/?search=replication']) {
      const first = await request(app).get(path).expect(200);
      const readsAfterFirst = calls.reads;
      expect(readsAfterFirst).toBeGreaterThan(0);
      const second = await request(app).get(path).expect(200);
      const head = await request(app).head(path).set('Accept-Encoding', 'identity').expect(200);
      expect(second.text).toBe(first.text);
      expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(first.text));
      expect(calls.reads).toBe(readsAfterFirst);
      calls.reads = 0;
    }
    // A met token makes its own variant (the footer says `fresh`), cached as well.
    const token = tokenCookie(tokenFor(7n));
    const fresh = await request(app).get('/').set('Cookie', token).expect(200);
    expect(serverTiming(fresh.headers['server-timing']).desc).toBe('fresh');
    expect(fresh.text).toContain('read-your-writes: fresh');
    const reads = calls.reads;
    const again = await request(app).get('/').set('Cookie', token).expect(200);
    expect(again.text).toBe(fresh.text);
    expect(calls.reads).toBe(reads);
    // And the token-less page is still the token-less one.
    expect((await request(app).get('/').expect(200)).text).not.toContain('read-your-writes: fresh');
  });

  it('on a primary just started, from its first page: not only once it has committed (files, and LiteFS events)', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 5n });
    const calls = { reads: 0 };
    const { app, metrics } = blogOn(fs, { region: 'fra', instance: PRIMARY_ID, wrapStore: counting(calls) });
    await request(app).get('/').expect(200);
    const reads = calls.reads;
    await request(app).get('/').expect(200);
    expect(calls.reads).toBe(reads);
    expect(await entries(metrics)).toBe(1);
    fs.close();

    events = await fakeEvents({ isPrimary: true, hostname: PRIMARY_ID });
    fs = new FakeLiteFS({ role: 'primary', position: 5n });
    const streamed = blogOn(fs, { region: 'fra', instance: PRIMARY_ID, events: events.url, wrapStore: counting(calls) });
    await until(() => streamed.node.stats().streaming);
    await request(streamed.app).get('/').expect(200);
    calls.reads = 0;
    await request(streamed.app).get('/').expect(200);
    expect(calls.reads).toBe(0);
    expect(await entries(streamed.metrics)).toBe(1);
  });

  it('normalises the query: the same search spelled two ways is one page', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    fs.insertArticle('Pasta', 'Boil water, then the pasta.');
    const calls = { reads: 0 };
    const { app } = blogOn(fs, { wrapStore: counting(calls) });
    await request(app).get('/?search=boil+water').expect(200);
    const reads = calls.reads;
    await request(app).get('/?search=boil%20water').expect(200);
    expect(calls.reads).toBe(reads);
    // A different query is a different page.
    await request(app).get('/?search=pasta').expect(200);
    expect(calls.reads).toBeGreaterThan(reads);
  });
});

describe('a page changes as soon as the position moves', () => {
  it('on the primary: a new article and an edited one, for readers with and without a token', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 3n });
    const { app } = blogOn(fs, { region: 'fra', instance: PRIMARY_ID, wrapStore: fs.committing() });
    const before = await request(app).get('/').expect(200);
    expect(before.text).not.toContain('Fresh off the press');
    await request(app).get('/').expect(200); // cached

    const published = await submitForm(app, await openForm(app), { title: 'Fresh off the press', content: 'New.' }).expect(303);
    const location = published.headers.location as string;
    const id = Number(/\/articles\/(\d+)/.exec(location)![1]);
    expect((await request(app).get('/').expect(200)).text).toContain('Fresh off the press');
    const token = (published.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('ryw='))!.split(';')[0]!;
    expect((await request(app).get('/').set('Cookie', token).expect(200)).text).toContain('Fresh off the press');

    const article = await request(app).get(`/articles/${id}`).expect(200);
    expect(article.text).toContain('Fresh off the press');
    await saveEdit(app, await openEdit(app, id), { title: 'Edited at once', content: 'Changed.' }).expect(303);
    const edited = await request(app).get(`/articles/${id}`).expect(200);
    expect(edited.text).toContain('Edited at once');
    expect(edited.text).not.toContain('Fresh off the press');
    expect((await request(app).get('/').expect(200)).text).toContain('Edited at once');
  });

  it('on a primary following LiteFS events: its own commit shows at once, before LiteFS tells of the new position', async () => {
    events = await fakeEvents({ isPrimary: true, hostname: PRIMARY_ID });
    fs = new FakeLiteFS({ role: 'primary', position: 3n });
    const { app, node } = blogOn(fs, { region: 'fra', instance: PRIMARY_ID, events: events.url });
    await until(() => node.stats().streaming);
    await request(app).get('/').expect(200);
    await request(app).get('/').expect(200); // kept
    await submitForm(app, await openForm(app), { title: 'Committed just now', content: 'Not streamed yet.' }).expect(303);
    // The stream has said nothing: the position in memory is still 3.
    expect(node.position()).toBe(3n);
    expect((await request(app).get('/').expect(200)).text).toContain('Committed just now');
  });

  it('on a replica: what arrives with the next position shows at once (pos file)', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    fs.setLag(0);
    const id = fs.insertArticle('The old title', 'Body.');
    const { app, metrics } = blogOn(fs);
    expect((await request(app).get(`/articles/${id}`).expect(200)).text).toContain('The old title');
    expect((await request(app).get('/').expect(200)).text).not.toContain('Just replicated');
    expect(await entries(metrics)).toBe(2);

    // As LiteFS applies a transaction: the data, then the position.
    fs.insertArticle('Just replicated', 'Arrived.');
    fs.setPosition(11n);
    expect((await request(app).get('/').expect(200)).text).toContain('Just replicated');

    const edit = new (await import('better-sqlite3')).default(fs.dbPath);
    edit.prepare('UPDATE articles SET title = ? WHERE id = ?').run('The new title', id);
    edit.close();
    fs.setPosition(12n);
    const page = await request(app).get(`/articles/${id}`).expect(200);
    expect(page.text).toContain('The new title');
  });

  it('on a replica following LiteFS events: the position in memory moves the page', async () => {
    events = await fakeEvents({ isPrimary: false, hostname: PRIMARY_ID });
    fs = new FakeLiteFS({ role: 'replica', position: 20n });
    fs.setLag(0);
    const { app, node, metrics } = blogOn(fs, { events: events.url });
    events.send(formatTxid(20n));
    await until(() => node.stats().streaming && node.position() === 20n);
    expect((await request(app).get('/').expect(200)).text).not.toContain('By the stream');
    await request(app).get('/').expect(200);
    expect(await entries(metrics)).toBe(1);

    fs.insertArticle('By the stream', 'Arrived.');
    fs.setPosition(21n);
    events.send(formatTxid(21n));
    await until(() => node.position() === 21n);
    expect((await request(app).get('/').expect(200)).text).toContain('By the stream');
  });

  it('standalone: a write by another process (npm run author, a shell) shows at once', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = blogOn(fs);
    await request(app).get('/').expect(200);
    await request(app).get('/').expect(200);
    fs.insertArticle('Written from a shell', 'By another connection.');
    expect((await request(app).get('/').expect(200)).text).toContain('Written from a shell');
  });
});

describe('a reader with a token', () => {
  it('never gets a cached page from before their write: a replica behind waits, then the fresh page', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    fs.setLag(0);
    const { app, node } = blogOn(fs, { waitMs: 5_000, pollMs: 5 });
    // Pages of position 5 cached, with and without a token of 5.
    for (let i = 0; i < 2; i++) {
      await request(app).get('/').expect(200);
      await request(app)
        .get('/')
        .set('Cookie', tokenCookie(tokenFor(5n)))
        .expect(200);
    }
    // Their write committed at 6 on the primary; it reaches this replica a little later.
    const mine = tokenCookie(tokenFor(6n));
    const res = await readWhileArriving(app, node, mine, () => {
      fs!.insertArticle('My own write', 'Committed at 6.');
      fs!.setPosition(6n);
    });
    expect(res.status).toBe(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('waited');
    expect(res.text).toContain('My own write');
    // Then, with the same token, the replica has it: fresh, and still theirs.
    const next = await request(app).get('/').set('Cookie', mine).expect(200);
    expect(serverTiming(next.headers['server-timing']).desc).toBe('fresh');
    expect(next.text).toContain('My own write');
    expect((await request(app).get('/').expect(200)).text).toContain('My own write');
  });
});

describe('pages with one visitor’s content', () => {
  it('a signed-in author’s page is never served to an anonymous visitor, nor the other way round', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = blogOn(fs);
    const session = sessionOf(app, 'Ada Lovelace');
    await request(app).get('/').expect(200);
    const anonymous = await request(app).get('/').expect(200);
    expect(anonymous.text).not.toContain('Signed in as');
    const mine = await request(app).get('/').set('Cookie', session).expect(200);
    expect(mine.text).toContain('Signed in as <strong dir="auto">Ada Lovelace</strong>');
    expect(mine.text).toMatch(/name="_csrf" value="[^"]+"/);
    expect(mine.headers['cache-control']).toBe('private');
    const mineAgain = await request(app).get('/').set('Cookie', session).expect(200);
    expect(mineAgain.text).toContain('Signed in as');
    const after = await request(app).get('/').expect(200);
    expect(after.text).not.toContain('Signed in as');
    expect(after.text).not.toContain('_csrf');

    // The other way round, on a cold cache: the author first.
    const other = new FakeLiteFS({ role: 'standalone' });
    try {
      const { app: app2 } = blogOn(other);
      const session2 = sessionOf(app2, 'Grace Hopper');
      expect((await request(app2).get('/').set('Cookie', session2).expect(200)).text).toContain('Grace Hopper');
      expect((await request(app2).get('/').set('Cookie', session2).expect(200)).text).toContain('Grace Hopper');
      const visitor = await request(app2).get('/').expect(200);
      expect(visitor.text).not.toContain('Grace Hopper');
      expect(visitor.text).toContain('href="/signin"');
    } finally {
      other.close();
    }
  });

  it('forms are never cached: each carries its own CSRF token', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app, metrics } = blogOn(fs);
    const tokenOf = (text: string) => /name="_csrf" value="([^"]+)"/.exec(text)?.[1];
    const first = await request(app).get('/signin').expect(200);
    const second = await request(app).get('/signin').expect(200);
    expect(tokenOf(first.text)).toBeDefined();
    expect(tokenOf(second.text)).not.toBe(tokenOf(first.text));
    const session = sessionOf(app);
    const a = await request(app).get('/new').set('Cookie', session).expect(200);
    const b = await request(app).get('/new').set('Cookie', session).expect(200);
    expect(tokenOf(b.text)).not.toBe(tokenOf(a.text));
    for (const res of [first, second, a, b]) {
      expect(res.headers.etag ?? '').not.toMatch(/^"/);
      expect(res.headers['cache-control']).toBe('private');
    }
    const text = await metrics.registry.getSingleMetricAsString('page_cache_entries');
    expect(text).toMatch(/page_cache_entries 0/);
  });

  it('a page with a notice for one reader, an article just deleted, is not kept', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const id = fs.insertArticle('Soon gone', 'Body.');
    const calls = { reads: 0 };
    const { app } = blogOn(fs, { wrapStore: counting(calls) });
    const db = new Database(fs.dbPath);
    db.prepare('DELETE FROM articles WHERE id = ?').run(id);
    db.prepare('INSERT INTO deleted_articles (id, deleted) VALUES (?, ?)').run(id, new Date().toISOString());
    db.close();
    const first = await request(app).get(`/?deleted=${id}`).expect(200);
    expect(first.text).toContain('The article was deleted.');
    const reads = calls.reads;
    await request(app).get(`/?deleted=${id}`).expect(200);
    expect(calls.reads).toBeGreaterThan(reads);
  });

  it('a page that waited for the reader’s write, and says so, is not kept: not for the next reader with that token, nor anyone', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    fs.setLag(0);
    const { app, node, metrics } = blogOn(fs, { waitMs: 5_000, pollMs: 5 });
    const mine = tokenCookie(tokenFor(6n));
    const waited = await readWhileArriving(app, node, mine, () => {
      fs!.insertArticle('Waited for', 'Committed at 6.');
      fs!.setPosition(6n);
    });
    expect(serverTiming(waited.headers['server-timing']).desc).toBe('waited');
    expect(waited.text).toContain('notice-waited');
    expect(await entries(metrics)).toBe(0);
    // The next page with that token is met here: `fresh`, with no word of a wait, twice (rendered, then kept).
    for (let i = 0; i < 2; i++) {
      const fresh = await request(app).get('/').set('Cookie', mine).expect(200);
      expect(serverTiming(fresh.headers['server-timing']).desc).toBe('fresh');
      expect(fresh.text).toContain('Waited for');
      expect(fresh.text).not.toContain('notice-waited');
    }
    expect((await request(app).get('/').expect(200)).text).not.toContain('notice-waited');
  });

  it('the page a stale page reloads into ("caught up", its cookie cleared) is never looked up nor kept', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    fs.setLag(0);
    const calls = { reads: 0 };
    const { app } = blogOn(fs, { wrapStore: counting(calls) });
    await request(app).get('/').expect(200);
    const reads = calls.reads;
    const caughtUp = await request(app)
      .get('/')
      .set('Cookie', `${CAUGHT_UP_COOKIE}=${encodeURIComponent('/')}`)
      .expect(200);
    expect(caughtUp.text).toContain('notice-caught-up');
    expect(String(caughtUp.headers['set-cookie'])).toContain(`${CAUGHT_UP_COOKIE}=;`);
    expect(caughtUp.headers.etag ?? '').not.toMatch(/^"/);
    expect(calls.reads).toBeGreaterThan(reads);
    // Everyone else still gets the kept page, without the notice.
    const after = calls.reads;
    const other = await request(app).get('/').expect(200);
    expect(other.text).not.toContain('notice-caught-up');
    expect(other.headers['set-cookie']).toBeUndefined();
    expect(calls.reads).toBe(after);
  });

  it('a request whose forged token cookie is cleared is answered by the routes, and its page not kept', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    fs.setLag(0);
    const calls = { reads: 0 };
    const { app, metrics } = blogOn(fs, { wrapStore: counting(calls) });
    await request(app).get('/').expect(200);
    expect(await entries(metrics)).toBe(1);
    const forged = tokenCookie('s:forged');
    // Alone (decision `dropped`), and beside a met token in the RYW-Token header (`fresh`, a decision pages share).
    for (const [header, timing] of [
      [null, 'dropped'],
      [tokenFor(5n), 'fresh'],
    ] as const) {
      const reads = calls.reads;
      const req = request(app).get('/').set('Cookie', forged);
      if (header !== null) void req.set('RYW-Token', header);
      const res = await req.expect(200);
      expect(serverTiming(res.headers['server-timing']).desc).toBe(timing);
      expect(String(res.headers['set-cookie'])).toMatch(/^ryw=;/);
      expect(res.headers['cache-control']).toBe('private');
      expect(res.headers.etag ?? '').not.toMatch(/^"/);
      expect(calls.reads).toBeGreaterThan(reads);
      expect(await entries(metrics)).toBe(1);
    }
    // The `fresh` page was not kept: the first reader with only the header renders it, the next gets it kept.
    const reads = calls.reads;
    await request(app).get('/').set('RYW-Token', tokenFor(5n)).expect(200);
    expect(calls.reads).toBeGreaterThan(reads);
    const kept = calls.reads;
    const hit = await request(app).get('/').set('RYW-Token', tokenFor(5n)).expect(200);
    expect(hit.headers['set-cookie']).toBeUndefined();
    expect(calls.reads).toBe(kept);
  });
});

describe('the state names the lineage, and a state that comes back is a new one', () => {
  it('after a failover, the same TXID with another checksum is another state: no page or tag of the lost writes', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    fs.setLag(0);
    at(fs, 10n, 'ab'.repeat(8));
    const lost = fs.insertArticle('Lost in the failover', 'Only the old primary had this.');
    const { app } = blogOn(fs);
    const before = await request(app).get('/').expect(200);
    expect(before.text).toContain('Lost in the failover');
    const etag = before.headers.etag as string;
    expect(etag).toMatch(/^"/);
    expect((await request(app).get('/').set('If-None-Match', etag).expect(304)).text).toBe('');

    // The new primary never had that write and used TXID 10 for another; LiteFS re-snapshots this replica to it.
    const db = new Database(fs.dbPath);
    db.prepare('DELETE FROM articles WHERE id = ?').run(lost);
    db.close();
    fs.insertArticle('Written on the new primary', 'After the failover.');
    at(fs, 10n, 'cd'.repeat(8));
    const after = await request(app).get('/').expect(200);
    expect(after.text).toContain('Written on the new primary');
    expect(after.text).not.toContain('Lost in the failover');
    expect(after.headers.etag).not.toBe(etag);
    expect((await request(app).get('/').set('If-None-Match', etag).expect(200)).text).toContain('Written on the new primary');
    // The reader whose write that was (a token of 10 and its checksum) is met, and sees it.
    const mine = tokenCookie(signToken(tokenPayload(10n, Date.now(), 'cd'.repeat(8)), SECRETS));
    const theirs = await request(app).get('/').set('Cookie', mine).expect(200);
    expect(serverTiming(theirs.headers['server-timing']).desc).toBe('fresh');
    expect(theirs.text).toContain('Written on the new primary');
    expect(theirs.text).not.toContain('Lost in the failover');
  });

  it('a position that goes back, then forward to a TXID seen before: no tag of before is confirmed again', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    fs.setLag(0);
    at(fs, 10n, 'ab'.repeat(8));
    const id = fs.insertArticle('At ten', 'Before the restore.');
    const { app } = blogOn(fs);
    const ten = await request(app).get('/').expect(200);
    const etag = ten.headers.etag as string;
    expect(etag).toMatch(/^"/);
    await request(app).get('/').set('If-None-Match', etag).expect(304);

    // Restored to 9 (the article gone), then 10 again with other writes.
    const db = new Database(fs.dbPath);
    db.prepare('DELETE FROM articles WHERE id = ?').run(id);
    db.close();
    at(fs, 9n, 'ef'.repeat(8));
    const nine = await request(app).get('/').set('If-None-Match', etag).expect(200);
    expect(nine.text).not.toContain('At ten');
    fs.insertArticle('Ten again', 'After the restore.');
    at(fs, 10n, '12'.repeat(8));
    const again = await request(app).get('/').set('If-None-Match', etag).expect(200);
    expect(again.text).toContain('Ten again');
    expect(again.text).not.toContain('At ten');
    expect(new Set([etag, nine.headers.etag, again.headers.etag]).size).toBe(3);

    // Even back at the very TXID and checksum of a tag given before, that tag is not confirmed: its epoch is over.
    const tag = again.headers.etag as string;
    at(fs, 9n, 'ef'.repeat(8));
    await request(app).get('/').expect(200);
    at(fs, 10n, '12'.repeat(8));
    const back = await request(app).get('/').set('If-None-Match', tag).expect(200);
    expect(back.headers.etag).not.toBe(tag);
    await request(app)
      .get('/')
      .set('If-None-Match', back.headers.etag as string)
      .expect(304);
  });

  it('a replica that cannot name its position, or its checksum yet, keeps and confirms nothing', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 4n });
    fs.setLag(0);
    const calls = { reads: 0 };
    const { app, metrics } = blogOn(fs, { wrapStore: counting(calls) });
    const known = await request(app).get('/').expect(200);
    const etag = known.headers.etag as string;
    expect(etag).toMatch(/^"/);
    expect(await entries(metrics)).toBe(1);

    // The pos file unreadable (LiteFS mid-restart): no position.
    fs.writePositionFile('garbage');
    for (let i = 0; i < 2; i++) {
      const reads = calls.reads;
      const res = await request(app).get('/').set('If-None-Match', etag).expect(200);
      expect(res.headers.etag ?? '').not.toMatch(/^"/);
      expect(calls.reads).toBeGreaterThan(reads);
    }
    expect(await entries(metrics)).toBe(1);

    // A replica just started, not yet heard from its primary (`.lag` says it never synced): its database may
    // still be replaced by a snapshot, so its checksums are not known yet.
    const other = new FakeLiteFS({ role: 'replica', position: 4n });
    try {
      other.setLag(2 ** 31 - 1);
      const counted = { reads: 0 };
      const { app: app2, metrics: metrics2 } = blogOn(other, { wrapStore: counting(counted) });
      for (let i = 0; i < 2; i++) {
        const reads = counted.reads;
        const res = await request(app2).get('/').expect(200);
        expect(res.headers.etag ?? '').not.toMatch(/^"/);
        expect(counted.reads).toBeGreaterThan(reads);
      }
      expect(await entries(metrics2)).toBe(0);
    } finally {
      other.close();
    }
  });

  it('a page whose render spans a move of the position is sent, not kept', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    fs.setLag(0);
    let moveDuringRender = true;
    const calls = { reads: 0 };
    const moving = (store: ArticleStore): ArticleStore => {
      const counted = counting(calls)(store);
      return {
        ...counted,
        list: (...args) => {
          const page = counted.list(...args);
          // LiteFS applies a transaction while the page is being rendered.
          if (moveDuringRender) {
            moveDuringRender = false;
            fs!.insertArticle('Arrived mid-render', 'At 11.');
            fs!.setPosition(11n);
          }
          return page;
        },
      };
    };
    const { app, metrics } = blogOn(fs, { wrapStore: moving });
    await request(app).get('/').expect(200);
    expect(moveDuringRender).toBe(false);
    expect(await entries(metrics)).toBe(0);
    const reads = calls.reads;
    expect((await request(app).get('/').expect(200)).text).toContain('Arrived mid-render');
    expect(calls.reads).toBeGreaterThan(reads);
    expect(await entries(metrics)).toBe(1);
  });
});
