import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './database.js';

/**
 * The database's generation as this process can tell it cheaply: a new
 * string after every commit this process makes (`total_changes()`, a
 * counter of the connection, read without touching the file) and, when
 * other processes may write (`otherWriters`: standalone, where `npm run
 * author` writes from a shell), after theirs too (`PRAGMA data_version`,
 * which takes a shared lock: some microseconds). On LiteFS every commit,
 * whoever made it, moves the replication position (and its checksum),
 * which the page cache reads beside this. A reopened connection starts its counters again, so
 * each connection is an epoch of its own.
 *
 * Null when the database cannot say now (not there yet, busy): nothing is
 * cached for that request.
 */
export function databaseGeneration(database: SqliteDatabase, { otherWriters }: { otherWriters: boolean }): () => string | null {
  const sql = otherWriters ? 'SELECT total_changes(), data_version FROM pragma_data_version' : 'SELECT total_changes()';
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
          statement = db.prepare(sql).raw();
        }
        const row = statement.get() as number[];
        return `${epoch}.${row.join('.')}`;
      });
    } catch {
      return null;
    }
  };
}
