/**
 * The read-your-writes layer's judgement of tokens and roles at its edges:
 * which requests get tokens, which tokens count, and what a node that cannot
 * read LiteFS's files takes itself for.
 */
import { mkdirSync, rmSync } from 'node:fs';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_CLOCK_SKEW_MS } from '../../src/ryw/token.js';
import { fakeEvents, type FakeEvents } from '../support/fake-events.js';
import { FakeLiteFS, PRIMARY_ID, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';
import { openForm, submitForm } from '../support/forms.js';
import { until } from '../support/until.js';

let fs: FakeLiteFS | undefined;
let events: FakeEvents | undefined;
afterEach(async () => {
  fs?.close();
  fs = undefined;
  await events?.close();
  events = undefined;
});

const setCookies = (headers: Record<string, unknown>) => (headers['set-cookie'] as string[] | undefined) ?? [];
const clearsTokenCookie = (headers: Record<string, unknown>) =>
  setCookies(headers).some((c) => /^ryw=; .*Expires=Thu, 01 Jan 1970/.test(c));
const setsToken = (headers: Record<string, unknown>) =>
  headers['ryw-token'] !== undefined || setCookies(headers).some((c) => /^ryw=s/.test(c));

describe('tokens are issued only for writes the app served', () => {
  it('OPTIONS is a read: answered where it lands, with no token, on the primary and on a replica', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 5n });
    const primary = fs.app({ region: 'fra', instance: PRIMARY_ID }).app;
    const onPrimary = await request(primary).options('/new');
    expect(onPrimary.status).toBeLessThan(400);
    expect(setsToken(onPrimary.headers)).toBe(false);
    expect(serverTiming(onPrimary.headers['server-timing']).desc).toBe('none');
    fs.close();

    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const replica = fs.app().app;
    const onReplica = await request(replica).options('/new');
    expect(onReplica.headers['fly-replay']).toBeUndefined();
    expect(setsToken(onReplica.headers)).toBe(false);
  });

  it('a write the app answered 404 (no such route) gets no token', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 5n });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const res = await request(app).post('/no-such-page').expect(404);
    expect(setsToken(res.headers)).toBe(false);
  });
});

describe('each carried token is judged on its own', () => {
  it('a cookie of an older lineage is dropped and cleared, and the valid header beside it is still honoured', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    fs.setLag(900); // in touch with the primary: heard from it 0.9 s ago
    const { app } = fs.app({ waitMs: 150, fallback: 'error' });
    const res = await request(app)
      .get('/')
      // Far ahead and issued long before what this replica has heard: an older lineage.
      .set('Cookie', tokenCookie(tokenFor(500n, { issuedAt: Date.now() - 60_000 })))
      // Just ahead, issued now: this replica must wait for it (and, with the error fallback, say so).
      .set('RYW-Token', tokenFor(11n));
    expect(res.status).toBe(503);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('unavailable');
    expect(clearsTokenCookie(res.headers)).toBe(true);
    const metrics = await request(app).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/ryw_tokens_dropped_total\{reason="lineage"\} 1/);
  });

  it("a cookie in cookie-parser's JSON form (ryw=j:{}) is malformed: dropped and cleared, never a 500", async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 2_000, fallback: 'error' });
    for (const value of ['j:{}', 'j:[1,2]', 'j:42', 'j:null']) {
      const res = await request(app)
        .get('/')
        .set('Cookie', `ryw=${encodeURIComponent(value)}`)
        .expect(200);
      expect(serverTiming(res.headers['server-timing'])).toEqual({ desc: 'dropped', dur: 0 });
      expect(clearsTokenCookie(res.headers)).toBe(true);
    }
    const metrics = await request(app).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/ryw_tokens_dropped_total\{reason="malformed"\} 4/);
  });
});

describe('a token issued in the future', () => {
  it.each([
    ['far beyond the allowed clock skew is refused: it would outlive RYW_TTL_S', MAX_CLOCK_SKEW_MS + 60_000, 'dropped'],
    ["within the allowed clock skew counts (the primary's clock runs a little ahead)", MAX_CLOCK_SKEW_MS / 2, 'fresh'],
  ])('%s', async (_name, aheadMs, desc) => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 2_000, fallback: 'error' });
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(10n, { issuedAt: Date.now() + aheadMs })))
      .expect(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe(desc);
  });
});

describe('a .primary that exists but cannot be read', () => {
  it('means "primary unknown", never "I am the primary": writes get 503, not served here', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 7n });
    fs.setPrimary(null);
    mkdirSync(fs.files.primaryPath); // reading it fails with EISDIR, as EACCES or EIO would
    const { app } = fs.app();
    expect((await request(app).get('/healthz').expect(200)).body).toMatchObject({ role: 'replica' });
    const form = await openForm(app);
    const write = await submitForm(app, form, { title: 'Lost?', content: 'Never served by a node that cannot tell.' });
    expect(write.status).toBe(503);
    expect(write.headers['fly-replay']).toBeUndefined();
    expect(write.headers['retry-after']).toBeDefined();

    // Once it can be read again, the node follows it.
    rmSync(fs.files.primaryPath, { recursive: true });
    fs.setPrimary(PRIMARY_ID);
    expect((await request(app).post('/new').expect(409)).headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
  });
});

describe('on the primary, following LiteFS events (LITEFS_API)', () => {
  it("never judges its own fresh token ahead of it, though the token's tx event has not arrived yet", async () => {
    events = await fakeEvents({ isPrimary: true });
    fs = new FakeLiteFS({ role: 'primary', position: 41n });
    const { app, node } = fs.app({ region: 'fra', instance: PRIMARY_ID, events: events.url });
    await until(() => node.stats().streaming);
    // A commit the stream has not told of yet (e.g. written by another process on this node).
    fs.setPosition(42n);
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(42n)))
      .expect(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('fresh');
    expect(clearsTokenCookie(res.headers)).toBe(false);
    // What the decision learnt, every later decision and /metrics know too.
    expect((await request(app).get('/metrics').expect(200)).text).toMatch(/litefs_position_txid 42/);
  });

  it('hands out the committed position and then honours it at once', async () => {
    events = await fakeEvents({ isPrimary: true });
    fs = new FakeLiteFS({ role: 'primary', position: 41n });
    const { app, node } = fs.app({ region: 'fra', instance: PRIMARY_ID, events: events.url, wrapStore: fs.committing() }); // 41 → 42 at the commit; its tx event is slower
    await until(() => node.stats().streaming);
    const form = await openForm(app);
    const published = await submitForm(app, form, { title: 'Mine', content: 'Read it at once.' }).expect(303);
    const token = published.headers['ryw-token'] as string;
    expect(token).toMatch(/^s:000000000000002a\/(ab){8}\./);
    const page = await request(app)
      .get(published.headers.location as string)
      .set('RYW-Token', token)
      .expect(200);
    expect(serverTiming(page.headers['server-timing']).desc).toBe('fresh');
  });
});
