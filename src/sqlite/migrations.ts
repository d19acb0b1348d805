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
  // Authors and their sessions (src/author.ts). name_key makes "Ada" and
  // "ada" one account; sessions hold the SHA-256 of the cookie's id, never
  // the id, and expire (ms since the epoch, compared with the app's clock).
  // Old articles have no author: author_id stays NULL for them.
  `
  CREATE TABLE authors (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    name_key      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created       TEXT NOT NULL
  ) STRICT;
  CREATE TABLE sessions (
    id_hash   TEXT PRIMARY KEY,
    author_id INTEGER NOT NULL REFERENCES authors (id) ON DELETE CASCADE,
    created   TEXT NOT NULL,
    expires   INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX sessions_by_expiry ON sessions (expires);
  CREATE INDEX sessions_by_author ON sessions (author_id);
  ALTER TABLE articles ADD COLUMN author_id INTEGER REFERENCES authors (id);
  `,
  // Editing, deleting, and a search of the text rather than the Markdown.
  // - revision: an edit names the revision it started from (optimistic
  //   concurrency); existing articles are at 1.
  // - deleted_articles: a deleted article's tombstone (its row is gone, text
  //   and all), so that its id answers 410 on every replica and is never
  //   given to another article (the store picks ids past both tables).
  // - search_title, search_text: what the search indexes, the plain text of
  //   the Markdown with CJK runs cut into words (src/sqlite/search-text.ts),
  //   written by the store. Existing articles were plain text, so their text
  //   is their content: NULL stands for "the content" (the view below), also
  //   for rows written by tools that know nothing of it.
  // - articles_words: the same text unstemmed, whose vocabulary the search
  //   completes the last word from (search-statement.ts); no positions kept.
  `
  ALTER TABLE articles ADD COLUMN revision INTEGER NOT NULL DEFAULT 1 CHECK (revision >= 1);
  ALTER TABLE articles ADD COLUMN search_title TEXT;
  ALTER TABLE articles ADD COLUMN search_text TEXT;
  CREATE TABLE deleted_articles (
    id      INTEGER PRIMARY KEY,
    deleted TEXT NOT NULL
  ) STRICT;

  DROP TRIGGER articles_fts_insert;
  DROP TRIGGER articles_fts_delete;
  DROP TRIGGER articles_fts_update;
  DROP TABLE articles_fts;
  CREATE VIEW articles_search (id, title, content) AS
    SELECT id, coalesce(search_title, title), coalesce(search_text, content) FROM articles;
  CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, content,
    content = 'articles_search', content_rowid = 'id',
    tokenize = 'porter unicode61'
  );
  CREATE VIRTUAL TABLE articles_words USING fts5(
    title, content,
    content = 'articles_search', content_rowid = 'id',
    tokenize = 'unicode61', detail = 'none'
  );
  CREATE VIRTUAL TABLE articles_words_vocab USING fts5vocab(articles_words, 'row');
  CREATE TRIGGER articles_search_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, content) VALUES (new.id, coalesce(new.search_title, new.title), coalesce(new.search_text, new.content));
    INSERT INTO articles_words (rowid, title, content) VALUES (new.id, coalesce(new.search_title, new.title), coalesce(new.search_text, new.content));
  END;
  CREATE TRIGGER articles_search_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, content) VALUES ('delete', old.id, coalesce(old.search_title, old.title), coalesce(old.search_text, old.content));
    INSERT INTO articles_words (articles_words, rowid, title, content) VALUES ('delete', old.id, coalesce(old.search_title, old.title), coalesce(old.search_text, old.content));
  END;
  CREATE TRIGGER articles_search_update AFTER UPDATE OF title, content, search_title, search_text ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, content) VALUES ('delete', old.id, coalesce(old.search_title, old.title), coalesce(old.search_text, old.content));
    INSERT INTO articles_words (articles_words, rowid, title, content) VALUES ('delete', old.id, coalesce(old.search_title, old.title), coalesce(old.search_text, old.content));
    INSERT INTO articles_fts (rowid, title, content) VALUES (new.id, coalesce(new.search_title, new.title), coalesce(new.search_text, new.content));
    INSERT INTO articles_words (rowid, title, content) VALUES (new.id, coalesce(new.search_title, new.title), coalesce(new.search_text, new.content));
  END;
  INSERT INTO articles_fts (articles_fts) VALUES ('rebuild');
  INSERT INTO articles_words (articles_words) VALUES ('rebuild');
  `,
  // RYW_DURABILITY=standby: one row the primary bumps when a write waits for a
  // standby that has not reported a position since its stream opened, so that
  // its next `tx` proves the write (src/sqlite/durability-mark.ts).
  `
  CREATE TABLE durability_marks (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    marked INTEGER NOT NULL
  );
  INSERT INTO durability_marks (id, marked) VALUES (1, 0);
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
/**
 * `PRAGMA secure_delete`, set as each connection opens (it reads nothing,
 * so it cannot wait on a replica's lock) and by migrate(). ON, because LiteFS cannot
 * replicate the file SQLite leaves without it: a page freed in the
 * transaction that allocated it is never written (SQLite's "don't write"
 * optimisation), so a transaction that grows the file past such a page
 * leaves a hole there. LiteFS's LTX file and running checksum count only
 * the pages written; the file, read whole, has one more (zeros). From then
 * on LiteFS refuses that database at its next start ("database checksum …
 * does not match LTX post-apply checksum") and, while it runs as primary,
 * fails every snapshot a new or diverged replica asks for ("snapshot
 * checksum mismatch"): that replica never becomes ready. With ON, SQLite
 * zeroes and writes every page it frees (docs/decisions/0013-secure-delete.md).
 */
export const SECURE_DELETE = 'on';

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
  // The migrations' own commits are as durable as the articles', and leave no hole either.
  db.pragma(`synchronous = ${SYNCHRONOUS}`);
  db.pragma(`secure_delete = ${SECURE_DELETE}`);
  const from = db.pragma('user_version', { simple: true }) as number;
  for (let version = from; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
  return { from, to: Math.max(from, MIGRATIONS.length) };
}
