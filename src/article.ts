import type { Cursor, Page, PageRequest } from './page.js';

/** Who wrote an article, as lists and pages name them. Articles from before authors existed have none. */
export interface ArticleAuthor {
  id: number;
  name: string;
}

export interface Article {
  id: number;
  title: string;
  /** Markdown source, as the author typed it (src/markdown renders it). */
  content: string;
  created: Date;
  updated: Date;
  /** 1 when published, one more at every edit: an edit names the revision it started from (see ArticleEdit). */
  revision: number;
  author: ArticleAuthor | null;
}

/** An article as a list shows it: no content, an excerpt of its text instead. */
export interface ArticleSummary {
  id: number;
  title: string;
  /** The start of its plain text (no markup), cut between words. */
  excerpt: string;
  created: Date;
  updated: Date;
  author: ArticleAuthor | null;
}

/** The two fields an author types. */
export interface ArticleText {
  title: string;
  content: string;
}

/** What an author publishes; validated before it reaches the store. */
export interface ArticleInput extends ArticleText {
  /**
   * The id of the form the article was written in (its hidden `_draft`
   * field): publishing one draft twice (a retry after a lost response, a
   * double click) gives back the first article rather than a second. Null
   * when the client sent none, e.g. an API client.
   */
  draftId?: string | null;
  /** The signed-in author publishing it. */
  authorId: number;
}

/** An edit: the new text, and the revision the author started from. */
export interface ArticleEdit extends ArticleText {
  revision: number;
}

/** What an id names: an article, one that was deleted (its tombstone, so that every replica answers 410), or nothing. */
export type ArticleLookup = { kind: 'found'; article: Article } | { kind: 'deleted'; deleted: Date } | { kind: 'missing' };

/**
 * What became of an edit. `conflict`: the article changed since the edit
 * began (its revision is not the one the edit started from): nothing was
 * saved, and `current` is the article as it now is.
 */
export type EditResult =
  { kind: 'updated'; article: Article } | { kind: 'conflict'; current: Article } | { kind: 'deleted'; deleted: Date } | { kind: 'missing' };

/** What became of a deletion; `conflict` as for an edit (see EditResult). */
export type DeleteResult =
  | { kind: 'deleted'; deleted: Date }
  | { kind: 'conflict'; current: Article }
  | { kind: 'already_deleted'; deleted: Date }
  | { kind: 'missing' };

/** Whether this author may edit and delete this article: its own author, or any author for one from before authors existed. */
export function mayEdit(article: Pick<Article, 'author'>, author: { id: number } | null | undefined): boolean {
  if (!author) return false;
  return article.author === null || article.author.id === author.id;
}

/**
 * Turns an article's Markdown into what readers see (src/markdown): HTML
 * that is safe to put in a page as it is, and the plain text that the search
 * indexes and excerpts are made of.
 */
export interface ArticleMarkup {
  /** An article's HTML and plain text (cached by id and revision: a page view does not render again). */
  render(article: Pick<Article, 'id' | 'revision' | 'content'>): RenderedArticle;
  /** The plain text of Markdown source. */
  text(content: string): string;
}

export interface RenderedArticle {
  /** Safe to put in a page as it is: the Markdown was rendered with raw HTML off. */
  html: string;
  text: string;
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
  /** The last word, when it was also searched as the start of longer words ("replicat" finding "replication"). */
  prefix: string | null;
  ignored: IgnoredWord[];
  /** Whether the search was too long and only its start was read. */
  truncated: boolean;
  /** Newest first, as the home page: one page of them, with the cursors of the pages either side (see Page). */
  hits: SearchHit[];
  newer: Cursor | null;
  older: Cursor | null;
}

export const MAX_TITLE_LENGTH = 200;
export const MAX_CONTENT_LENGTH = 20_000;
/** Articles per page, on the home page and in search results; also what `/feed.xml` carries. */
export const HOME_PAGE_SIZE = 20;
/** The longest excerpt on a list, in characters (cut between words, ending in "…"). */
export const EXCERPT_LENGTH = 240;
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
export function validateArticle(raw: {
  title?: unknown;
  content?: unknown;
  draftId?: unknown;
}): { ok: true; value: ArticleText & { draftId: string | null } } | { ok: false; errors: ArticleErrors } {
  // Control characters cannot be typed into a form (and the search uses two as
  // markers): drop them, keeping the newlines and tabs of the content.
  const title = typeof raw.title === 'string' ? raw.title.replace(CONTROL_CHARACTERS, '').trim() : '';
  const content = typeof raw.content === 'string' ? raw.content.replace(/\r\n?/g, '\n').replace(CONTROL_CHARACTERS_BUT_LINES, '') : '';
  // A malformed draft id only costs the deduplication: refusing the article
  // over a field the author never sees would lose their work.
  const draftId = typeof raw.draftId === 'string' && DRAFT_ID_PATTERN.test(raw.draftId) ? raw.draftId : null;
  const errors: ArticleErrors = {};
  if (title.length === 0) errors.title = 'Please give your article a title.';
  else if (title.length > MAX_TITLE_LENGTH)
    errors.title = `Titles can be at most ${MAX_TITLE_LENGTH} characters (this one has ${title.length}).`;
  if (content.trim().length === 0) errors.content = 'Please write something in your article.';
  else if (content.length > MAX_CONTENT_LENGTH)
    errors.content = `Articles can be at most ${MAX_CONTENT_LENGTH} characters (this one has ${content.length}).`;
  return Object.keys(errors).length === 0 ? { ok: true, value: { title, content, draftId } } : { ok: false, errors };
}

/**
 * The start of an article's plain text for a list: white space made single
 * spaces, at most `max` characters, cut after a whole word where there is
 * one near the end (text without spaces, as Japanese, is cut where it
 * reaches `max`), ending in "…" when cut.
 */
export function excerptOf(text: string, max = EXCERPT_LENGTH): string {
  const flat = text.replace(/\s+/gu, ' ').trim();
  // The first `max` characters (code points, so an emoji is never split),
  // found without spreading the whole text into an array: every article of
  // every list page is cut here, and spreading was a quarter of a home
  // page's render (docs/benchmarks.md, section 10).
  let end = 0;
  for (let count = 0; count < max && end < flat.length; count++) end += flat.codePointAt(end)! > 0xffff ? 2 : 1;
  if (end >= flat.length) return flat;
  const cut = flat.slice(0, end);
  const space = cut.lastIndexOf(' ');
  return `${(space > cut.length * 0.6 ? cut.slice(0, space) : cut).replace(/[\s\p{P}]+$/u, '')}…`;
}

export interface ArticleStore {
  /** One page of articles, newest first (see PageRequest). */
  list(page?: PageRequest, limit?: number): Page<ArticleSummary>;
  /** The newest articles, whole (the feed). */
  latest(limit: number): Article[];
  /** Every article's id and last change, newest first, at most `limit` (the sitemap). */
  index(limit: number): { id: number; updated: Date }[];
  /**
   * Full-text search, newest first and paged as list(); any string is a
   * valid query, bounded before it runs (what was left out is in the
   * results). Off the event loop, with a deadline: rejects with
   * AppError('busy') when the database is locked, as the other reads throw,
   * and AppError('unavailable') past the deadline or when too many searches
   * are waiting.
   */
  search(query: string, page?: PageRequest, limit?: number): Promise<SearchResults>;
  get(id: number): ArticleLookup;
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
  /** Saves an edit if the article is still at `edit.revision` (committed on return, refusals as create()). */
  update(id: number, edit: ArticleEdit): EditResult;
  /**
   * Deletes the article, leaving a tombstone (so that its id is never used
   * again and every replica answers 410 for it), if it is still at
   * `revision` (null: whatever its revision). Committed on return, refusals
   * as create().
   */
  delete(id: number, revision: number | null): DeleteResult;
}
