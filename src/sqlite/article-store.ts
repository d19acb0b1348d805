import {
  excerptOf,
  HOME_PAGE_SIZE,
  type Article,
  type ArticleEdit,
  type ArticleInput,
  type ArticleLookup,
  type ArticleStore,
  type ArticleSummary,
  type DeleteResult,
  type EditResult,
  type SearchResults,
} from '../article.js';
import { pageOf, type Cursor, type Page, type PageRequest } from '../page.js';
import type { SqliteDatabase } from './database.js';
import { searchTerms, SearchTokenizer } from './search-query.js';
import type { SearchQuery } from './search-statement.js';
import { searchableText, withoutWordBreaks } from './search-text.js';
import { SearchWorkers, type SearchWorkersOptions } from './search-workers.js';
import { PreparedStatements, runStatements } from './statements.js';

interface ArticleRow {
  id: number;
  title: string;
  content: string;
  created: string;
  updated: string;
  revision: number;
  author_id: number | null;
  author_name: string | null;
}

interface SummaryRow {
  id: number;
  title: string;
  text: string;
  created: string;
  updated: string;
  author_id: number | null;
  author_name: string | null;
}

/** Enough of the text for an excerpt (EXCERPT_LENGTH) whatever the markup and word breaks it holds. */
const EXCERPT_SOURCE_LENGTH = 1_000;
const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ')";
const ARTICLE = `SELECT a.id, a.title, a.content, a.created, a.updated, a.revision, a.author_id, au.name AS author_name
                 FROM articles a LEFT JOIN authors au ON au.id = a.author_id`;
const SUMMARY = `SELECT a.id, a.title, substr(coalesce(a.search_text, a.content), 1, ${EXCERPT_SOURCE_LENGTH}) AS text,
                        a.created, a.updated, a.author_id, au.name AS author_name
                 FROM articles a LEFT JOIN authors au ON au.id = a.author_id`;

const SQL = {
  // Keyset pages on articles_by_created (created DESC, id DESC).
  listBefore: `${SUMMARY} WHERE (a.created, a.id) < (@created, @id) ORDER BY a.created DESC, a.id DESC LIMIT @limit`,
  listAfter: `${SUMMARY} WHERE (a.created, a.id) > (@created, @id) ORDER BY a.created ASC, a.id ASC LIMIT @limit`,
  latest: `${ARTICLE} ORDER BY a.created DESC, a.id DESC LIMIT ?`,
  index: 'SELECT id, updated FROM articles ORDER BY created DESC, id DESC LIMIT ?',
  get: `${ARTICLE} WHERE a.id = ?`,
  byDraft: `${ARTICLE} WHERE a.draft_id = ?`,
  tombstone: 'SELECT deleted FROM deleted_articles WHERE id = ?',
  // Past every id in use or deleted: without AUTOINCREMENT, SQLite would hand a deleted last id out again.
  insert: `INSERT INTO articles (id, title, content, search_title, search_text, draft_id, author_id, created, updated)
           VALUES (max(coalesce((SELECT max(id) FROM articles), 0), coalesce((SELECT max(id) FROM deleted_articles), 0)) + 1,
                   @title, @content, @searchTitle, @searchText, @draftId, @authorId, ${NOW}, ${NOW})
           ON CONFLICT (draft_id) DO NOTHING
           RETURNING id`,
  update: `UPDATE articles SET title = @title, content = @content, search_title = @searchTitle, search_text = @searchText,
                               revision = revision + 1, updated = ${NOW}
           WHERE id = @id AND revision = @revision
           RETURNING id`,
  // Only at the revision the deletion was confirmed at: a NULL one matches nothing (a conflict), as in an edit.
  delete: 'DELETE FROM articles WHERE id = @id AND revision = @revision RETURNING id',
  bury: `INSERT INTO deleted_articles (id, deleted) VALUES (?, ${NOW}) RETURNING deleted`,
} as const;

/** Past every creation time: the first page starts before it. */
const FIRST_PAGE: Cursor = { created: new Date('9999-12-31T23:59:59.999Z'), id: 0 };

const authorOf = (row: { author_id: number | null; author_name: string | null }) =>
  row.author_id === null || row.author_name === null ? null : { id: row.author_id, name: row.author_name };

const toArticle = (row: ArticleRow): Article => ({
  id: row.id,
  title: row.title,
  content: row.content,
  created: new Date(row.created),
  updated: new Date(row.updated),
  revision: row.revision,
  author: authorOf(row),
});

const toSummary = (row: SummaryRow): ArticleSummary => ({
  id: row.id,
  title: row.title,
  excerpt: excerptOf(withoutWordBreaks(row.text)),
  created: new Date(row.created),
  updated: new Date(row.updated),
  author: authorOf(row),
});

const keyOf = (cursor: Cursor) => ({ created: cursor.created.toISOString(), id: cursor.id });

export interface SqliteArticleStoreOptions {
  /** The search workers' deadline and pool (src/sqlite/search-workers.ts), for tests. */
  search?: Omit<SearchWorkersOptions, 'path'>;
  /**
   * The plain text of an article's Markdown, which the search indexes
   * (ArticleMarkup.text, from src/markdown; main wires it). Without it, the
   * content is indexed as written, markup and all (tools and benchmarks).
   */
  text?: (content: string) => string;
}

export class SqliteArticleStore implements ArticleStore {
  private readonly statements: PreparedStatements<keyof typeof SQL>;

  private readonly tokenizer = new SearchTokenizer();
  private readonly searches: SearchWorkers;
  private readonly text: (content: string) => string;

  constructor(
    private readonly database: SqliteDatabase,
    options: SqliteArticleStoreOptions = {},
  ) {
    // Workers start on the first search, each with its own read-only connection.
    this.searches = new SearchWorkers({ ...options.search, path: database.path });
    this.statements = new PreparedStatements(database, SQL);
    this.text = options.text ?? ((content) => content);
  }

  list(page: PageRequest = {}, limit = HOME_PAGE_SIZE): Page<ArticleSummary> {
    return this.run(() => {
      const rows = (cursor: Cursor, direction: 'listBefore' | 'listAfter') =>
        (this.statements.get(direction).all({ ...keyOf(cursor), limit: limit + 1 }) as SummaryRow[]).map(toSummary);
      if (page.after) {
        const newer = rows(page.after, 'listAfter');
        // Reaching the newest article, a page "newer than" is the first page.
        if (newer.length > limit) return pageOf(newer.slice(0, limit).reverse(), true, page);
      }
      const before = page.after ? undefined : page.before;
      const older = rows(before ?? FIRST_PAGE, 'listBefore');
      return pageOf(older.slice(0, limit), older.length > limit, { before });
    });
  }

  latest(limit: number): Article[] {
    return this.run(() => (this.statements.get('latest').all(limit) as ArticleRow[]).map(toArticle));
  }

  index(limit: number): { id: number; updated: Date }[] {
    return this.run(() =>
      (this.statements.get('index').all(limit) as { id: number; updated: string }[]).map((row) => ({
        id: row.id,
        updated: new Date(row.updated),
      })),
    );
  }

  get(id: number): ArticleLookup {
    return this.run(() => this.lookup(id));
  }

  /** Bounded by searchTerms() (src/sqlite/search-query.ts), run by a worker thread (SearchWorkers), paged as list(). */
  async search(query: string, page: PageRequest = {}, limit = HOME_PAGE_SIZE): Promise<SearchResults> {
    const { match, phrases, prefix, ...terms } = searchTerms(query, this.tokenizer.termsOf);
    const results = { ...terms, prefix: prefix?.word ?? null };
    if (match === null) return { ...results, hits: [], newer: null, older: null };
    const run = (cursor: Cursor | undefined, direction: SearchQuery['direction']) =>
      this.searches.search({ phrases, prefix, cursor: cursor ? keyOf(cursor) : null, direction, limit });
    if (page.after) {
      const newer = await run(page.after, 'after');
      if (newer.more) {
        const { items, ...cursors } = pageOf(newer.hits, true, page);
        return { ...results, hits: items, ...cursors };
      }
    }
    const before = page.after ? undefined : page.before;
    const older = await run(before, 'before');
    const { items, ...cursors } = pageOf(older.hits, older.more, { before });
    return { ...results, hits: items, ...cursors };
  }

  /** Stops the search workers; the database itself is closed by its owner. */
  async close(): Promise<void> {
    this.tokenizer.close();
    await this.searches.close();
  }

  create(input: ArticleInput): Article {
    const draftId = input.draftId ?? null;
    const searchable = this.searchable(input);
    // A write transaction, committed before this returns: the route
    // acknowledges the article as soon as it has it.
    return this.run(
      () => {
        // all(), not get(): the RETURNING statement runs to its end, and
        // reports its errors, before anything is answered.
        const [row] = this.statements.get('insert').all({
          ...searchable,
          title: input.title,
          content: input.content,
          draftId,
          authorId: input.authorId,
        }) as { id: number }[];
        if (row) return toArticle(this.statements.get('get').get(row.id) as ArticleRow);
        // Only a draft id can conflict: it is there.
        return toArticle(this.statements.get('byDraft').get(draftId) as ArticleRow);
      },
      { write: true },
    );
  }

  update(id: number, edit: ArticleEdit): EditResult {
    const searchable = this.searchable(edit);
    return this.run(
      () => {
        const [row] = this.statements.get('update').all({
          ...searchable,
          id,
          title: edit.title,
          content: edit.content,
          revision: edit.revision,
        }) as { id: number }[];
        if (row) return { kind: 'updated', article: toArticle(this.statements.get('get').get(id) as ArticleRow) };
        const lookup = this.lookup(id);
        return lookup.kind === 'found' ? { kind: 'conflict', current: lookup.article } : lookup;
      },
      { write: true },
    );
  }

  delete(id: number, revision: number | null): DeleteResult {
    return this.run(
      () => {
        const [row] = this.statements.get('delete').all({ id, revision }) as { id: number }[];
        if (row) {
          const [{ deleted }] = this.statements.get('bury').all(id) as [{ deleted: string }];
          return { kind: 'deleted', deleted: new Date(deleted) };
        }
        const lookup = this.lookup(id);
        if (lookup.kind === 'found') return { kind: 'conflict', current: lookup.article };
        return lookup.kind === 'deleted' ? { kind: 'already_deleted', deleted: lookup.deleted } : lookup;
      },
      { write: true },
    );
  }

  /** What the search indexes of an article (see the migration that added these columns). */
  private searchable(text: { title: string; content: string }): { searchTitle: string; searchText: string } {
    return { searchTitle: searchableText(text.title), searchText: searchableText(this.text(text.content)) };
  }

  private lookup(id: number): ArticleLookup {
    const row = this.statements.get('get').get(id) as ArticleRow | undefined;
    if (row) return { kind: 'found', article: toArticle(row) };
    const tombstone = this.statements.get('tombstone').get(id) as { deleted: string } | undefined;
    return tombstone ? { kind: 'deleted', deleted: new Date(tombstone.deleted) } : { kind: 'missing' };
  }

  /** Reads, or writes that have committed when this returns; SQLite's refusals become AppErrors (runStatements()). */
  private run<T>(work: () => T, { write = false } = {}): T {
    return runStatements(this.database, work, { write });
  }
}
