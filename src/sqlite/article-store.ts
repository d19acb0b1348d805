import type { Database, Statement } from 'better-sqlite3';
import { HOME_PAGE_SIZE, type Article, type ArticleInput, type ArticleStore, type SearchResults } from '../article.js';
import { AppError } from '../error.js';
import type { SqliteDatabase } from './database.js';
import { searchTerms, SearchTokenizer } from './search-query.js';
import { SearchWorkers, type SearchWorkersOptions } from './search-workers.js';

interface ArticleRow {
  id: number;
  title: string;
  content: string;
  created: string;
  updated: string;
}

const SQL = {
  list: 'SELECT id, title, content, created, updated FROM articles ORDER BY created DESC, id DESC LIMIT ?',
  get: 'SELECT id, title, content, created, updated FROM articles WHERE id = ?',
  insert: `INSERT INTO articles (title, content, draft_id, created, updated)
           VALUES (@title, @content, @draftId, strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ'))
           ON CONFLICT (draft_id) DO NOTHING
           RETURNING id, title, content, created, updated`,
  byDraft: 'SELECT id, title, content, created, updated FROM articles WHERE draft_id = ?',
} as const;

const toArticle = (row: ArticleRow): Article => ({
  id: row.id,
  title: row.title,
  content: row.content,
  created: new Date(row.created),
  updated: new Date(row.updated),
});

export class SqliteArticleStore implements ArticleStore {
  private readonly statements = new Map<keyof typeof SQL, Statement>();
  private preparedOn: Database | null = null;

  private readonly tokenizer = new SearchTokenizer();
  private readonly searches: SearchWorkers;

  /** `search`: the search workers' deadline and pool (src/sqlite/search-workers.ts), for tests. */
  constructor(
    private readonly database: SqliteDatabase,
    options: { search?: Omit<SearchWorkersOptions, 'path'> } = {},
  ) {
    // Workers start on the first search, each with its own read-only connection.
    this.searches = new SearchWorkers({ ...options.search, path: database.path });
  }

  list(limit = HOME_PAGE_SIZE): Article[] {
    return this.run(() => (this.statement('list').all(limit) as ArticleRow[]).map(toArticle));
  }

  get(id: number): Article | null {
    return this.run(() => {
      const row = this.statement('get').get(id) as ArticleRow | undefined;
      return row ? toArticle(row) : null;
    });
  }

  /** Bounded by searchTerms() (src/sqlite/search-query.ts), run by a worker thread (SearchWorkers). */
  async search(query: string, limit = HOME_PAGE_SIZE): Promise<SearchResults> {
    const { match, ...terms } = searchTerms(query, this.tokenizer.termsOf);
    return { ...terms, hits: match === null ? [] : await this.searches.search(match, limit) };
  }

  /** Stops the search workers; the database itself is closed by its owner. */
  async close(): Promise<void> {
    this.tokenizer.close();
    await this.searches.close();
  }

  create(input: ArticleInput): Article {
    const draftId = input.draftId ?? null;
    // A write transaction, committed before this returns: the route
    // acknowledges the article as soon as it has it.
    return this.run(
      () => {
        // all(), not get(): the RETURNING statement runs to its end, and
        // reports its errors, before anything is answered.
        const [row] = this.statement('insert').all({ title: input.title, content: input.content, draftId }) as ArticleRow[];
        if (row) return toArticle(row);
        // Only a draft id can conflict, and articles are never deleted: it is there.
        return toArticle(this.statement('byDraft').get(draftId) as ArticleRow);
      },
      { write: true },
    );
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

  /**
   * Runs a read, or a write in its own transaction that has committed when
   * this returns (SqliteDatabase.write()); SQLite's refusals become what the
   * user can do about them (SqliteDatabase.guard()).
   */
  private run<T>(work: () => T, { write = false } = {}): T {
    try {
      return write ? this.database.write(work) : this.database.guard(work);
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (error instanceof Error && /no such table/.test(error.message)) {
        throw new AppError('unavailable', 'The database is still being set up.', { cause: error });
      }
      throw error;
    }
  }
}
