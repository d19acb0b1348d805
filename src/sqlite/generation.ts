import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './database.js';

/**
 * The database's generation as this process can tell it cheaply: a new
 * string after every commit this process makes (SqliteDatabase.commits, a
 * counter in memory: nothing is asked of SQLite) and, when other processes
 * may write (`otherWriters`: standalone, where `npm run author` writes from
 * a shell), after theirs too (`PRAGMA data_version`, which takes a shared
 * lock: some microseconds). On LiteFS every commit, whoever made it, moves
 * the replication position (and its checksum), which the page cache reads
 * beside this.
 *
 * Null when the database cannot say now (not there yet, busy): nothing is
 * cached for that request.
 */
export function databaseGeneration(database: SqliteDatabase, { otherWriters }: { otherWriters: boolean }): () => string | null {
  if (!otherWriters) return () => String(database.commits);
  // A reopened connection starts data_version again: each connection is an epoch of its own.
  let on: unknown = null;
  let epoch = 0;
  let statement: Statement | null = null;
  return () => {
    try {
      return database.guard(() => {
        const db = database.handle();
        if (db !== on || statement === null) {
          on = db;
          epoch++;
          statement = db.prepare('SELECT data_version FROM pragma_data_version').pluck();
        }
        return `${database.commits}.${epoch}.${String(statement.get())}`;
      });
    } catch {
      return null;
    }
  };
}
