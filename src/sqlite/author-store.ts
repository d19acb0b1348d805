import type { Database, Statement } from 'better-sqlite3';
import { nameKey, type Author, type AuthorCredentials, type AuthorStore, type SessionStore, type SignedInAuthor } from '../author.js';
import { AppError } from '../error.js';
import type { SqliteDatabase } from './database.js';

interface AuthorRow {
  id: number;
  name: string;
  password_hash: string;
  created: string;
}

const SQL = {
  any: 'SELECT 1 FROM authors LIMIT 1',
  byKey: 'SELECT id, name, password_hash, created FROM authors WHERE name_key = ?',
  insert: `INSERT INTO authors (name, name_key, password_hash, created)
           VALUES (@name, @nameKey, @passwordHash, strftime('%Y-%m-%dT%H:%M:%fZ'))
           ON CONFLICT (name_key) DO NOTHING
           RETURNING id, name, password_hash, created`,
  setHash: 'UPDATE authors SET password_hash = ? WHERE id = ?',
  insertSession: `INSERT INTO sessions (id_hash, author_id, created, expires)
                  VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ'), ?)`,
  dropExpired: 'DELETE FROM sessions WHERE expires <= ?',
  session: `SELECT a.id, a.name FROM sessions s JOIN authors a ON a.id = s.author_id
            WHERE s.id_hash = ? AND s.expires > ?`,
  deleteSession: 'DELETE FROM sessions WHERE id_hash = ?',
} as const;

const toAuthor = (row: AuthorRow): Author => ({ id: row.id, name: row.name, created: new Date(row.created) });

/** Authors and sessions in the blog's SQLite file (migration 2). */
export class SqliteAuthorStore implements AuthorStore, SessionStore {
  private readonly statements = new Map<keyof typeof SQL, Statement>();
  private preparedOn: Database | null = null;

  constructor(private readonly database: SqliteDatabase) {}

  hasAuthors(): boolean {
    return this.run(() => this.statement('any').get() !== undefined);
  }

  findByName(name: string): AuthorCredentials | null {
    return this.run(() => {
      const row = this.statement('byKey').get(nameKey(name)) as AuthorRow | undefined;
      return row ? { ...toAuthor(row), passwordHash: row.password_hash } : null;
    });
  }

  create(input: { name: string; passwordHash: string }, { onlyIfFirst = false } = {}): Author | null {
    return this.run(
      () => {
        // Inside the write transaction (BEGIN IMMEDIATE): SQLite's write lock
        // serialises this check with every other writer, in this process or
        // another (the author command), so of two setups only the first inserts.
        if (onlyIfFirst && this.statement('any').get() !== undefined) return null;
        const [row] = this.statement('insert').all({
          name: input.name,
          nameKey: nameKey(input.name),
          passwordHash: input.passwordHash,
        }) as AuthorRow[];
        if (!row) throw new AppError('invalid', `There is already an author named ${input.name}.`);
        return toAuthor(row);
      },
      { write: true },
    );
  }

  setPasswordHash(id: number, passwordHash: string): void {
    this.run(() => void this.statement('setHash').run(passwordHash, id), { write: true });
  }

  createSession(session: { idHash: string; authorId: number; expires: Date }, now: Date): void {
    this.run(
      () => {
        // Sweeping here keeps the table small without a timer: sign-ins are
        // the only writes sessions cause, and they happen on the primary.
        this.statement('dropExpired').run(now.getTime());
        this.statement('insertSession').run(session.idHash, session.authorId, session.expires.getTime());
      },
      { write: true },
    );
  }

  findSession(idHash: string, now: Date): SignedInAuthor | null {
    return this.run(() => {
      const row = this.statement('session').get(idHash, now.getTime()) as { id: number; name: string } | undefined;
      return row ? { id: row.id, name: row.name } : null;
    });
  }

  deleteSession(idHash: string): void {
    this.run(() => void this.statement('deleteSession').run(idHash), { write: true });
  }

  private statement(name: keyof typeof SQL): Statement {
    const db = this.database.handle();
    // A connection closed after a failed write (SqliteDatabase.write()) is reopened: prepare again on the new one.
    if (db !== this.preparedOn) {
      this.statements.clear();
      this.preparedOn = db;
    }
    let statement = this.statements.get(name);
    if (!statement) {
      statement = db.prepare(SQL[name]);
      this.statements.set(name, statement);
    }
    return statement;
  }

  /** As SqliteArticleStore.run(): writes commit before this returns; SQLite's refusals become AppErrors. */
  private run<T>(work: () => T, { write = false } = {}): T {
    try {
      return write ? this.database.write(work) : this.database.guard(work);
    } catch (error) {
      if (error instanceof AppError) throw error;
      // A replica whose copy predates migration 2 (it has not arrived yet).
      if (error instanceof Error && /no such table/.test(error.message)) {
        throw new AppError('unavailable', 'The database is still being set up.', { cause: error });
      }
      throw error;
    }
  }
}
