import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/error.js';
import { SqliteArticleStore } from '../../src/sqlite/article-store.js';
import { SqliteDatabase } from '../../src/sqlite/database.js';

/** A store whose every statement fails as SQLite would, with `code`. */
function storeFailingWith(code: string, message: string): SqliteArticleStore {
  const failing = { get: () => { throw new Database.SqliteError(message, code); } };
  const database = Object.assign(new SqliteDatabase('/nonexistent/app.db'), {
    handle: () => ({ prepare: () => failing, pragma: () => undefined }) as unknown as Database.Database,
  });
  return new SqliteArticleStore(database);
}

const input = { title: 'A title', content: 'Some content' };

describe('the store maps what SQLite refuses to what the user can do about it', () => {
  it.each([
    ['SQLITE_IOERR_WRITE', 'disk I/O error'], // a LiteFS replica refusing a write in WAL mode (EACCES)
    ['SQLITE_IOERR', 'disk I/O error'],
    ['SQLITE_READONLY', 'attempt to write a readonly database'], // in rollback-journal mode
    ['SQLITE_CANTOPEN', 'unable to open database file'],
  ])('%s is "read-only right now" (unavailable)', (code, message) => {
    expect(() => storeFailingWith(code, message).create(input)).toThrow(expect.objectContaining({ code: 'unavailable' }));
  });

  it.each(['SQLITE_BUSY', 'SQLITE_LOCKED'])('%s is "busy" (a lock held elsewhere)', (code) => {
    expect(() => storeFailingWith(code, 'database is locked').get(1)).toThrow(expect.objectContaining({ code: 'busy' }));
  });

  it('lets anything else through as the bug it is', () => {
    let thrown: unknown;
    try {
      storeFailingWith('SQLITE_CONSTRAINT_CHECK', 'CHECK constraint failed').create(input);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Database.SqliteError);
    expect(thrown).not.toBeInstanceOf(AppError);
  });
});
