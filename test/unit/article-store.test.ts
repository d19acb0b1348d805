import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/error.js';
import { SqliteArticleStore } from '../../src/sqlite/article-store.js';
import { BUSY_BACKOFF_MS, SqliteDatabase } from '../../src/sqlite/database.js';
import { migrate, MIGRATIONS, SECURE_DELETE, SYNCHRONOUS } from '../../src/sqlite/migrations.js';
import { holdReadLock } from '../support/locks.js';

/** A store whose every statement fails as SQLite would, with `code`. */
function storeFailingWith(code: string, message: string): SqliteArticleStore {
  const fail = () => {
    throw new Database.SqliteError(message, code);
  };
  const failing = { get: fail, all: fail };
  const connection = {
    prepare: () => failing,
    pragma: () => undefined,
    inTransaction: false,
    transaction: (work: () => unknown) => ({ immediate: () => work() }),
  };
  const database = Object.assign(new SqliteDatabase('/nonexistent/app.db'), {
    handle: () => connection as unknown as Database.Database,
  });
  return new SqliteArticleStore(database);
}

const input = { title: 'A title', content: 'Some content', authorId: 1 };

describe('the store maps what SQLite refuses to what the user can do about it', () => {
  it.each([
    ['SQLITE_IOERR_WRITE', 'disk I/O error'], // a LiteFS replica refusing a write in WAL mode (EACCES)
    ['SQLITE_IOERR', 'disk I/O error'],
    ['SQLITE_READONLY', 'attempt to write a readonly database'], // in rollback-journal mode
    ['SQLITE_CANTOPEN', 'unable to open database file'],
    ['SQLITE_IOERR_DELETE', 'disk I/O error'], // LiteFS refusing the journal's deletion, the commit, after losing the lease
  ])('%s is "read-only right now" (unavailable)', (code, message) => {
    expect(() => storeFailingWith(code, message).create(input)).toThrow(
      expect.objectContaining({ code: 'unavailable', message: expect.stringMatching(/read-only/) }),
    );
  });

  it('SQLITE_FULL is "full" (unavailable), not a bug', () => {
    expect(() => storeFailingWith('SQLITE_FULL', 'database or disk is full').create(input)).toThrow(
      expect.objectContaining({ code: 'unavailable', message: expect.stringMatching(/full/) }),
    );
  });

  it.each(['SQLITE_BUSY', 'SQLITE_LOCKED'])('%s is "busy" (a lock held elsewhere)', (code) => {
    expect(() => storeFailingWith(code, 'database is locked').get(1)).toThrow(expect.objectContaining({ code: 'busy' }));
  });

  it('lets anything else through as the bug it is', () => {
    let thrown: unknown;
    try {
      storeFailingWith('SQLITE_CONSTRAINT_CHECK', 'CHECK constraint failed').create(input);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Database.SqliteError);
    expect(thrown).not.toBeInstanceOf(AppError);
  });
});

describe('create() returns only what is committed', () => {
  let dir: string | undefined;
  let cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of cleanups.reverse()) cleanup();
    cleanups = [];
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function openStore(): { path: string; database: SqliteDatabase; store: SqliteArticleStore } {
    dir = mkdtempSync(join(tmpdir(), 'litefs-ryw-store-'));
    const path = join(dir, 'app.db');
    const database = new SqliteDatabase(path, { create: true });
    migrate(database.handle());
    // The author the articles name (articles.author_id references authors).
    database.handle().prepare("INSERT INTO authors (name, name_key, password_hash, created) VALUES ('Ada', 'ada', 'x', 'x')").run();
    cleanups.push(() => database.close());
    return { path, database, store: new SqliteArticleStore(database) };
  }

  const count = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM articles').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  it('throws busy, and stores nothing, when COMMIT cannot get its lock; the same draft is stored once afterwards', async () => {
    const { path, store } = openStore();
    // A reader in the middle of a transaction holds SHARED: the INSERT runs,
    // its COMMIT waits for EXCLUSIVE and gives up after the busy timeout.
    const stopReading = holdReadLock(path);
    cleanups.push(stopReading);
    const draft = { ...input, draftId: 'draft-0123456789abcdef' };

    expect(() => store.create(draft)).toThrow(expect.objectContaining({ code: 'busy' }));
    stopReading();
    expect(count(path)).toBe(0);
    // Not even this connection sees it: the refused transaction was rolled back.
    // (At once: a refused write starts no back-off.)
    expect(store.list().items).toEqual([]);

    const article = store.create(draft);
    expect(article).toMatchObject({ id: 1, title: input.title, content: input.content });
    expect(store.create(draft).id).toBe(article.id);
    expect(count(path)).toBe(1);
    expect(store.get(article.id)).toMatchObject({ kind: 'found', article: { title: input.title, author: { id: 1, name: 'Ada' } } });
  });

  it('commits with synchronous = EXTRA, so that a commit survives a power cut right after it', () => {
    const { database, store } = openStore();
    store.create(input);
    const levels: Record<string, number> = { off: 0, normal: 1, full: 2, extra: 3 };
    expect(SYNCHRONOUS).toBe('extra');
    expect(database.handle().pragma('synchronous', { simple: true })).toBe(levels.extra);
  });

  it('writes with secure_delete on, in the migrations and from the moment a connection opens: SQLite writes every page it frees, and leaves LiteFS no hole', () => {
    // test/cluster/freed-pages.test.ts shows what a hole does to a real LiteFS cluster.
    const dir = mkdtempSync(join(tmpdir(), 'litefs-ryw-secure-delete-'));
    try {
      const path = join(dir, 'app.db');
      const raw = new Database(path);
      migrate(raw);
      expect(raw.pragma('secure_delete', { simple: true })).toBe(1);
      raw.prepare("INSERT INTO authors (name, name_key, password_hash, created) VALUES ('Ada', 'ada', 'x', 'x')").run();
      raw.close();
      // A connection of its own, as every app start has (SQLite keeps the setting per connection, not in the file).
      const plain = new Database(path);
      expect(plain.pragma('secure_delete', { simple: true })).toBe(0);
      plain.close();
      const database = new SqliteDatabase(path, { readonly: true });
      try {
        expect(SECURE_DELETE).toBe('on');
        expect(database.handle().pragma('secure_delete', { simple: true })).toBe(1);
      } finally {
        database.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('search() runs on a worker thread, refusing as the other reads do', () => {
  let dir: string;
  let cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    cleanups = [];
    rmSync(dir, { recursive: true, force: true });
  });

  /** A store on a file that does not exist yet, read-only, as on a fresh replica. */
  function replicaStore(): { path: string; store: SqliteArticleStore } {
    dir = mkdtempSync(join(tmpdir(), 'litefs-ryw-search-'));
    const path = join(dir, 'app.db');
    const database = new SqliteDatabase(path, { readonly: true });
    const store = new SqliteArticleStore(database);
    cleanups.push(
      () => database.close(),
      () => store.close(),
    );
    return { path, store };
  }

  function seed(path: string): void {
    const db = new Database(path);
    migrate(db);
    db.prepare(
      "INSERT INTO articles (title, content, created, updated) VALUES ('Replicating', 'LiteFS replicates.', '2024-01-01T00:00:00.000Z', 'x')",
    ).run();
    db.close();
  }

  it('is unavailable until the database exists (a fresh replica), then finds what it holds', async () => {
    const { path, store } = replicaStore();
    await expect(store.search('replicate')).rejects.toMatchObject({ code: 'unavailable' });
    seed(path);
    const results = await store.search('replicate');
    expect(results.hits).toEqual([
      {
        id: 1,
        title: [{ text: 'Replicating', match: true }],
        snippet: [
          { text: 'LiteFS ', match: false },
          { text: 'replicates', match: true },
          { text: '.', match: false },
        ],
        created: new Date('2024-01-01T00:00:00.000Z'),
      },
    ]);
  });

  it('is busy while another connection holds the lock (SQLITE_BUSY in the worker), so that a replica replays it', async () => {
    const { path, store } = replicaStore();
    seed(path);
    const locker = new Database(path);
    locker.exec('BEGIN EXCLUSIVE');
    locker.prepare("INSERT INTO articles (title, content, created, updated) VALUES ('t', 'c', 'x', 'x')").run();
    cleanups.push(() => {
      if (locker.inTransaction) locker.exec('ROLLBACK');
      locker.close();
    });
    const refused = await store.search('replicate').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'busy', message: expect.stringMatching(/busy applying changes/) });
    locker.exec('ROLLBACK');
    // The worker's own back-off, as SqliteDatabase.guard() has it, then served again.
    await new Promise((resolve) => setTimeout(resolve, BUSY_BACKOFF_MS + 50));
    expect((await store.search('replicate')).hits).toHaveLength(1);
  });
});

describe('editing and deleting, in the store', () => {
  let dir: string | undefined;
  let database: SqliteDatabase | undefined;
  afterEach(() => {
    database?.close();
    database = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function openStore(): SqliteArticleStore {
    dir = mkdtempSync(join(tmpdir(), 'litefs-ryw-edit-'));
    database = new SqliteDatabase(join(dir, 'app.db'), { create: true });
    migrate(database.handle());
    database.handle().prepare("INSERT INTO authors (name, name_key, password_hash, created) VALUES ('Ada', 'ada', 'x', 'x')").run();
    // The text the search indexes, as main wires it (here: the content and a marker word, to see which was indexed).
    return new SqliteArticleStore(database, { text: (content) => `${content} INDEXED` });
  }

  it('saves an edit made from the current revision, and refuses one from an older (conflict: the article as it is)', async () => {
    const store = openStore();
    const article = store.create({ ...input, authorId: 1 });
    expect(article.revision).toBe(1);
    const updated = store.update(article.id, { title: 'New title', content: 'New content', revision: 1 });
    expect(updated).toMatchObject({
      kind: 'updated',
      article: { title: 'New title', content: 'New content', revision: 2, author: { id: 1, name: 'Ada' } },
    });
    const stale = store.update(article.id, { title: 'Lost?', content: 'No: refused', revision: 1 });
    expect(stale).toMatchObject({ kind: 'conflict', current: { title: 'New title', revision: 2 } });
    expect(store.get(article.id)).toMatchObject({ kind: 'found', article: { title: 'New title' } });
    expect(store.update(999, { title: 't', content: 'c', revision: 1 })).toEqual({ kind: 'missing' });
    // The search indexes the text it was given for the new version, not the old one.
    expect((await store.search('INDEXED')).hits.map((hit) => hit.id)).toEqual([article.id]);
    expect((await store.search('Some')).hits).toEqual([]);
    await store.close();
  });

  it('deletes an article (its row and its text), leaves a tombstone, and never gives its id out again', async () => {
    const store = openStore();
    const keep = store.create({ title: 'Keep', content: 'kept', authorId: 1 });
    const doomed = store.create({ title: 'Doomed', content: 'doomed words', authorId: 1 });
    expect(store.delete(doomed.id, 2)).toMatchObject({ kind: 'conflict', current: { id: doomed.id, revision: 1 } });
    // Without the revision it was confirmed at, nothing is deleted: it may have changed since.
    expect(store.delete(doomed.id, null)).toMatchObject({ kind: 'conflict', current: { id: doomed.id, revision: 1 } });
    const deleted = store.delete(doomed.id, 1);
    expect(deleted).toMatchObject({ kind: 'deleted', deleted: expect.any(Date) });
    expect(store.get(doomed.id)).toEqual({ kind: 'deleted', deleted: (deleted as { deleted: Date }).deleted });
    expect(store.delete(doomed.id, null)).toMatchObject({ kind: 'already_deleted' });
    expect(store.update(doomed.id, { title: 't', content: 'c', revision: 1 })).toMatchObject({ kind: 'deleted' });
    expect(store.delete(999, null)).toEqual({ kind: 'missing' });
    expect(store.list().items.map((a) => a.id)).toEqual([keep.id]);
    expect(store.latest(10).map((a) => a.id)).toEqual([keep.id]);
    expect(store.index(10).map((a) => a.id)).toEqual([keep.id]);
    expect((await store.search('doomed')).hits).toEqual([]);
    const db = database!.handle();
    expect(db.prepare('SELECT count(*) AS n FROM articles WHERE id = ?').get(doomed.id)).toEqual({ n: 0 });
    // The deleted id was the last one: without care SQLite would hand it out again.
    expect(store.create({ title: 'Next', content: 'new', authorId: 1 }).id).toBe(doomed.id + 1);
    await store.close();
  });

  it('lists pages of summaries with an excerpt of the indexed text', () => {
    const store = openStore();
    for (let i = 0; i < 5; i++) store.create({ title: `T${i}`, content: `Body **${i}**`, authorId: 1 });
    const first = store.list({}, 2);
    expect(first.items.map((a) => a.title)).toEqual(['T4', 'T3']);
    expect(first.items[0]).toMatchObject({ excerpt: 'Body **4** INDEXED', author: { id: 1, name: 'Ada' } });
    expect(first.newer).toBeNull();
    const second = store.list({ before: first.older! }, 2);
    expect(second.items.map((a) => a.title)).toEqual(['T2', 'T1']);
    const third = store.list({ before: second.older! }, 2);
    expect(third).toMatchObject({ items: [{ title: 'T0' }], older: null });
    expect(store.list({ after: third.newer! }, 2).items.map((a) => a.title)).toEqual(['T2', 'T1']);
    // Newer than the second page reaches the newest article: the first page.
    expect(store.list({ after: second.newer! }, 2)).toEqual(first);
  });
});

describe('the migration to Markdown, editing and deleting (index 3)', () => {
  it('migrates existing articles in one transaction: readable as Markdown source, at revision 1, searchable, editable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'litefs-ryw-migrate-'));
    try {
      const path = join(dir, 'app.db');
      const raw = new Database(path);
      // The schema as it was before (migrations 0 to 2), with articles in it.
      for (const [version, sql] of MIGRATIONS.slice(0, 3).entries()) {
        raw.exec(sql);
        raw.pragma(`user_version = ${version + 1}`);
      }
      raw
        .prepare(
          "INSERT INTO articles (title, content, created, updated) VALUES ('Old replication notes', 'LiteFS replicates.\nA second line, *not* markup then.', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z')",
        )
        .run();
      expect(migrate(raw)).toEqual({ from: 3, to: MIGRATIONS.length });
      raw.close();

      const database = new SqliteDatabase(path);
      const store = new SqliteArticleStore(database);
      const found = store.get(1);
      expect(found).toMatchObject({
        kind: 'found',
        article: {
          title: 'Old replication notes',
          content: 'LiteFS replicates.\nA second line, *not* markup then.',
          revision: 1,
          author: null,
        },
      });
      expect((await store.search('replication')).hits.map((hit) => hit.id)).toEqual([1]);
      expect((await store.search('replicat')).hits.map((hit) => hit.id)).toEqual([1]);
      expect(store.update(1, { title: 'Old replication notes', content: 'Now **Markdown**.', revision: 1 })).toMatchObject({
        kind: 'updated',
        article: { revision: 2 },
      });
      await store.close();
      database.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is rolled back whole when it fails half-way: the schema and articles stay as they were', () => {
    const db = new Database(':memory:');
    for (const [version, sql] of MIGRATIONS.slice(0, 3).entries()) {
      db.exec(sql);
      db.pragma(`user_version = ${version + 1}`);
    }
    db.prepare("INSERT INTO articles (title, content, created, updated) VALUES ('t', 'c', 'x', 'x')").run();
    // Something the migration creates already exists: it fails at that statement.
    db.exec('CREATE TABLE deleted_articles (x)');
    expect(() => migrate(db)).toThrow(/already exists/);
    expect(db.pragma('user_version', { simple: true })).toBe(3);
    expect(db.prepare("SELECT count(*) AS n FROM pragma_table_info('articles') WHERE name = 'revision'").get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM articles_fts WHERE articles_fts MATCH ?').get('c')).toEqual({ n: 1 });
    db.close();
  });
});
