import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { TOKEN_COOKIE } from '../../src/ryw/index.js';
import { cookiePair, FakeLiteFS, PRIMARY_ID, serverTiming, TEST_PASSWORD } from '../support/fake-litefs.js';

let primary: FakeLiteFS;
let replica: FakeLiteFS;
afterEach(() => {
  primary?.close();
  replica?.close();
});

/** What LiteFS does, by hand: the replica's authors and sessions become the primary's, then its position moves. */
function replicate(position: bigint): void {
  const db = new Database(replica.dbPath);
  db.exec(`ATTACH DATABASE '${primary.dbPath}' AS p`);
  db.exec(
    'DELETE FROM sessions; DELETE FROM authors; INSERT INTO authors SELECT * FROM p.authors; INSERT INTO sessions SELECT * FROM p.sessions;',
  );
  db.close();
  replica.setPosition(position);
}

const signedInAs = (html: string) => /Signed in as <strong dir="auto">([^<]*)<\/strong>/.exec(html)?.[1] ?? null;

describe('signed in on every replica, right after signing in on the primary', () => {
  it('a replica waits for the sign-in token, then finds the session: never a "signed out" flash', async () => {
    primary = new FakeLiteFS({ role: 'primary', position: 10n });
    replica = new FakeLiteFS({ role: 'replica', position: 10n });
    await primary.insertAuthor('Ada');
    replicate(10n);
    const primaryApp = primary.app({ region: 'fra', instance: PRIMARY_ID }).app;
    const replicaApp = replica.app({ region: 'syd', instance: 'syd-1', waitMs: 4_000 }).app;

    // The sign-in form, rendered by the replica (CSRF keys are shared), and the POST, which the replica replays.
    const form = await request(replicaApp).get('/signin').expect(200);
    const csrf = cookiePair(form.headers, 'csrf')!;
    const fields = { name: 'Ada', password: TEST_PASSWORD, _csrf: /name="_csrf" value="([^"]+)"/.exec(form.text)![1]! };
    const replayed = await request(replicaApp).post('/signin').set('Cookie', csrf).type('form').send(fields).expect(409);
    expect(replayed.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
    expect(cookiePair(replayed.headers, SESSION_COOKIE)).toBeUndefined();

    // On the primary (as the edge replays it) the session commits, moving LiteFS's position to 11.
    primary.setPosition(11n);
    const signedIn = await request(primaryApp).post('/signin').set('Cookie', csrf).type('form').send(fields).expect(303);
    expect(serverTiming(signedIn.headers['server-timing']).desc).toBe('issued');
    const cookies = [cookiePair(signedIn.headers, SESSION_COOKIE)!, cookiePair(signedIn.headers, TOKEN_COOKIE)!, csrf].join('; ');

    // Without the token the replica would not know to wait: the session row is not here yet.
    const withoutToken = await request(replicaApp).get('/').set('Cookie', cookiePair(signedIn.headers, SESSION_COOKIE)!).expect(200);
    expect(signedInAs(withoutToken.text)).toBeNull();

    // With it, the page waits until the row has arrived, and names the author.
    const started = performance.now();
    setTimeout(() => replicate(11n), 300);
    const next = await request(replicaApp).get('/').set('Cookie', cookies).expect(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    const timing = serverTiming(next.headers['server-timing']);
    expect(timing.desc).toBe('waited');
    expect(timing.dur).toBeGreaterThanOrEqual(280);
    expect(timing.dur).toBeLessThan(3_000);
    expect(signedInAs(next.text)).toBe('Ada');
  });

  it('signing out on a replica is replayed to the primary; the session is gone wherever the deletion has arrived', async () => {
    primary = new FakeLiteFS({ role: 'primary', position: 20n });
    replica = new FakeLiteFS({ role: 'replica', position: 20n });
    await primary.insertAuthor('Ada');
    const primaryApp = primary.app({ region: 'fra', instance: PRIMARY_ID }).app;
    const replicaApp = replica.app({ region: 'syd', instance: 'syd-1', waitMs: 4_000 }).app;

    const form = await request(primaryApp).get('/signin').expect(200);
    const csrf = cookiePair(form.headers, 'csrf')!;
    primary.setPosition(21n);
    const signedIn = await request(primaryApp)
      .post('/signin')
      .set('Cookie', csrf)
      .type('form')
      .send({ name: 'Ada', password: TEST_PASSWORD, _csrf: /name="_csrf" value="([^"]+)"/.exec(form.text)![1]! })
      .expect(303);
    const session = cookiePair(signedIn.headers, SESSION_COOKIE)!;
    replicate(21n);
    const page = await request(replicaApp).get('/').set('Cookie', `${session}; ${csrf}`).expect(200);
    expect(signedInAs(page.text)).toBe('Ada');

    // The nav's sign-out form, from the replica's page: replayed to the primary, which deletes the session.
    const token = /<form class="signout"[^>]*>\s*<input type="hidden" name="_csrf" value="([^"]+)">/.exec(page.text)![1]!;
    const out = () => request(replicaApp).post('/signout').set('Cookie', `${session}; ${csrf}`).type('form').send({ _csrf: token });
    expect((await out().expect(409)).headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
    primary.setPosition(22n);
    const signedOut = await request(primaryApp)
      .post('/signout')
      .set('Cookie', `${session}; ${csrf}`)
      .type('form')
      .send({ _csrf: token })
      .expect(303);

    // A copy of the old cookie (a thief's) still reads pages as Ada on a replica the deletion has not
    // reached (docs/consistency.md, "Sessions"): a replica's reads are only as fresh as the replica.
    expect(signedInAs((await request(replicaApp).get('/').set('Cookie', session).expect(200)).text)).toBe('Ada');
    // The browser that signed out carries the sign-out's token: its next page waits for the deletion.
    setTimeout(() => replicate(22n), 300);
    const next = await request(replicaApp)
      .get('/')
      .set('Cookie', `${cookiePair(signedOut.headers, TOKEN_COOKIE)!}; ${csrf}`)
      .expect(200);
    expect(serverTiming(next.headers['server-timing']).desc).toBe('waited');
    expect(signedInAs(next.text)).toBeNull();
    // Once the deletion has arrived, the old cookie opens nothing there either.
    expect(signedInAs((await request(replicaApp).get('/').set('Cookie', session).expect(200)).text)).toBeNull();
  });
});
