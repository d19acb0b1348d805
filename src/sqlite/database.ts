import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AppError } from '../error.js';

/** How long a write waits for SQLite's lock before giving up. */
export const BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens the SQLite file on first use rather than at start: on a fresh LiteFS
 * replica the database does not exist until the primary's first transaction
 * has arrived, and the app must start (and say so) before then.
 */
export class SqliteDatabase {
  private db: Database.Database | null = null;

  constructor(
    readonly path: string,
    private readonly options: { readonly?: boolean; create?: boolean } = {},
  ) {}

  handle(): Database.Database {
    if (this.db) return this.db;
    try {
      if (this.options.create) mkdirSync(dirname(this.path), { recursive: true });
      const db = new Database(this.path, {
        readonly: this.options.readonly ?? false,
        fileMustExist: !this.options.create,
      });
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      this.db = db;
      return db;
    } catch (error) {
      throw new AppError('unavailable', 'The database is not available yet.', { cause: error });
    }
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }
}

/**
 * Whether SQLite refused a write because the file is read-only: a LiteFS
 * replica answers EACCES, which SQLite reports as `disk I/O error` in WAL mode
 * and as SQLITE_READONLY in rollback mode (e.g. during a primary change).
 */
export function isReadOnlyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^SQLITE_(READONLY|IOERR|CANTOPEN)/.test(code);
}
