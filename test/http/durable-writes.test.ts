/**
 * Nothing is acknowledged before it is committed. SQLite can refuse a write
 * at COMMIT, after every statement of it ran: another connection still reads
 * (so the writer cannot get the EXCLUSIVE lock), the file stops taking
 * writes, the disk is full. The author must then get 503 with Retry-After
 * and the form with everything typed, never a 303 or 201 for an article that
 * does not exist.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_CONTENT_LENGTH, type ArticleStore } from '../../src/article.js';
import { BUSY_BACKOFF_MS } from '../../src/sqlite/database.js';
import { MIGRATIONS } from '../../src/sqlite/migrations.js';
import { FakeLiteFS, PRIMARY_ID } from '../support/fake-litefs.js';
import { holdFileLock, holdReadLock, releaseLocks } from '../support/locks.js';
import { formOf, openEdit, openForm, saveEdit, sessionOf, submitForm, type App, type Form } from '../support/forms.js';

const article = { title: 'Written while a reader held the file', content: 'Every word of it.\n\nKept when the commit fails.' };
const MIGRATE_TOKEN = 'migrate-token-for-tests';

let fs: FakeLiteFS;
let cleanups: (() => void)[] = [];
afterEach(() => {
  releaseLocks();
  for (const cleanup of cleanups.reverse()) cleanup();
  cleanups = [];
  fs?.close();
});

function countArticles(path: string): number {
  // Read-write: after a failed commit the journal is still there, and only a
  // connection that may write can roll it back before reading, as the app's does.
  const db = new Database(path);
  try {
    return (db.prepare('SELECT count(*) AS n FROM articles').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const afterBackOff = () => new Promise((resolve) => setTimeout(resolve, BUSY_BACKOFF_MS + 50));

function publish(app: App, form: Form, fields: { title: string; content: string }) {
  return submitForm(app, form, { _draft: form.draft, ...fields });
}

function expectNoToken(res: request.Response): void {
  expect(res.headers['ryw-token']).toBeUndefined();
  const cookies = (res.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  expect(cookies.filter((cookie) => cookie.startsWith('ryw='))).toEqual([]);
}

function expectToken(res: request.Response): void {
  expect(res.headers['ryw-token']).toBeDefined();
  expect((res.headers['set-cookie'] as unknown as string[]).some((cookie) => cookie.startsWith('ryw='))).toBe(true);
}

/** The 503 page: the form again, with the typed text and the same draft. */
function expectFormKept(res: request.Response, form: Form, fields: { title: string; content: string }): Form {
  expect(res.status, res.text.slice(0, 300)).toBe(503);
  expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  expect(res.headers['fly-replay']).toBeUndefined(); // a write on the primary is refused, never replayed
  expect(res.headers['content-type']).toMatch(/text\/html/);
  expect(res.text).toMatch(/Nothing was saved/);
  expect(res.text).toContain(`value="${fields.title}"`);
  expect(res.text).toContain(`${fields.content}</textarea>`);
  const again = formOf(res.text, form.cookie);
  expect(again.draft).toBe(form.draft);
  expectNoToken(res);
  return again;
}

/** Publishing `form` now works, once, and the article is listed once. */
async function expectPublishesOnce(app: App, path: string, form: Form, fields: { title: string; content: string }) {
  const published = await publish(app, form, fields);
  expect(published.status, published.text.slice(0, 300)).toBe(303);
  expectToken(published);
  const page = await request(app).get(published.headers.location!).expect(200);
  expect(page.text).toContain(fields.title);
  const again = await publish(app, form, fields).expect(303);
  expect(again.headers.location).toBe(published.headers.location);
  expect(countArticles(path)).toBe(1);
  const home = await request(app).get('/').expect(200);
  expect(home.text.split(fields.title)).toHaveLength(2);
}

function primary() {
  fs = new FakeLiteFS({ role: 'primary' });
  return fs.app({ region: 'fra', instance: PRIMARY_ID, migrateToken: MIGRATE_TOKEN });
}

describe('a commit refused because another connection is reading (SQLITE_BUSY at COMMIT)', () => {
  it('answers a form post 503 with the form kept, saves nothing, and the same form publishes once afterwards', async () => {
    const { app } = primary();
    const form = await openForm(app);
    const release = holdReadLock(fs.dbPath);

    const refused = await publish(app, form, article);
    const again = expectFormKept(refused, form, article);
    expect(countArticles(fs.dbPath)).toBe(0);

    release();
    await afterBackOff();
    const home = await request(app).get('/').expect(200);
    expect(home.text).not.toContain(article.title);
    await expectPublishesOnce(app, fs.dbPath, again, article);
  });

  it('answers a JSON client 503 JSON with Retry-After, never 201, and no token', async () => {
    const { app } = primary();
    const form = await openForm(app);
    const release = holdReadLock(fs.dbPath);

    const refused = await publish(app, form, article).set('Accept', 'application/json');
    expect(refused.status).toBe(503);
    expect(refused.headers['content-type']).toMatch(/application\/json/);
    expect(refused.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(refused.headers.location).toBeUndefined();
    expect(refused.body).toEqual({ error: 'busy', message: expect.stringMatching(/Nothing was saved/) });
    expectNoToken(refused);
    expect(countArticles(fs.dbPath)).toBe(0);

    release();
    await afterBackOff();
    const published = await publish(app, form, article).set('Accept', 'application/json').expect(201);
    expectToken(published);
    expect(countArticles(fs.dbPath)).toBe(1);
  });
});

/**
 * A store whose next get() first locks the file: the lock arrives between
 * the session's lookup (which went through) and the route's own read of the
 * article, so that read, not the session's, is the one refused.
 */
function lockBeforeNextGet(path: string) {
  let armed = false;
  let release: (() => void) | undefined;
  const wrap = (store: ArticleStore): ArticleStore => ({
    list: (...args) => store.list(...args),
    latest: (limit) => store.latest(limit),
    index: (limit) => store.index(limit),
    search: (...args) => store.search(...args),
    create: (input) => store.create(input),
    update: (id, edit) => store.update(id, edit),
    delete: (id, revision) => store.delete(id, revision),
    get(id) {
      if (armed) {
        armed = false;
        release = holdFileLock(path);
      }
      return store.get(id);
    },
  });
  return {
    wrap,
    arm: () => void (armed = true),
    release: () => release?.(),
  };
}

interface Stored {
  title: string;
  content: string;
  revision: number;
}
function storedArticle(path: string, id: number): Stored | 'deleted' | undefined {
  const db = new Database(path);
  try {
    if (db.prepare('SELECT 1 FROM deleted_articles WHERE id = ?').get(id)) return 'deleted';
    return db.prepare('SELECT title, content, revision FROM articles WHERE id = ?').get(id) as Stored | undefined;
  } finally {
    db.close();
  }
}

async function published(app: App): Promise<number> {
  const form = await openForm(app);
  const res = await publish(app, form, article).expect(303);
  return Number(/^\/articles\/(\d+)$/.exec(res.headers.location as string)![1]);
}

const edited = { title: 'Rewritten while a reader held the file', content: 'Every new word of it.\n\nKept when the commit fails.' };

/** The 503 page of a refused edit: the form again, with the typed text and the revision it started from. */
function expectEditKept(res: request.Response, form: Form, fields: { title: string; content: string }): Form {
  expect(res.status, res.text.slice(0, 300)).toBe(503);
  expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  expect(res.headers['fly-replay']).toBeUndefined();
  expect(res.headers['content-type']).toMatch(/text\/html/);
  expect(res.text).toMatch(/Nothing was saved/);
  expect(res.text).toContain(`value="${fields.title}"`);
  expect(res.text).toContain(`${fields.content}</textarea>`);
  const again = formOf(res.text, form.cookie);
  expect(again.action).toBe(form.action);
  expect(again.revision).toBe(form.revision);
  expectNoToken(res);
  return again;
}

interface Confirmation {
  cookie: string;
  token: string;
  revision: string;
}
async function openDelete(app: App, id: number): Promise<Confirmation> {
  const page = await request(app).get(`/articles/${id}/delete`).set('Cookie', sessionOf(app)).expect(200);
  return confirmationOf(page, sessionOf(app));
}
function confirmationOf(page: request.Response, session: string): Confirmation {
  const csrf = (page.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
  return {
    cookie: `${csrf}; ${session}`,
    token: /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!,
    revision: /name="_revision" value="([^"]*)"/.exec(page.text)![1]!,
  };
}
function confirmDelete(app: App, id: number, form: Confirmation) {
  return request(app)
    .post(`/articles/${id}/delete`)
    .set('Cookie', form.cookie)
    .type('form')
    .send({ _csrf: form.token, _revision: form.revision });
}

/** The 503 page of a refused delete: the confirmation again, for the same article and revision. */
function expectConfirmationAgain(res: request.Response, id: number, form: Confirmation, session: string): Confirmation {
  expect(res.status, res.text.slice(0, 300)).toBe(503);
  expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  expect(res.headers['fly-replay']).toBeUndefined();
  expect(res.text).toMatch(/Nothing was deleted/);
  expect(res.text).toContain('<h1>Delete this article?</h1>');
  expect(res.text).toContain(`action="/articles/${id}/delete"`);
  expectNoToken(res);
  const again = confirmationOf(res, session);
  expect(again.revision).toBe(form.revision);
  return again;
}

describe('an edit or a delete refused by the database', () => {
  it('an edit refused at its COMMIT: 503 with the text and revision kept, nothing saved; saving from that page works', async () => {
    const { app } = primary();
    const id = await published(app);
    const form = await openEdit(app, id);
    const release = holdReadLock(fs.dbPath);

    const again = expectEditKept(await saveEdit(app, form, edited), form, edited);
    const json = await saveEdit(app, form, edited).set('Accept', 'application/json');
    expect(json.status).toBe(503);
    expect(json.body).toEqual({ error: 'busy', message: expect.stringMatching(/Nothing was saved/) });
    expectNoToken(json);
    release();
    expect(storedArticle(fs.dbPath, id)).toEqual({ ...article, revision: 1 });

    const saved = await saveEdit(app, again, edited);
    expect(saved.status, saved.text.slice(0, 300)).toBe(303);
    expectToken(saved);
    expect(storedArticle(fs.dbPath, id)).toEqual({ ...edited, revision: 2 });
  });

  it('an edit whose read of the article is refused: 503 with the text kept (not the error page); saving later works', async () => {
    let now = Date.now();
    fs = new FakeLiteFS({ role: 'primary' });
    const lock = lockBeforeNextGet(fs.dbPath);
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID, databaseClock: () => now, wrapStore: lock.wrap });
    const id = await published(app);
    const form = await openEdit(app, id);

    lock.arm();
    const again = expectEditKept(await saveEdit(app, form, edited), form, edited);
    lock.release();
    expect(storedArticle(fs.dbPath, id)).toEqual({ ...article, revision: 1 });

    // The refused read started the busy back-off: step past it rather than sleeping.
    now += BUSY_BACKOFF_MS;
    const saved = await saveEdit(app, again, edited);
    expect(saved.status, saved.text.slice(0, 300)).toBe(303);
    expectToken(saved);
    expect(storedArticle(fs.dbPath, id)).toEqual({ ...edited, revision: 2 });
  });

  it('a delete refused at its COMMIT: 503 with the confirmation again, nothing deleted; confirming from that page deletes it', async () => {
    const { app } = primary();
    const id = await published(app);
    const form = await openDelete(app, id);
    const release = holdReadLock(fs.dbPath);

    const res = await confirmDelete(app, id, form);
    const again = expectConfirmationAgain(res, id, form, sessionOf(app));
    expect(res.text).toContain(`“<strong dir="auto">${article.title}</strong>”`);
    const json = await confirmDelete(app, id, form).set('Accept', 'application/json');
    expect(json.status).toBe(503);
    expect(json.body).toEqual({ error: 'busy', message: expect.stringMatching(/Nothing was deleted/) });
    expectNoToken(json);
    release();
    expect(storedArticle(fs.dbPath, id)).toEqual({ ...article, revision: 1 });
    await request(app).get(`/articles/${id}`).expect(200);

    const deleted = await confirmDelete(app, id, again);
    expect(deleted.status, deleted.text.slice(0, 300)).toBe(303);
    expectToken(deleted);
    expect(storedArticle(fs.dbPath, id)).toBe('deleted');
  });

  it('a delete posted while the whole file is locked (its session cannot be looked up either): 503 with the confirmation, not "signed out"', async () => {
    let now = Date.now();
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID, databaseClock: () => now });
    const id = await published(app);
    const form = await openDelete(app, id);
    const release = holdFileLock(fs.dbPath);

    const res = await confirmDelete(app, id, form);
    const again = expectConfirmationAgain(res, id, form, sessionOf(app));
    expect(res.text).not.toMatch(/not signed in/);
    release();
    expect(storedArticle(fs.dbPath, id)).toEqual({ ...article, revision: 1 });

    now += BUSY_BACKOFF_MS;
    await confirmDelete(app, id, again).expect(303);
    expect(storedArticle(fs.dbPath, id)).toBe('deleted');
  });

  it('a delete whose read of the article is refused: 503 with the confirmation again (not the error page); confirming later deletes it', async () => {
    let now = Date.now();
    fs = new FakeLiteFS({ role: 'primary' });
    const lock = lockBeforeNextGet(fs.dbPath);
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID, databaseClock: () => now, wrapStore: lock.wrap });
    const id = await published(app);
    const form = await openDelete(app, id);

    lock.arm();
    const again = expectConfirmationAgain(await confirmDelete(app, id, form), id, form, sessionOf(app));
    lock.release();
    expect(storedArticle(fs.dbPath, id)).toEqual({ ...article, revision: 1 });

    now += BUSY_BACKOFF_MS;
    const deleted = await confirmDelete(app, id, again);
    expect(deleted.status, deleted.text.slice(0, 300)).toBe(303);
    expectToken(deleted);
    expect(storedArticle(fs.dbPath, id)).toBe('deleted');
  });
});

/** Whether this machine lets us mark a file immutable (root, on ext4, xfs, btrfs…). */
function canMakeImmutable(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'litefs-ryw-chattr-'));
  const probe = join(dir, 'probe');
  writeFileSync(probe, '');
  try {
    execFileSync('chattr', ['+i', probe], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const immutable = canMakeImmutable();
if (!immutable)
  console.warn('durable-writes: SKIPPING the read-only-file case: `chattr +i` is not possible here (needs root on ext4/xfs/btrfs)');

describe('a commit refused because the file stopped taking writes (SQLITE_IOERR at COMMIT)', () => {
  // Root ignores file modes, so chmod cannot do it; an immutable file refuses
  // even root's writes (EPERM), through the connection already open, as a
  // LiteFS node that lost the primary lease refuses them.
  it.skipIf(!immutable)('answers 503 with the form kept, and publishes once when the file takes writes again', async () => {
    const { app } = primary();
    const form = await openForm(app);
    await request(app).get('/').expect(200); // the app's connection is open, read-write
    execFileSync('chattr', ['+i', fs.dbPath]);
    let mutable = false;
    const makeMutable = () => {
      if (mutable) return;
      mutable = true;
      execFileSync('chattr', ['-i', fs.dbPath]);
    };
    cleanups.push(makeMutable);

    const refused = await publish(app, form, article);
    const again = expectFormKept(refused, form, article);

    makeMutable();
    expect(countArticles(fs.dbPath)).toBe(0);
    await expectPublishesOnce(app, fs.dbPath, again, article);
  });
});

describe('a write refused because the database is full (SQLITE_FULL)', () => {
  it('answers 503 with the form kept, not 500, and publishes once when there is room', async () => {
    const { app, database } = primary();
    const form = await openForm(app);
    const db = database.handle();
    // Not one page more than the file has: the article's pages cannot be had.
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const words = Array.from({ length: 4_000 }, (_, i) => `w${i.toString(36)}`).join(' ');
    const big = { title: 'A long one', content: words.slice(0, MAX_CONTENT_LENGTH).trimEnd() };

    const refused = await publish(app, form, big);
    const again = expectFormKept(refused, form, big);
    expect(countArticles(fs.dbPath)).toBe(0);

    db.pragma('max_page_count = 1073741823');
    await expectPublishesOnce(app, fs.dbPath, again, big);
  });
});

describe('POST /migrate/up', () => {
  it('answers 503 with Retry-After when the COMMIT is refused, keeps the old schema, and migrates when retried', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    // A database one migration behind.
    rmSync(fs.dbPath);
    const old = new Database(fs.dbPath);
    old.pragma('journal_mode = delete');
    old.exec(MIGRATIONS[0]!);
    old.pragma('user_version = 1');
    old.close();
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID, migrateToken: MIGRATE_TOKEN });
    const migrateUp = () =>
      request(app).post('/migrate/up').set('Authorization', `Bearer ${MIGRATE_TOKEN}`).set('Accept', 'application/json');
    const version = () => {
      const db = new Database(fs.dbPath, { readonly: true });
      try {
        return db.pragma('user_version', { simple: true });
      } finally {
        db.close();
      }
    };

    const release = holdReadLock(fs.dbPath);
    const refused = await migrateUp();
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(refused.headers['fly-replay']).toBeUndefined();
    expect(refused.body).toEqual({ error: 'busy', message: expect.any(String) });
    expectNoToken(refused);
    release();
    expect(version()).toBe(1);

    await afterBackOff();
    const done = await migrateUp().expect(200);
    expect(done.body).toEqual({ from: 1, to: MIGRATIONS.length });
    expect(version()).toBe(MIGRATIONS.length);
  });
});
