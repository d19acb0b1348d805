import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AppError } from '../error.js';

/**
 * How long a statement waits for SQLite's lock before giving up. Short on
 * purpose: better-sqlite3 waits synchronously, so the whole process stands
 * still meanwhile, and on a LiteFS replica the lock is held by LiteFS while a
 * transaction streams in, which a stalled link can drag out indefinitely.
 */
export const BUSY_TIMEOUT_MS = 100;
/** After a statement found the database locked, fail fast for this long instead of freezing again. */
export const BUSY_BACKOFF_MS = 1_000;

/**
 * Opens the SQLite file on first use rather than at start: on a fresh LiteFS
 * replica the database does not exist until the primary's first transaction
 * has arrived, and the app must start (and say so) before then.
 */
export class SqliteDatabase {
  private db: Database.Database | null = null;
  private lockedUntil = 0;

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

  /**
   * Runs one unit of work against the database, failing fast with
   * AppError('busy') while a recent statement found it locked, so that a
   * stuck lock costs one short freeze per BUSY_BACKOFF_MS, not one per request.
   */
  guard<T>(work: () => T, now = Date.now()): T {
    if (now < this.lockedUntil) throw new AppError('busy', 'The database is busy applying changes; try again in a moment.');
    try {
      return work();
    } catch (error) {
      if (isBusyError(error)) {
        this.lockedUntil = Date.now() + BUSY_BACKOFF_MS;
        throw new AppError('busy', 'The database is busy applying changes; try again in a moment.', { cause: error });
      }
      throw error;
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

/** Whether SQLite gave up waiting for a lock. */
export function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  // SQLITE_PROTOCOL: a WAL reader gave up on the lock protocol (a database still in WAL mode).
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|PROTOCOL)/.test(code);
}
