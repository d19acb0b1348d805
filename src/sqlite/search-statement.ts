import type Database from 'better-sqlite3';
import type { SearchHit, TextSegment } from '../article.js';

// Control characters cannot be typed into a form field (and are dropped from
// articles and searches), so they can mark the matches in highlight() and
// snippet() without colliding with user text; the view escapes the text and
// turns the marks into <mark> elements.
const MATCH_START = '\u0002';
const MATCH_END = '\u0003';
const SNIPPET_TOKENS = 24;
/** A JavaScript function the ranking calls for every matching article; see SEARCH_SQL. */
const STILL_RUNNING = 'search_still_running';

/**
 * Ranks every match, keeps the page shown, then highlights and snippets only
 * those. FTS5 would do the same with its own `ORDER BY rank` (snippets only for
 * the rows returned) and no faster, but it sorts every match inside a single
 * step of SQLite, with no JavaScript in between, and a worker thread can only
 * be stopped (Worker.terminate()) when it runs JavaScript: ranking outside it
 * (`+rank`), calling STILL_RUNNING per match, is what makes a search past its
 * deadline stop at once instead of running on in the background.
 */
const SEARCH_SQL = `
  WITH top AS MATERIALIZED (
    SELECT rowid AS id, rank AS score FROM articles_fts
    WHERE articles_fts MATCH :match AND ${STILL_RUNNING}()
    ORDER BY +rank LIMIT :limit
  )
  SELECT top.id AS id,
         highlight(articles_fts, 0, '${MATCH_START}', '${MATCH_END}') AS title,
         snippet(articles_fts, 1, '${MATCH_START}', '${MATCH_END}', '…', ${SNIPPET_TOKENS}) AS snippet,
         a.created AS created
  FROM top CROSS JOIN articles_fts CROSS JOIN articles a
  WHERE articles_fts MATCH :match AND articles_fts.rowid = top.id AND a.id = top.id
  ORDER BY top.score, top.id`;

interface SearchRow {
  id: number;
  title: string;
  snippet: string;
  created: string;
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

export type RunSearch = (match: string, limit: number) => SearchHit[];

/** Prepares the search on a connection: `match` is an FTS5 query from searchTerms(). */
export function prepareSearch(db: Database.Database): RunSearch {
  db.function(STILL_RUNNING, { deterministic: false }, () => 1);
  const statement = db.prepare(SEARCH_SQL);
  return (match, limit) =>
    (statement.all({ match, limit }) as SearchRow[]).map((row) => ({
      id: row.id,
      title: segments(row.title),
      snippet: segments(row.snippet),
      created: new Date(row.created),
    }));
}
