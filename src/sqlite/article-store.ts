import type { Statement } from 'better-sqlite3';
import { HOME_PAGE_SIZE, type Article, type ArticleInput, type ArticleStore, type SearchHit, type TextSegment } from '../article.js';
import { AppError } from '../error.js';
import { isReadOnlyError, type SqliteDatabase } from './database.js';

// Control characters cannot be typed into a form field, so they can mark the
// matches in highlight() and snippet() without colliding with user text; the
// view escapes the text and turns the marks into <mark> elements.
const MATCH_START = '\u0002';
const MATCH_END = '\u0003';
const SNIPPET_TOKENS = 24;

interface ArticleRow {
  id: number;
  title: string;
  content: string;
  created: string;
  updated: string;
}

interface SearchRow {
  id: number;
  title: string;
  snippet: string;
  created: string;
}

const SQL = {
  list: 'SELECT id, title, content, created, updated FROM articles ORDER BY created DESC, id DESC LIMIT ?',
  get: 'SELECT id, title, content, created, updated FROM articles WHERE id = ?',
  insert: `INSERT INTO articles (title, content, draft_id, created, updated)
           VALUES (@title, @content, @draftId, strftime('%Y-%m-%dT%H:%M:%fZ'), strftime('%Y-%m-%dT%H:%M:%fZ'))
           ON CONFLICT (draft_id) DO NOTHING
           RETURNING id, title, content, created, updated`,
  byDraft: 'SELECT id, title, content, created, updated FROM articles WHERE draft_id = ?',
  search: `SELECT a.id AS id,
                  highlight(articles_fts, 0, '${MATCH_START}', '${MATCH_END}') AS title,
                  snippet(articles_fts, 1, '${MATCH_START}', '${MATCH_END}', '…', ${SNIPPET_TOKENS}) AS snippet,
                  a.created AS created
           FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid
           WHERE articles_fts MATCH ? ORDER BY rank LIMIT ?`,
} as const;

/**
 * Turns whatever a reader typed into an FTS5 query that cannot be a syntax
 * error: every word becomes a quoted string (quotes doubled), and all must match.
 */
export function toFtsQuery(input: string): string | null {
  const words = input.split(/\s+/).filter((word) => word.length > 0);
  if (words.length === 0) return null;
  return words.map((word) => `"${word.replaceAll('"', '""')}"`).join(' ');
}

/** Splits highlighted text into plain and matching segments. */
export function segments(marked: string): TextSegment[] {
  const parts: TextSegment[] = [];
  let rest = marked;
  while (rest.length > 0) {
    const start = rest.indexOf(MATCH_START);
    if (start === -1) {
      parts.push({ text: rest, match: false });
      break;
    }
    if (start > 0) parts.push({ text: rest.slice(0, start), match: false });
    const end = rest.indexOf(MATCH_END, start);
    const stop = end === -1 ? rest.length : end;
    parts.push({ text: rest.slice(start + 1, stop), match: true });
    rest = rest.slice(stop + 1);
  }
  return parts.filter((part) => part.text.length > 0);
}

const toArticle = (row: ArticleRow): Article => ({
  id: row.id,
  title: row.title,
  content: row.content,
  created: new Date(row.created),
  updated: new Date(row.updated),
});

export class SqliteArticleStore implements ArticleStore {
  private readonly statements = new Map<keyof typeof SQL, Statement>();

  constructor(private readonly database: SqliteDatabase) {}

  list(limit = HOME_PAGE_SIZE): Article[] {
    return this.run(() => (this.statement('list').all(limit) as ArticleRow[]).map(toArticle));
  }

  get(id: number): Article | null {
    return this.run(() => {
      const row = this.statement('get').get(id) as ArticleRow | undefined;
      return row ? toArticle(row) : null;
    });
  }

  search(query: string, limit = HOME_PAGE_SIZE): SearchHit[] {
    const match = toFtsQuery(query);
    if (match === null) return [];
    return this.run(() =>
      (this.statement('search').all(match, limit) as SearchRow[]).map((row) => ({
        id: row.id,
        title: segments(row.title),
        snippet: segments(row.snippet),
        created: new Date(row.created),
      })),
    );
  }

  create(input: ArticleInput): Article {
    const draftId = input.draftId ?? null;
    return this.run(() => {
      const row = this.statement('insert').get({ title: input.title, content: input.content, draftId }) as ArticleRow | undefined;
      if (row) return toArticle(row);
      // Only a draft id can conflict, and articles are never deleted: it is there.
      return toArticle(this.statement('byDraft').get(draftId) as ArticleRow);
    });
  }

  private statement(name: keyof typeof SQL): Statement {
    let statement = this.statements.get(name);
    if (!statement) {
      statement = this.database.handle().prepare(SQL[name]);
      this.statements.set(name, statement);
    }
    return statement;
  }

  /** Maps SQLite's refusals to what the user can do about them. */
  private run<T>(work: () => T): T {
    try {
      return this.database.guard(work);
    } catch (error) {
      if (error instanceof AppError) throw error;
      if (isReadOnlyError(error)) {
        throw new AppError('unavailable', 'This copy of the database is read-only right now.', { cause: error });
      }
      if (error instanceof Error && /no such table/.test(error.message)) {
        throw new AppError('unavailable', 'The database is still being set up.', { cause: error });
      }
      throw error;
    }
  }
}
