/**
 * Writes that reach a replica while no primary is named (LiteFS between two
 * primaries): they wait a short bound for one, then are replayed to it, or
 * served here if this node became it, or get 503 with Retry-After and the
 * form with everything typed. And /healthz says whether a primary is known,
 * with 200 throughout. Real clocks; the bounds are generous.
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeEvents, type FakeEvents } from '../support/fake-events.js';
import { RETRY_AFTER_S } from '../../src/ryw/index.js';
import { FakeLiteFS, PRIMARY_ID, serverTiming } from '../support/fake-litefs.js';
import { openEdit, openForm, openPage, postForm, sessionOf, submitForm, saveEdit } from '../support/forms.js';

/** Short, so the tests are quick; long against the poll (25 ms) and the settle time. */
const PRIMARY_WAIT_MS = 400;
/** What a replica's `.lag` says while it reconnects (anything but 0, which only the primary writes). */
const RECONNECTING_LAG_MS = 1_250;

let fs: FakeLiteFS;
let events: FakeEvents | undefined;
afterEach(async () => {
  fs?.close();
  await events?.close();
  events = undefined;
});

/** A replica whose `.primary` is gone and whose `.lag` says it is reconnecting: no primary named. */
function replicaWithoutPrimary(options: { primaryWaitMs?: number } = {}) {
  fs = new FakeLiteFS({ role: 'replica', position: 5n });
  fs.setPrimary(null);
  fs.setLag(RECONNECTING_LAG_MS);
  return fs.app({ region: 'syd', instance: 'syd-1', primaryWaitMs: options.primaryWaitMs ?? PRIMARY_WAIT_MS });
}

const articleCount = () => {
  const db = new Database(fs.dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM articles').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

const timed = async <T>(work: () => PromiseLike<T>): Promise<{ value: T; ms: number }> => {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
};

describe('a write while no primary is named', () => {
  it('waits the bound, then answers 503 with Retry-After and the form with everything typed, having written nothing', async () => {
    const { app } = replicaWithoutPrimary();
    const form = await openForm(app);
    const before = articleCount();
    const { value: res, ms } = await timed(() =>
      submitForm(app, form, { title: 'Written during a failover', content: 'Every word of it kept', _draft: form.draft }),
    );
    expect(res.status).toBe(503);
    // When the layer says (RETRY_AFTER_S): a new primary is usually named within a few seconds.
    expect(res.headers['retry-after']).toBe(String(RETRY_AFTER_S));
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(res.text).toContain('value="Written during a failover"');
    expect(res.text).toContain('Every word of it kept');
    expect(res.text).toContain(`name="_draft" value="${form.draft}"`);
    expect(res.text).toContain('the primary may be changing');
    expect(articleCount()).toBe(before);
    // It waited for a primary, but not for ever.
    expect(ms).toBeGreaterThanOrEqual(PRIMARY_WAIT_MS - 20);
    expect(ms).toBeLessThan(PRIMARY_WAIT_MS + 2_000);
    expect(serverTiming(res.headers['server-timing'])).toMatchObject({ desc: 'unavailable' });
  });

  it('answers a JSON client (the form script) with 503 JSON, never a plain text page', async () => {
    const { app } = replicaWithoutPrimary();
    const form = await openForm(app);
    const res = await submitForm(app, form, { title: 'T', content: 'C', _draft: form.draft }).set('Accept', 'application/json');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.body).toMatchObject({ error: 'unavailable', message: expect.stringContaining('text is still here') });
  });

  it('keeps an edit: the form again with the new text and its revision', async () => {
    const { app } = replicaWithoutPrimary();
    const id = fs.insertArticle('Old title', 'Old text');
    const form = await openEdit(app, id);
    const res = await saveEdit(app, form, { title: 'New title typed', content: 'New text typed' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.text).toContain('value="New title typed"');
    expect(res.text).toContain('New text typed');
    expect(res.text).toContain(`name="_revision" value="${form.revision}"`);
    expect((await request(app).get(`/articles/${id}`)).text).toContain('Old title');
  });

  it('keeps a deletion: the confirmation again, the article still there', async () => {
    const { app } = replicaWithoutPrimary();
    const id = fs.insertArticle('Still here', 'Text');
    const session = sessionOf(app);
    const page = await openPage(app, `/articles/${id}/delete`, session);
    const res = await postForm(app, `/articles/${id}/delete`, { ...page, cookie: `${page.cookie}; ${session}` }, { _revision: '1' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.text).toContain(`action="/articles/${id}/delete"`);
    expect(res.text).toContain('Nothing was deleted');
    expect((await request(app).get(`/articles/${id}`)).status).toBe(200);
  });

  it('keeps a sign-in: the form again with the name typed, and no session', async () => {
    const { app } = replicaWithoutPrimary();
    await fs.insertAuthor('Ada');
    const page = await openPage(app, '/signin');
    const res = await postForm(app, '/signin', page, { name: 'Ada', password: 'whatever it is' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.text).toContain('value="Ada"');
    expect(res.text).toContain('<form');
    expect(String(res.headers['set-cookie'] ?? '')).not.toContain('session=');
  });

  it('gives any other write the blog’s error page, not a plain text one', async () => {
    const { app } = replicaWithoutPrimary();
    const res = await request(app).post('/signout').set('Cookie', sessionOf(app));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe(String(RETRY_AFTER_S));
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.text).toContain('No primary is known right now');
    expect(res.text).toContain('Nothing was saved');
  });

  it('words a write it must not replay (back where it came from) as that, not as a missing primary', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app();
    const res = await request(app)
      .post('/signout')
      .set('Cookie', sessionOf(app))
      .set('fly-replay-src', `instance=${PRIMARY_ID};region=fra;t=1`);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe(String(RETRY_AFTER_S));
    expect(res.text).toContain('cannot reach the primary');
    expect(res.text).not.toContain('No primary');
  });

  it('is replayed to the primary named meanwhile, as soon as it is named', async () => {
    const { app } = replicaWithoutPrimary({ primaryWaitMs: 3_000 });
    const form = await openForm(app);
    const fake = fs; // the timer must not touch the next test's fake
    setTimeout(() => fake.setPrimary('fra-2'), 150);
    const { value: res, ms } = await timed(() => submitForm(app, form, { title: 'T', content: 'C', _draft: form.draft }));
    expect(res.status).toBe(409);
    expect(res.headers['fly-replay']).toBe('instance=fra-2');
    expect(ms).toBeGreaterThanOrEqual(140);
    expect(ms).toBeLessThan(2_000);
    expect(serverTiming(res.headers['server-timing'])).toMatchObject({ desc: 'replayed' });
  });

  it('is served here when this node becomes the primary meanwhile', async () => {
    const { app } = replicaWithoutPrimary({ primaryWaitMs: 3_000 });
    const form = await openForm(app);
    const before = articleCount();
    const fake = fs;
    setTimeout(() => fake.setLag(0), 150); // what LiteFS writes once this node holds the lease
    const { value: res, ms } = await timed(() => submitForm(app, form, { title: 'Mine now', content: 'C', _draft: form.draft }));
    expect(res.status).toBe(303);
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(articleCount()).toBe(before + 1);
    expect(ms).toBeLessThan(2_000);
  });

  it('replays at once, without waiting, while a primary is named', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const { app } = fs.app({ primaryWaitMs: 5_000 });
    const form = await openForm(app);
    const { value: res, ms } = await timed(() => submitForm(app, form, { title: 'T', content: 'C', _draft: form.draft }));
    expect(res.status).toBe(409);
    expect(res.headers['fly-replay']).toBe('instance=fra-1');
    expect(ms).toBeLessThan(1_000);
  });
});

describe('a write while no primary is named, with the event stream', () => {
  async function streamingReplica() {
    events = await fakeEvents({ isPrimary: false, hostname: 'fra-1' });
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const built = fs.app({ region: 'syd', instance: 'syd-1', events: events.url, primaryWaitMs: 3_000 });
    for (let i = 0; i < 200 && !built.node.stats().streaming; i++) await new Promise((r) => setTimeout(r, 10));
    expect(built.node.stats().streaming).toBe(true);
    return built;
  }
  const cutOff = () => events!.sendRaw({ type: 'primaryChange', data: { isPrimary: false } });
  const named = (hostname: string) => events!.sendRaw({ type: 'primaryChange', data: { isPrimary: false, hostname } });

  it('waits while the stream names no primary, and is replayed to the one it names next', async () => {
    const { app, node } = await streamingReplica();
    const form = await openForm(app);
    cutOff();
    for (let i = 0; i < 200 && node.role().primary !== null; i++) await new Promise((r) => setTimeout(r, 5));
    expect(node.role()).toEqual({ role: 'replica', primary: null });
    const stream = events!;
    setTimeout(() => stream.sendRaw({ type: 'primaryChange', data: { isPrimary: false, hostname: 'fra-2' } }), 150);
    const { value: res, ms } = await timed(() => submitForm(app, form, { title: 'T', content: 'C', _draft: form.draft }));
    expect(res.status).toBe(409);
    expect(res.headers['fly-replay']).toBe('instance=fra-2');
    expect(ms).toBeGreaterThanOrEqual(140);
    expect(ms).toBeLessThan(2_000);
  });

  it('is not sent to a primary named only for a moment (LiteFS retrying the one that crashed)', async () => {
    const { app, node } = await streamingReplica();
    const form = await openForm(app);
    cutOff();
    for (let i = 0; i < 200 && node.role().primary !== null; i++) await new Promise((r) => setTimeout(r, 5));
    // Named, then not, within a few ms (well under PRIMARY_SETTLE_MS): as each
    // reconnection attempt to a dead primary does, about once a second.
    // Its timers stop with the test: none may touch the stream once it is closed.
    let cut: NodeJS.Timeout | undefined;
    const flicker = setInterval(() => {
      named('fra-1');
      cut = setTimeout(cutOff, 2);
    }, 100);
    try {
      const res = await submitForm(app, form, { title: 'T', content: 'C', _draft: form.draft });
      expect(res.status).toBe(503);
      expect(res.headers['fly-replay']).toBeUndefined();
    } finally {
      clearInterval(flicker);
      clearTimeout(cut);
    }
  }, 10_000);
});

describe('/healthz during a failover', () => {
  it('stays 200 and says whether a primary is known, never its name', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 7n });
    const { app } = fs.app();
    const named = await request(app).get('/healthz').expect(200);
    expect(named.body).toEqual({ status: 'ok', role: 'replica', position: '0000000000000007', primary: 'known' });
    expect(named.text).not.toContain('fra-1');
    fs.setPrimary(null);
    fs.setLag(RECONNECTING_LAG_MS);
    const none = await request(app).get('/healthz').expect(200);
    expect(none.body).toEqual({ status: 'ok', role: 'replica', position: '0000000000000007', primary: null });
    fs.setLag(0);
    const promoted = await request(app).get('/healthz').expect(200);
    expect(promoted.body).toEqual({ status: 'ok', role: 'primary', position: '0000000000000007', primary: 'known' });
  });
});
