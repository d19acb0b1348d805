
export interface Article {
  id: number;
  title: string;
  content: string;
  created: Date;
  updated: Date;
}

/** What an author types; validated before it reaches the store. */
export interface ArticleInput {
  title: string;
  content: string;
  /**
   * The id of the form the article was written in (its hidden `_draft`
   * field): publishing one draft twice (a retry after a lost response, a
   * double click) gives back the first article rather than a second. Null
   * when the client sent none, e.g. an API client.
   */
  draftId?: string | null;
}

/** A part of a highlighted title or snippet: `match` parts hit the search. */
export interface TextSegment {
  text: string;
  match: boolean;
}

export interface SearchHit {
  id: number;
  title: TextSegment[];
  snippet: TextSegment[];
  created: Date;
}

/** A word of a search that was not searched for, and why: the results page tells the reader. */
export interface IgnoredWord {
  word: string;
  /**
   * `repeated`: the same word as an earlier one (in another case or form, e.g.
   * "Replicates" after "replicate"); `too_many`: past the most words searched
   * at once; `too_long`: longer than any word (shown cut, ending in "…").
   */
  reason: 'repeated' | 'too_many' | 'too_long';
}

export interface SearchResults {
  /** The search as read: control characters dropped, and cut (between words) when too long. */
  text: string;
  /** The words searched for, as typed: all must match. */
  words: string[];
  ignored: IgnoredWord[];
  /** Whether the search was too long and only its start was read. */
  truncated: boolean;
  /** Best match first. */
  hits: SearchHit[];
}

export const MAX_TITLE_LENGTH = 200;
export const MAX_CONTENT_LENGTH = 20_000;
export const HOME_PAGE_SIZE = 50;
/** A draft id as the form makes them (`newDraftId()` in src/http/articles.ts): URL-safe, hard to guess. */
export const DRAFT_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

export type ArticleErrors = Partial<Record<'title' | 'content', string>>;

/**
 * Trims the title (not the content: authors mean their whitespace) and checks
 * both. Returns the cleaned input or the errors per field, so that a form can
 * be shown again with everything the author typed.
 */
export function validateArticle(
  raw: { title?: unknown; content?: unknown; draftId?: unknown },
): { ok: true; value: ArticleInput } | { ok: false; errors: ArticleErrors } {
  // Control characters cannot be typed into a form (and the search uses two as
  // markers): drop them, keeping the newlines and tabs of the content.
  const title = typeof raw.title === 'string' ? raw.title.replace(CONTROL_CHARACTERS, '').trim() : '';
  const content = typeof raw.content === 'string' ? raw.content.replace(/\r\n?/g, '\n').replace(CONTROL_CHARACTERS_BUT_LINES, '') : '';
  // A malformed draft id only costs the deduplication: refusing the article
  // over a field the author never sees would lose their work.
  const draftId = typeof raw.draftId === 'string' && DRAFT_ID_PATTERN.test(raw.draftId) ? raw.draftId : null;
  const errors: ArticleErrors = {};
  if (title.length === 0) errors.title = 'Please give your article a title.';
  else if (title.length > MAX_TITLE_LENGTH) errors.title = `Titles can be at most ${MAX_TITLE_LENGTH} characters (this one has ${title.length}).`;
  if (content.trim().length === 0) errors.content = 'Please write something in your article.';
  else if (content.length > MAX_CONTENT_LENGTH) errors.content = `Articles can be at most ${MAX_CONTENT_LENGTH} characters (this one has ${content.length}).`;
  return Object.keys(errors).length === 0 ? { ok: true, value: { title, content, draftId } } : { ok: false, errors };
}

export interface ArticleStore {
  /** Newest first. */
  list(limit?: number): Article[];
  /**
   * Full-text search; any string is a valid query, bounded before it runs
   * (what was left out is in the results). Off the event loop, with a
   * deadline: rejects with AppError('busy') when the database is locked, as
   * the other reads throw, and AppError('unavailable') past the deadline or
   * when too many searches are waiting.
   */
  search(query: string, limit?: number): Promise<SearchResults>;
  get(id: number): Article | null;
  /**
   * Commits the article and returns it only once it is committed, so that the
   * caller may acknowledge it. Throws AppError('busy') when a lock kept the
   * commit from happening, AppError('unavailable') when the database cannot
   * be written (read-only, an I/O error, full); then nothing was stored.
   * When an article was already published from `input.draftId`,
   * commits nothing and returns that one, whatever its text: the caller
   * compares it with the input.
   */
  create(input: ArticleInput): Article;
}

