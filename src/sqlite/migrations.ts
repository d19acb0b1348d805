import type Database from 'better-sqlite3';

/**
 * Schema changes, in order; `PRAGMA user_version` records how many ran. Each
 * runs in its own transaction, so a failed one leaves the previous schema.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE articles (
    id      INTEGER PRIMARY KEY,
    title   TEXT NOT NULL CHECK (length(title) > 0),
    content TEXT NOT NULL CHECK (length(content) > 0),
    created TEXT NOT NULL,
    updated TEXT NOT NULL
  ) STRICT;
  CREATE INDEX articles_by_created ON articles (created DESC, id DESC);

  -- External-content full-text index: the text lives once, in articles.
  CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, content,
    content = 'articles', content_rowid = 'id',
    tokenize = 'porter unicode61'
  );
  CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, content) VALUES (new.id, new.title, new.content);
  END;
  CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, content) VALUES ('delete', old.id, old.title, old.content);
  END;
  CREATE TRIGGER articles_fts_update AFTER UPDATE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, content) VALUES ('delete', old.id, old.title, old.content);
    INSERT INTO articles_fts (rowid, title, content) VALUES (new.id, new.title, new.content);
  END;
  `,
  // Publishing is idempotent per form: a retried or doubled submit of one
  // draft finds its article instead of making a second. NULLs (articles
  // without a draft id) do not collide in a UNIQUE index.
  `
  ALTER TABLE articles ADD COLUMN draft_id TEXT;
  CREATE UNIQUE INDEX articles_by_draft ON articles (draft_id);
  `,
];

export const JOURNAL_MODE = 'delete';
/**
 * `PRAGMA synchronous`, set on each connection before its first write (SQLite
 * does not store it in the file; see SqliteDatabase.write()). EXTRA, not FULL: in rollback-journal mode a transaction commits
 * when its journal is deleted, and only EXTRA fsyncs the directory after that
 * unlink. Under FULL a power cut just after the answer can bring the journal
 * back, and SQLite then rolls the acknowledged transaction back. The price is
 * one directory fsync per write, on a blog; on LiteFS it costs nothing (the
 * mount treats a directory fsync as a no-op and makes the commit durable
 * itself when the journal is deleted).
 */
export const SYNCHRONOUS = 'extra';

export interface MigrationResult {
  from: number;
  to: number;
}

/** Runs the migrations this database has not seen. Only ever call it where writes are allowed. */
export function migrate(db: Database.Database): MigrationResult {
  // Rollback-journal mode, not WAL: on a LiteFS replica a WAL reader that
  // meets LiteFS applying a transaction retries inside SQLite for up to ~10 s
  // (then SQLITE_PROTOCOL), with the process frozen; in rollback mode it gets
  // SQLITE_BUSY after BUSY_TIMEOUT_MS, and the read goes to the primary
  // (docs/decisions/0005-short-busy-timeout.md).
  db.pragma(`journal_mode = ${JOURNAL_MODE}`);
  // The migrations' own commits are as durable as the articles'.
  db.pragma(`synchronous = ${SYNCHRONOUS}`);
  const from = db.pragma('user_version', { simple: true }) as number;
  for (let version = from; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
  return { from, to: Math.max(from, MIGRATIONS.length) };
}
