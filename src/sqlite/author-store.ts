import { nameKey, type Author, type AuthorCredentials, type AuthorStore, type SessionStore, type SignedInAuthor } from '../author.js';
import { AppError } from '../error.js';
import type { SqliteDatabase } from './database.js';
import { PreparedStatements, runStatements } from './statements.js';

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
  private readonly statements: PreparedStatements<keyof typeof SQL>;

  constructor(private readonly database: SqliteDatabase) {
    this.statements = new PreparedStatements(database, SQL);
  }

  hasAuthors(): boolean {
    return this.run(() => this.statements.get('any').get() !== undefined);
  }

  findByName(name: string): AuthorCredentials | null {
    return this.run(() => {
      const row = this.statements.get('byKey').get(nameKey(name)) as AuthorRow | undefined;
      return row ? { ...toAuthor(row), passwordHash: row.password_hash } : null;
    });
  }

  create(input: { name: string; passwordHash: string }, { onlyIfFirst = false } = {}): Author | null {
    return this.run(
      () => {
        // Inside the write transaction (BEGIN IMMEDIATE): SQLite's write lock
        // serialises this check with every other writer, in this process or
        // another (the author command), so of two setups only the first inserts.
        if (onlyIfFirst && this.statements.get('any').get() !== undefined) return null;
        const [row] = this.statements.get('insert').all({
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
    this.run(() => void this.statements.get('setHash').run(passwordHash, id), { write: true });
  }

  createSession(session: { idHash: string; authorId: number; expires: Date }, now: Date): void {
    this.run(
      () => {
        // Sweeping here keeps the table small without a timer: sign-ins are
        // the only writes sessions cause, and they happen on the primary.
        this.statements.get('dropExpired').run(now.getTime());
        this.statements.get('insertSession').run(session.idHash, session.authorId, session.expires.getTime());
      },
      { write: true },
    );
  }

  findSession(idHash: string, now: Date): SignedInAuthor | null {
    return this.run(() => {
      const row = this.statements.get('session').get(idHash, now.getTime()) as { id: number; name: string } | undefined;
      return row ? { id: row.id, name: row.name } : null;
    });
  }

  deleteSession(idHash: string): void {
    this.run(() => void this.statements.get('deleteSession').run(idHash), { write: true });
  }

  /** Writes commit before this returns; SQLite's refusals become AppErrors (runStatements()). */
  private run<T>(work: () => T, { write = false } = {}): T {
    return runStatements(this.database, work, { write });
  }
}
