import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/error.js';
import { SqliteArticleStore } from '../../src/sqlite/article-store.js';
import { BUSY_BACKOFF_MS, SqliteDatabase } from '../../src/sqlite/database.js';
import { migrate, SYNCHRONOUS } from '../../src/sqlite/migrations.js';

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

const input = { title: 'A title', content: 'Some content' };

describe('the store maps what SQLite refuses to what the user can do about it', () => {
  it.each([
    ['SQLITE_IOERR_WRITE', 'disk I/O error'], // a LiteFS replica refusing a write in WAL mode (EACCES)
    ['SQLITE_IOERR', 'disk I/O error'],
    ['SQLITE_READONLY', 'attempt to write a readonly database'], // in rollback-journal mode
    ['SQLITE_CANTOPEN', 'unable to open database file'],
    ['SQLITE_IOERR_DELETE', 'disk I/O error'], // LiteFS refusing the journal's deletion, the commit, after losing the lease
  ])('%s is "read-only right now" (unavailable)', (code, message) => {
    expect(() => storeFailingWith(code, message).create(input)).toThrow(expect.objectContaining({ code: 'unavailable', message: expect.stringMatching(/read-only/) }));
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
    const reader = new Database(path);
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM articles').get();
    let reading = true;
    const stopReading = () => {
      if (!reading) return;
      reading = false;
      reader.exec('COMMIT');
      reader.close();
    };
    cleanups.push(stopReading);
    const draft = { ...input, draftId: 'draft-0123456789abcdef' };

    expect(() => store.create(draft)).toThrow(expect.objectContaining({ code: 'busy' }));
    stopReading();
    expect(count(path)).toBe(0);
    // Not even this connection sees it: the refused transaction was rolled back.
    await new Promise((resolve) => setTimeout(resolve, BUSY_BACKOFF_MS + 50));
    expect(store.list()).toEqual([]);

    const article = store.create(draft);
    expect(article).toMatchObject({ id: 1, title: input.title, content: input.content });
    expect(store.create(draft).id).toBe(article.id);
    expect(count(path)).toBe(1);
    expect(store.get(article.id)).toMatchObject({ title: input.title });
  });

  it('commits with synchronous = EXTRA, so that a commit survives a power cut right after it', () => {
    const { database, store } = openStore();
    store.create(input);
    const levels: Record<string, number> = { off: 0, normal: 1, full: 2, extra: 3 };
    expect(SYNCHRONOUS).toBe('extra');
    expect(database.handle().pragma('synchronous', { simple: true })).toBe(levels.extra);
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
    cleanups.push(() => database.close(), () => store.close());
    return { path, store };
  }

  function seed(path: string): void {
    const db = new Database(path);
    migrate(db);
    db.prepare("INSERT INTO articles (title, content, created, updated) VALUES ('Replicating', 'LiteFS replicates.', '2024-01-01T00:00:00.000Z', 'x')").run();
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
        snippet: [{ text: 'LiteFS ', match: false }, { text: 'replicates', match: true }, { text: '.', match: false }],
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
