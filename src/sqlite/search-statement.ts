import type Database from 'better-sqlite3';
import type { SearchHit, TextSegment } from '../article.js';
import { SearchTokenizer, PREFIX_TOKENIZER } from './search-query.js';
import { withoutWordBreaks } from './search-text.js';

// Control characters cannot be typed into a form field (and are dropped from
// articles and searches), so they can mark the matches in highlight() and
// snippet() without colliding with user text; the view escapes the text and
// turns the marks into <mark> elements.
const MATCH_START = '\u0002';
const MATCH_END = '\u0003';
const SNIPPET_TOKENS = 24;
/** A JavaScript function called for every matching article; see PAGE_SQL. */
const STILL_RUNNING = 'search_still_running';
/** The completions of a prefix looked at, most common first: the vocabulary of a prefix like "con" runs to thousands. */
export const MAX_PREFIX_CANDIDATES = 64;
/**
 * At most this many other words (by stem: "replication", "replicated" and
 * "replicates" are one) are searched for as completions of the last word:
 * with the words themselves, a query is at most MAX_SEARCH_WORDS +
 * MAX_COMPLETIONS phrases, which bounds its cost (docs/benchmarks.md).
 */
export const MAX_COMPLETIONS = 8;

/**
 * One page of matches, newest first (or, for `after`, oldest first, which
 * the caller turns round), then highlights and snippets for those only.
 * Matches are ordered by date, not rank, so that the pages are as stable as
 * the home page's (and no match pays for bm25). A worker thread can only be
 * stopped (Worker.terminate()) while it runs JavaScript: STILL_RUNNING,
 * called for every match and again before each row's snippet (the costly
 * part: it grows with the square of the query's phrases), is what makes a
 * search past its deadline stop at once instead of running on.
 *
 * `+a.id`: the matches are a set to look ids up in, while the page walks
 * articles_by_created (created, id: a covering index) newest first and stops
 * once it is full. Without the `+`, SQLite fetches every matching article by
 * its id, reading its row past the content to reach `created`, and sorts
 * them all: ten times slower for a word in every article.
 */
const pageSql = (direction: 'before' | 'after') => `
  WITH top AS MATERIALIZED (
    SELECT a.id AS id, a.created AS created FROM articles a
    WHERE +a.id IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH :match AND ${STILL_RUNNING}())
      AND (a.created, a.id) ${direction === 'before' ? '<' : '>'} (:created, :id)
    ORDER BY a.created ${direction === 'before' ? 'DESC' : 'ASC'}, a.id ${direction === 'before' ? 'DESC' : 'ASC'}
    LIMIT :limit
  )
  SELECT top.id AS id,
         highlight(articles_fts, 0, '${MATCH_START}', '${MATCH_END}') AS title,
         snippet(articles_fts, 1, '${MATCH_START}', '${MATCH_END}', '…', ${SNIPPET_TOKENS}) AS snippet,
         top.created AS created
  FROM top CROSS JOIN articles_fts
  WHERE articles_fts MATCH :match AND articles_fts.rowid = top.id AND ${STILL_RUNNING}()
  ORDER BY top.created DESC, top.id DESC`;

// The words of the unstemmed index that start with a prefix, most common first.
const COMPLETIONS_SQL = `
  SELECT term FROM articles_words_vocab
  WHERE term >= :low AND term < :high
  ORDER BY doc DESC, term LIMIT ${MAX_PREFIX_CANDIDATES}`;

/** Past every creation time: the first page starts before it. */
const END_OF_TIME = { created: '9999-12-31T23:59:59.999Z', id: 0 };

interface SearchRow {
  id: number;
  title: string;
  snippet: string;
  created: string;
}

/** Splits highlighted text into plain and matching segments, without the index's word breaks. */
export function segments(marked: string): TextSegment[] {
  const parts: TextSegment[] = [];
  let rest = withoutWordBreaks(marked);
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

/** A search as the worker runs it: the phrases of searchTerms(), how its last word is a prefix, and the page. */
export interface SearchQuery {
  phrases: readonly string[];
  prefix: { word: string; kind: 'native' | 'completions' } | null;
  /** Where the page starts (an ISO creation time and an id), and which way it goes. */
  cursor: { created: string; id: number } | null;
  direction: 'before' | 'after';
  /** At most this many hits; one more is asked for, to tell whether there are more. */
  limit: number;
}

export interface SearchPage {
  /** Newest first. */
  hits: SearchHit[];
  /** Whether there are more beyond this page, in its direction. */
  more: boolean;
}

export type RunSearch = (query: SearchQuery) => SearchPage;

/**
 * The FTS5 query of a search: all its phrases, the last one OR its
 * completions (a CJK word: FTS5's own prefix query, which the stemmer
 * leaves alone).
 */
export function matchOf(phrases: readonly string[], prefix: SearchQuery['prefix'], completions: readonly string[]): string {
  const last = phrases.at(-1);
  if (last === undefined) return '';
  const rest = phrases.slice(0, -1);
  // AND spelt out: FTS5 reads no implicit AND before a parenthesis.
  if (prefix?.kind === 'native') return [...rest, `${last}*`].join(' AND ');
  if (completions.length === 0) return phrases.join(' AND ');
  const alternatives = [last, ...completions.map((word) => `"${word.replaceAll('"', '""')}"`)];
  return [...rest, `(${alternatives.join(' OR ')})`].join(' AND ');
}

/** Prepares the search on a connection (a worker's: see search-worker.ts). */
export function prepareSearch(db: Database.Database): { run: RunSearch; close(): void } {
  db.function(STILL_RUNNING, { deterministic: false }, () => 1);
  const pages = { before: db.prepare(pageSql('before')), after: db.prepare(pageSql('after')) };
  const vocabulary = db.prepare(COMPLETIONS_SQL).pluck();
  // The stems of the completions (to search each stem once) and the prefix as the unstemmed index folds it.
  const stems = new SearchTokenizer();
  const folds = new SearchTokenizer(PREFIX_TOKENIZER);

  /** Other words the last word starts, most common first, one per stem (see MAX_COMPLETIONS). */
  const completionsOf = (word: string): string[] => {
    const [low] = folds.termsOf([word]);
    if (!low || low.includes(' ')) return [];
    const candidates = (vocabulary.all({ low, high: `${low}\u{10ffff}` }) as string[]).filter((term) => term !== low);
    const [own] = stems.termsOf([word]);
    const seen = new Set([own]);
    const picked: string[] = [];
    stems.termsOf(candidates).forEach((stem, i) => {
      if (picked.length >= MAX_COMPLETIONS || seen.has(stem)) return;
      seen.add(stem);
      picked.push(candidates[i]!);
    });
    return picked;
  };

  const run: RunSearch = ({ phrases, prefix, cursor, direction, limit }) => {
    const completions = prefix?.kind === 'completions' ? completionsOf(prefix.word) : [];
    const match = matchOf(phrases, prefix, completions);
    const rows = pages[direction].all({ match, limit: limit + 1, ...(cursor ?? END_OF_TIME) }) as SearchRow[];
    // The statement returns newest first whichever way it went; one row past the page says there are more.
    const more = rows.length > limit;
    const page = direction === 'before' ? rows.slice(0, limit) : rows.slice(rows.length > limit ? 1 : 0);
    return {
      more,
      hits: page.map((row) => ({
        id: row.id,
        title: segments(row.title),
        snippet: segments(row.snippet),
        created: new Date(row.created),
      })),
    };
  };
  return {
    run,
    close() {
      stems.close();
      folds.close();
    },
  };
}
