/**
 * Sign-in, sign-out and setup are writes, and nothing of them is
 * acknowledged before it is committed (as test/http/durable-writes.test.ts
 * holds for articles): a COMMIT refused because another connection is
 * reading answers 503 with Retry-After and the form with the name kept,
 * sets no session cookie, ends no session and hands out no read-your-writes
 * token; the same form sent again once the lock is gone works at once (a
 * refused COMMIT starts no busy back-off, see SqliteDatabase.guard()).
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { ACCOUNT_LIMIT } from '../../src/sign-in-limits.js';
import type { SqliteDatabase } from '../../src/sqlite/database.js';
import { holdReadLock, releaseLocks } from '../support/locks.js';
import { cookiePair, FakeLiteFS, PRIMARY_ID, signIn, TEST_PASSWORD } from '../support/fake-litefs.js';
import { openPage, postForm } from '../support/forms.js';

type App = ReturnType<FakeLiteFS['app']>['app'];

let fs: FakeLiteFS;
let cleanups: (() => void)[] = [];
afterEach(() => {
  releaseLocks();
  for (const cleanup of cleanups.reverse()) cleanup();
  cleanups = [];
  fs?.close();
});

/**
 * From now on every new session needs 64 KiB more of the file, which the
 * app's connection may not grow (SQLITE_FULL): the session's insert is
 * refused, and any write before it in another transaction commits. Returns
 * the undoing.
 */
function refuseSessions(path: string, database: SqliteDatabase): () => void {
  const db = new Database(path);
  db.exec(`CREATE TABLE ballast (b BLOB);
           CREATE TRIGGER session_ballast AFTER INSERT ON sessions BEGIN INSERT INTO ballast VALUES (zeroblob(65536)); END;`);
  db.close();
  const app = database.handle();
  app.pragma(`max_page_count = ${app.pragma('page_count', { simple: true }) as number}`);
  return () => void app.pragma('max_page_count = 1073741823');
}

/** Rows of `table`, read as the app would after a refused commit (read-write: it rolls a hot journal back). */
function count(path: string, table: 'authors' | 'sessions'): number {
  const db = new Database(path);
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** The primary, as the blog runs (tokens only for writes whose route marked the commit). */
function primary(): { app: App; database: SqliteDatabase } {
  fs = new FakeLiteFS({ role: 'primary' });
  const { app, database } = fs.app({ region: 'fra', instance: PRIMARY_ID });
  return { app, database };
}

function expectNoToken(res: request.Response): void {
  expect(res.headers['ryw-token']).toBeUndefined();
  expect(cookiePair(res.headers, 'ryw')).toBeUndefined();
}

function expectToken(res: request.Response): void {
  expect(res.headers['ryw-token']).toBeDefined();
  expect(cookiePair(res.headers, 'ryw')).toBeDefined();
}

/** The 503 page: Retry-After, the form again with the name typed (never the password), no session, no token. */
function expectRefusedWithName(res: request.Response, name: string): void {
  expect(res.status, res.text.slice(0, 300)).toBe(503);
  expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  expect(res.headers['fly-replay']).toBeUndefined();
  expect(res.text).toMatch(/could not save this just now/);
  expect(res.text).toMatch(new RegExp(`name="name" type="text" value="${name}"`));
  expect(res.text).toMatch(/name="_csrf" value="[^"]+"/);
  expect(res.text).not.toContain(TEST_PASSWORD);
  expect(cookiePair(res.headers, SESSION_COOKIE)).toBeUndefined();
  expectNoToken(res);
}

/** Who the nav says is signed in (null: it offers "Sign in"). */
async function signedInAs(app: App, cookie: string): Promise<string | null> {
  const home = await request(app).get('/').set('Cookie', cookie).expect(200);
  return /Signed in as <strong dir="auto">([^<]*)<\/strong>/.exec(home.text)?.[1] ?? null;
}

describe('a commit refused because another connection is reading (SQLITE_BUSY at COMMIT)', () => {
  it('refuses a sign-in with 503 and the name kept, signs nobody in, and the same form signs in afterwards', async () => {
    const { app } = primary();
    await fs.insertAuthor('Ada');
    const page = await openPage(app, '/signin');
    const release = holdReadLock(fs.dbPath);

    const refused = await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD, next: '/about' });
    expectRefusedWithName(refused, 'Ada');
    expect(refused.text).toMatch(/name="next" value="\/about"/);
    release();
    expect(count(fs.dbPath, 'sessions')).toBe(0);

    const signedIn = await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD, next: '/about' }).expect(303);
    expect(signedIn.headers.location).toBe('/about');
    expectToken(signedIn);
    expect(count(fs.dbPath, 'sessions')).toBe(1);
    expect(await signedInAs(app, cookiePair(signedIn.headers, SESSION_COOKIE)!)).toBe('Ada');
  });

  it('refuses a sign-out with 503: the session still opens the blog, and Sign out works afterwards', async () => {
    const { app } = primary();
    await fs.insertAuthor('Ada');
    const cookies = await signIn(app, 'Ada');
    const home = await request(app).get('/').set('Cookie', cookies).expect(200);
    const token = /<form class="signout"[^>]*>\s*<input type="hidden" name="_csrf" value="([^"]+)">/.exec(home.text)![1]!;
    const release = holdReadLock(fs.dbPath);

    const refused = await request(app).post('/signout').set('Cookie', cookies).type('form').send({ _csrf: token });
    expect(refused.status, refused.text.slice(0, 300)).toBe(503);
    expect(refused.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(refused.text).toMatch(/could not save this just now[\s\S]*You are still signed in/);
    // The page offers Sign out again, and the browser keeps its cookie.
    expect(refused.text).toMatch(/<form class="signout" action="\/signout" method="post">/);
    expect(cookiePair(refused.headers, SESSION_COOKIE)).toBeUndefined();
    expectNoToken(refused);
    release();
    expect(count(fs.dbPath, 'sessions')).toBe(1);

    expect(await signedInAs(app, cookies)).toBe('Ada');
    const out = await request(app).post('/signout').set('Cookie', cookies).type('form').send({ _csrf: token }).expect(303);
    expect((out.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith(`${SESSION_COOKIE}=`))).toMatch(
      /Expires=Thu, 01 Jan 1970/,
    );
    expectToken(out);
    expect(count(fs.dbPath, 'sessions')).toBe(0);
    expect(await signedInAs(app, cookies)).toBeNull();
  });

  it('refuses a setup with 503 and the name kept, creates no author, and the same form sets up afterwards', async () => {
    const { app } = primary();
    const page = await openPage(app, '/setup');
    const release = holdReadLock(fs.dbPath);

    const refused = await postForm(app, '/setup', page, { name: 'Ada Lovelace', password: TEST_PASSWORD });
    expectRefusedWithName(refused, 'Ada Lovelace');
    release();
    expect(count(fs.dbPath, 'authors')).toBe(0);
    expect(count(fs.dbPath, 'sessions')).toBe(0);

    // Still the setup form (the refused one created no author), and sending it again works.
    await request(app).get('/setup').expect(200);
    const done = await postForm(app, '/setup', page, { name: 'Ada Lovelace', password: TEST_PASSWORD }).expect(303);
    expectToken(done);
    expect(count(fs.dbPath, 'authors')).toBe(1);
    expect(await signedInAs(app, cookiePair(done.headers, SESSION_COOKIE)!)).toBe('Ada Lovelace');
  });
});

describe('a session refused after the write before it committed', () => {
  it('keeps the session the browser had when signing in again is refused', async () => {
    const { app, database } = primary();
    await fs.insertAuthor('Ada');
    const cookies = await signIn(app, 'Ada');
    const page = await openPage(app, '/signin');
    const both = { ...page, cookie: `${cookies.split(';')[0]!}; ${page.cookie}` };
    const allow = refuseSessions(fs.dbPath, database);

    const refused = await postForm(app, '/signin', both, { name: 'Ada', password: TEST_PASSWORD });
    expectRefusedWithName(refused, 'Ada');
    expect(refused.text).toMatch(/Nothing changed/);
    // Nothing changed indeed: the browser is signed in as before.
    expect(await signedInAs(app, cookies)).toBe('Ada');

    allow();
    const again = await postForm(app, '/signin', both, { name: 'Ada', password: TEST_PASSWORD }).expect(303);
    expectToken(again);
    expect(await signedInAs(app, cookiePair(again.headers, SESSION_COOKIE)!)).toBe('Ada');
    expect(await signedInAs(app, cookies)).toBeNull();
  });

  it('says the author was created, and offers sign-in, when setup committed the author but not the session', async () => {
    const { app, database } = primary();
    const page = await openPage(app, '/setup');
    const allow = refuseSessions(fs.dbPath, database);

    const refused = await postForm(app, '/setup', page, { name: 'Ada Lovelace', password: TEST_PASSWORD });
    expectRefusedWithName(refused, 'Ada Lovelace');
    expect(refused.text).toMatch(/Your author Ada Lovelace was created, but you are not signed in yet/);
    expect(refused.text).toMatch(/<form class="auth" action="\/signin" method="post"/);
    expect(count(fs.dbPath, 'authors')).toBe(1);
    await request(app).get('/setup').expect(303);

    // The form it shows signs in.
    allow();
    const form = {
      token: /name="_csrf" value="([^"]+)"/.exec(refused.text)![1]!,
      cookie: cookiePair(refused.headers, 'csrf') ?? page.cookie,
    };
    const signedIn = await postForm(app, '/signin', form, { name: 'Ada Lovelace', password: TEST_PASSWORD }).expect(303);
    expectToken(signedIn);
    expect(await signedInAs(app, cookiePair(signedIn.headers, SESSION_COOKIE)!)).toBe('Ada Lovelace');
  });
});

describe('read-your-writes tokens on the auth forms', () => {
  it('are handed to a sign-in that committed, never to a refused one (wrong password, limit, CSRF)', async () => {
    const { app } = primary();
    await fs.insertAuthor('Ada');
    const page = await openPage(app, '/signin');

    expectToken(await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD }).expect(303));

    expectNoToken(await postForm(app, '/signin', page, { name: 'Ada', password: 'not the password' }).expect(401));
    expectNoToken(await request(app).post('/signin').type('form').send({ name: 'Ada', password: TEST_PASSWORD }).expect(403));
    for (let i = 1; i < ACCOUNT_LIMIT.max; i++) await postForm(app, '/signin', page, { name: 'Ada', password: `guess ${i}` }).expect(401);
    expectNoToken(await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD }).expect(429));
  });

  it('are not handed to a sign-out that had no session to end', async () => {
    const { app } = primary();
    const page = await openPage(app, '/signin');
    const res = await postForm(app, '/signout', page, {}).expect(303);
    expect(res.headers.location).toBe('/');
    expectNoToken(res);
  });
});
