/**
 * SQLite locks held by another connection on a database file, as the tests
 * need them to make the app's statements meet a lock for real. Every lock is
 * released by its own function (idempotent) or, at the latest, by
 * releaseLocks() in an afterEach.
 */
import Database from 'better-sqlite3';

const held = new Set<() => void>();

function hold(path: string, begin: (db: Database.Database) => void): () => void {
  const db = new Database(path);
  begin(db);
  const release = () => {
    if (!held.delete(release)) return;
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  };
  held.add(release);
  return release;
}

/**
 * A reader in the middle of a transaction: it holds SHARED until released,
 * so a writer gets RESERVED, runs, and then waits in vain (the busy timeout)
 * for the EXCLUSIVE lock its COMMIT needs. Reads still go through.
 */
export function holdReadLock(path: string): () => void {
  return hold(path, (db) => {
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
  });
}

/**
 * The whole file (EXCLUSIVE), as LiteFS holds it on a replica while a
 * transaction streams in: every statement of the app, reads too, waits out
 * its busy timeout and is refused.
 */
export function holdFileLock(path: string): () => void {
  return hold(path, (db) => db.exec('BEGIN EXCLUSIVE'));
}

/** Releases every lock still held (for afterEach). */
export function releaseLocks(): void {
  for (const release of [...held]) release();
}
