import type { Database, Statement } from 'better-sqlite3';
import { AppError } from '../error.js';
import type { SqliteDatabase } from './database.js';

/**
 * A store's statements, prepared once each on the connection they run on.
 * A connection closed after a failed write (SqliteDatabase.write()) is
 * reopened: every statement is then prepared again on the new one.
 *
 * @example
 * const statements = new PreparedStatements(database, { any: 'SELECT 1 FROM authors LIMIT 1' });
 * runStatements(database, () => statements.get('any').get() !== undefined);
 */
export class PreparedStatements<Name extends string> {
  private readonly prepared = new Map<Name, Statement>();
  private preparedOn: Database | null = null;

  constructor(
    private readonly database: SqliteDatabase,
    private readonly sql: Readonly<Record<Name, string>>,
  ) {}

  get(name: Name): Statement {
    const db = this.database.handle();
    if (db !== this.preparedOn) {
      this.prepared.clear();
      this.preparedOn = db;
    }
    let statement = this.prepared.get(name);
    if (!statement) {
      statement = db.prepare(this.sql[name]);
      this.prepared.set(name, statement);
    }
    return statement;
  }
}

/**
 * Runs a store's read, or a write in its own transaction that has committed
 * when this returns (SqliteDatabase.write()); SQLite's refusals become what
 * the user can do about them (SqliteDatabase.guard()), and a table not there
 * yet (a replica whose copy predates the migration that makes it) becomes
 * AppError('unavailable').
 */
export function runStatements<T>(database: SqliteDatabase, work: () => T, { write = false } = {}): T {
  try {
    return write ? database.write(work) : database.guard(work);
  } catch (error) {
    if (error instanceof AppError) throw error;
    if (error instanceof Error && /no such table/.test(error.message)) {
      throw new AppError('unavailable', 'The database is still being set up.', { cause: error });
    }
    throw error;
  }
}
