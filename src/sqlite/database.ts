import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { AppError } from '../error.js';
import { migrate, SECURE_DELETE, SYNCHRONOUS, type MigrationResult } from './migrations.js';

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
  /** The connection `synchronous` was set on (see write()). */
  private durable: Database.Database | null = null;
  private lockedUntil = 0;
  private committed = 0;

  /** The back-off's clock (unix ms); tests pass their own instead of sleeping through BUSY_BACKOFF_MS. */
  private readonly now: () => number;

  constructor(
    readonly path: string,
    private readonly options: { readonly?: boolean; create?: boolean; now?: () => number } = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * How many transactions this process has committed through write() and
   * migrate(), the only ways it writes: moves with every commit, read
   * without touching the file (see databaseGeneration()).
   */
  get commits(): number {
    return this.committed;
  }

  handle(): Database.Database {
    if (this.db) return this.db;
    try {
      if (this.options.create) mkdirSync(dirname(this.path), { recursive: true });
      const db = new Database(this.path, {
        readonly: this.options.readonly ?? false,
        fileMustExist: !this.options.create,
      });
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // At opening, for whatever writes through this connection: it leaves LiteFS no hole (see SECURE_DELETE).
      db.pragma(`secure_delete = ${SECURE_DELETE}`);
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
   * What SQLite refuses for want of a lock becomes AppError('busy'), what it
   * cannot write AppError('unavailable') (see refusalOf()); anything else is
   * a bug and goes through as it is.
   *
   * Only reads take part in the back-off (`reads: false` for writes): it is
   * there for a replica whose reads meet LiteFS holding the lock. A write
   * refused at its COMMIT (another connection, e.g. a search, still held a
   * read lock) fails that write alone; starting the back-off then would
   * answer every read on the primary, which has nowhere to replay them, 503.
   */
  guard<T>(work: () => T, { reads = true }: { reads?: boolean } = {}): T {
    if (reads && this.now() < this.lockedUntil) throw new AppError('busy', 'The database is busy applying changes; try again in a moment.');
    try {
      return work();
    } catch (error) {
      if (isBusyError(error)) {
        if (reads) this.lockedUntil = this.now() + BUSY_BACKOFF_MS;
        throw new AppError('busy', 'The database is busy applying changes; try again in a moment.', { cause: error });
      }
      const refusal = refusalOf(error);
      if (refusal !== null) throw new AppError('unavailable', refusal, { cause: error });
      throw error;
    }
  }

  /**
   * Runs `work` as one write transaction (BEGIN IMMEDIATE … COMMIT) and
   * returns only once SQLite has committed it: when COMMIT fails,
   * better-sqlite3 rolls back and throws, and so does this (through guard()).
   * Every write of the store goes through here (migrate() commits each
   * migration in its own transaction the same way). A statement left to autocommit commits as
   * it finishes, and better-sqlite3's get() takes the first row and resets
   * the statement without looking at that commit's result: SQLITE_BUSY (a
   * reader holds the lock COMMIT needs), an I/O error, a full disk, LiteFS
   * refusing the commit on a node that just lost the primary lease would all
   * be answered as success, for a row that does not exist.
   */
  write<T>(work: (db: Database.Database) => T): T {
    return this.guard(
      () => {
        const db = this.handle();
        // Nested, db.transaction() would only take a savepoint, and its caller
        // would acknowledge a write that is not committed yet.
        if (db.inTransaction) throw new Error('SqliteDatabase.write() inside another transaction: nothing would be committed on return');
        // Only commits care, and the pragma reads the schema, which a replica
        // mid-apply has locked: set it before the first write, not at opening.
        if (this.durable !== db) {
          db.pragma(`synchronous = ${SYNCHRONOUS}`);
          this.durable = db;
        }
        try {
          const result = db.transaction(() => work(db)).immediate();
          this.committed++;
          return result;
        } catch (error) {
          this.leaveTransaction(db);
          throw error;
        }
      },
      { reads: false },
    );
  }

  /** Brings the schema up to date; each migration has committed when this returns (see migrate()). */
  migrate(): MigrationResult {
    try {
      return this.guard(() => migrate(this.handle()), { reads: false });
    } finally {
      // Some migrations may have committed before one failed.
      this.committed++;
    }
  }

  /**
   * better-sqlite3 rolls back when the work or its COMMIT fails; should that
   * ROLLBACK fail too, the connection would stay inside the refused
   * transaction, and every later read on it would see the write that was
   * refused. Closing it ends the transaction (the next opening rolls the
   * journal back).
   */
  private leaveTransaction(db: Database.Database): void {
    if (!db.inTransaction) return;
    try {
      db.exec('ROLLBACK');
    } catch {
      this.close();
    }
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }
}

/**
 * Why SQLite could not write, in the user's words, or null when it is not a
 * refusal but a bug. At COMMIT as at any statement: a LiteFS replica (or a
 * primary that lost its lease mid-transaction) answers EACCES, which SQLite
 * reports as SQLITE_READONLY, SQLITE_CANTOPEN or a `disk I/O error`
 * (SQLITE_IOERR_*, e.g. _DELETE when the journal's deletion, the commit, is
 * refused); a full disk (or `max_page_count`) is SQLITE_FULL.
 */
export function refusalOf(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return null;
  if (/^SQLITE_FULL/.test(code)) return 'The database is full: nothing more can be saved right now.';
  if (/^SQLITE_(READONLY|IOERR|CANTOPEN)/.test(code)) return 'This copy of the database is read-only right now.';
  return null;
}

/** Whether SQLite gave up waiting for a lock. */
export function isBusyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  // SQLITE_PROTOCOL: a WAL reader gave up on the lock protocol (a database still in WAL mode).
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|PROTOCOL)/.test(code);
}
