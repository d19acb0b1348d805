import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLiteFS, PRIMARY_ID, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

describe('roles, from the files LiteFS maintains', () => {
  it('is standalone without a -pos file', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app({ region: 'local', instance: 'laptop' });
    const res = await request(app).get('/healthz').expect(200);
    expect(res.body).toEqual({ status: 'ok', role: 'standalone', position: null, primary: 'known' });
  });

  it('is the primary with a -pos file and no .primary', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 42n });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const res = await request(app).get('/healthz').expect(200);
    expect(res.body).toEqual({ status: 'ok', role: 'primary', position: '000000000000002a', primary: 'known' });
  });

  it('is a replica when .primary names the primary', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 7n });
    const { app } = fs.app({ region: 'syd', instance: 'syd-1' });
    const res = await request(app).get('/healthz').expect(200);
    expect(res.body).toEqual({ status: 'ok', role: 'replica', position: '0000000000000007', primary: 'known' });
  });

  it('is a replica, primary unknown, while .primary is gone but .lag shows it reconnecting', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 7n });
    fs.setPrimary(null);
    fs.setLag(1_250);
    const { app } = fs.app({ primaryWaitMs: 200 });
    expect((await request(app).get('/healthz')).body).toMatchObject({ role: 'replica', primary: null });
    // After waiting (a short while) for a primary to be named: see test/http/no-primary.test.ts.
    const write = await request(app).post('/signout').expect(503);
    expect(write.headers['fly-replay']).toBeUndefined();
    fs.setLag(0); // what LiteFS writes on the primary
    expect((await request(app).get('/healthz')).body).toMatchObject({ role: 'primary' });
  });

  it('follows a primary change without a restart', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app();
    expect((await request(app).get('/healthz')).body.role).toBe('replica');
    fs.setPrimary(null);
    expect((await request(app).get('/healthz')).body.role).toBe('primary');
  });

  it.each([
    ['malformed', 'not a position\n'],
    ['truncated', '0000000000'],
    ['empty', ''],
  ])('serves pages when the -pos file is %s: position unknown, no crash', async (_name, content) => {
    fs = new FakeLiteFS({ role: 'replica' });
    fs.writePositionFile(content);
    const { app } = fs.app();
    expect((await request(app).get('/healthz').expect(200)).body.position).toBeNull();
    await request(app).get('/').expect(200);
  });

  it('says on every page where it was served from', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app({ region: 'syd', instance: 'syd-1' });
    const res = await request(app).get('/').expect(200);
    expect(res.text).toMatch(/Served from region <strong>syd<\/strong> by instance <strong>syd-1<\/strong> \(replica\)/);
  });
});

describe('writes on a replica are replayed to the primary', () => {
  // OPTIONS (like GET, HEAD, TRACE) is a safe method: served where it lands (test/http/token-judgement.test.ts).
  it.each(['post', 'put', 'delete', 'patch'] as const)('%s gets 409 with fly-replay naming the primary', async (method) => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app();
    const res = await request(app)[method]('/new').expect(409);
    expect(res.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('replayed');
    expect(res.text).toMatch(/read-only replica.*primary \(fra-1\)/);
  });

  it('replays GETs on configured write paths too, and no other GET', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app({ writePaths: ['/unsubscribe'] });
    const res = await request(app).get('/unsubscribe').expect(409);
    expect(res.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
    const home = await request(app).get('/').expect(200);
    expect(home.headers['fly-replay']).toBeUndefined();
  });

  it('serves writes itself on the primary', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const res = await request(app).post('/new').type('form').send({ title: 'x', content: 'y' });
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(res.status).toBe(403); // no CSRF token: it reached the handler, not the replay
  });
});

describe('?region=', () => {
  it('rejects a malformed region with 400', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app();
    for (const bad of ['SYD', 's', 'syd!', 'abcdefghijklm', '']) {
      const res = await request(app).get('/').query({ region: bad }).expect(400);
      expect(res.text).toMatch(/lowercase letters or digits/);
      expect(res.text).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    }
    await request(app).get('/?region=syd&region=ewr').expect(400);
  });

  it('replays to another region', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app({ region: 'ewr' });
    const res = await request(app).get('/?region=syd').expect(409);
    expect(res.headers['fly-replay']).toBe('region=syd');
  });

  it('serves in its own region; with an unmet token it serves stale there, never replays away', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const { app } = fs.app({ region: 'syd', waitMs: 150, fallback: 'replay' });
    const res = await request(app)
      .get('/?region=syd')
      .set('Cookie', tokenCookie(tokenFor(6n)))
      .expect(200);
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(serverTiming(res.headers['server-timing']).desc).toBe('stale');
    expect(res.text).toContain('data-ryw="stale"');
  });
});

describe('the replay loop guard', () => {
  it('never replays a read back to the instance it came from: it serves it stale, marked', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const { app } = fs.app({ waitMs: 100, fallback: 'replay' });
    const res = await request(app)
      .get('/')
      .set('fly-replay-src', `instance=${PRIMARY_ID};region=fra;t=1700000000000000;state=ryw`)
      .set('Cookie', tokenCookie(tokenFor(6n)))
      .expect(200);
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(serverTiming(res.headers['server-timing']).desc).toBe('stale');
    expect(res.text).toMatch(/still on its way/);
  });

  it('answers a write replayed from the primary it would replay to with 503, not another replay', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app();
    // A write that is no form (a form's route would first check its CSRF token: 403 without one).
    const res = await request(app).post('/signout').set('fly-replay-src', `instance=${PRIMARY_ID};region=fra;t=1`).expect(503);
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(res.headers['retry-after']).toBeDefined();
    expect(serverTiming(res.headers['server-timing']).desc).toBe('unavailable');
  });

  it('still replays a write that came from some other instance', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app();
    const res = await request(app).post('/new').set('fly-replay-src', 'instance=ewr-1;region=ewr;t=1').expect(409);
    expect(res.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
  });
});
