import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { BUSY_BACKOFF_MS } from '../../src/sqlite/database.js';
import { FakeLiteFS, PRIMARY_ID, serverTiming } from '../support/fake-litefs.js';
import { FORM_WRITER, openForm, sessionOf, submitForm } from '../support/forms.js';
import { holdFileLock, holdReadLock, releaseLocks } from '../support/locks.js';

// On a LiteFS replica, LiteFS holds the database's lock while a transaction
// streams in; a stalled link holds it for as long as it stalls. Here another
// connection holds it (holdFileLock): in rollback-journal mode, the app's,
// readers are then locked out as they are on such a replica.

let fs: FakeLiteFS;
afterEach(() => {
  releaseLocks();
  fs?.close();
});

describe('a locked database', () => {
  it('on a replica, sends reads to the primary after a short wait, not a frozen process', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    let now = Date.now();
    const { app } = fs.app({ databaseClock: () => now });
    const unlock = holdFileLock(fs.dbPath);

    const started = performance.now();
    const first = await request(app).get('/').expect(409);
    // SQLite's busy wait blocks the whole process: it must stay short (it was 5 s).
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(first.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
    expect(first.text).toMatch(/busy applying changes/);
    expect(serverTiming(first.headers['server-timing']).desc).toBe('replayed');

    // The lock is gone, but within the back-off the replica does not touch
    // SQLite again (one short freeze per back-off, not one per request).
    unlock();
    const second = await request(app).get('/articles/1').expect(409);
    expect(second.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
    now += BUSY_BACKOFF_MS - 1;
    await request(app).get('/').expect(409);

    // Once the back-off is over, the replica serves again.
    now += 1;
    await request(app).get('/').expect(200);
  });

  it('never replays a read back to the primary it came from: 503 with Retry-After', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app();
    holdFileLock(fs.dbPath); // released after the test
    const res = await request(app).get('/').set('fly-replay-src', `instance=${PRIMARY_ID};region=fra;t=1`).expect(503);
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(res.headers['retry-after']).toBe('1');
  });

  it('on the primary, answers 503 with Retry-After and keeps the author’s text', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const form = await openForm(app);
    holdFileLock(fs.dbPath); // released after the test

    const res = await submitForm(app, form, { title: 'Written while locked', content: 'Every word kept.' }).expect(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.text).toContain('value="Written while locked"');
    expect(res.text).toContain('Every word kept.</textarea>');
    await request(app).get('/').expect(503);
  });

  it('tells a signed-in author whose page could not be read neither that they are signed in nor signed out', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const session = sessionOf(app);
    expect((await request(app).get('/').set('Cookie', session).expect(200)).text).toContain(FORM_WRITER);
    holdFileLock(fs.dbPath); // released after the test: the session lookup itself is refused
    const res = await request(app).get('/').set('Cookie', session).expect(503);
    expect(res.text).toMatch(/busy/);
    expect(res.text).not.toContain('Signed in as');
    expect(res.text).not.toContain('href="/signin"');
  });

  it('on the primary, a write refused at its COMMIT fails that write alone: reads go on at once', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const form = await openForm(app);
    // Another connection (a search, the author command) holds a read lock: the INSERT runs, COMMIT cannot.
    const unlock = holdReadLock(fs.dbPath);
    await submitForm(app, form, { title: 'Refused at COMMIT', content: 'Kept in the form.' }).expect(503);
    unlock();
    // No back-off: the primary has nowhere to send its readers, so they must not wait for one.
    await request(app).get('/').expect(200);
    await request(app).get('/healthz').expect(200);
  });
});
