import Database from 'better-sqlite3';
import type { IgnoredWord } from '../article.js';
import { hasCjk, segmentRun } from './search-text.js';

/**
 * What a search may contain. FTS5 ranks every matching article, and its
 * ranking (bm25) and snippets merge the positions of every phrase of the query
 * with every other's, so an article's cost grows with the square of the
 * query's words: 300 repeats of a common word held the process for minutes
 * on 10,000 articles. Within these limits the worst query costs tens of
 * milliseconds there (docs/benchmarks.md, "Search: the worst allowed query").
 */

/** The longest search read, in characters: the search box's `maxlength` (views/layout.eta). */
export const MAX_SEARCH_LENGTH = 200;
/** At most this many different words are searched for; the rest are ignored, and the page says so. */
export const MAX_SEARCH_WORDS = 8;
/** Longer "words" (pasted hashes, runs of letters) are ignored: no real word is this long. */
export const MAX_WORD_LENGTH = 40;
/**
 * The tokenizer of `articles_fts` (src/sqlite/migrations.ts; a test checks
 * they agree): two words are the same when it makes the same terms of them
 * (case, accents and endings folded: "Replicates" is "replicate").
 */
export const SEARCH_TOKENIZER = 'porter unicode61';
/**
 * The tokenizer of `articles_words` (src/sqlite/migrations.ts), the same
 * words unstemmed: FTS5 stems a prefix query as a word ("replicat" is not a
 * start of "replic", the stem of "replication"), so the completions of the
 * last word are looked up in this index's vocabulary instead (search-statement.ts).
 */
export const PREFIX_TOKENIZER = 'unicode61';
/** A last word shorter than this (letters of scripts with spaces between words) is searched as a whole word only: "a" would mean every article. */
export const MIN_PREFIX_LENGTH = 3;

/** What a reader's search comes to once bounded. */
export interface SearchTerms {
  /** The search as read: control characters dropped, cut after MAX_SEARCH_LENGTH. */
  text: string;
  /** The words searched for, as typed, in order. */
  words: string[];
  /** Words left out, once each, in order. */
  ignored: IgnoredWord[];
  /** Whether the search was longer than MAX_SEARCH_LENGTH (the rest was not read). */
  truncated: boolean;
  /** The words as FTS5 phrases, in order: all must match. */
  phrases: string[];
  /**
   * How the last word is also searched as the start of longer words, or
   * null: `native`, a CJK word, by FTS5's own prefix query (the stemmer
   * leaves such words alone); `completions`, a word of another script of at
   * least MIN_PREFIX_LENGTH letters, by the completions the worker finds
   * in the unstemmed index.
   */
  prefix: { word: string; kind: 'native' | 'completions' } | null;
  /** The FTS5 query of the whole words (all must match), or null when no word is left. */
  match: string | null;
}

/** Turns words into the terms the index holds for them: one string per word, '' when it holds none. */
export type TermsOf = (words: readonly string[]) => string[];

const LINE_BREAKS_AND_TABS = /[\t\n\v\f\r]/g;
// NUL makes FTS5 stop reading the query ("unterminated string"); none can be typed.
const CONTROL_CHARACTERS = /\p{Cc}/gu;
// What unicode61 counts as part of a word (letters, digits, private use; marks,
// which it folds away); everything else separates words, as it does in the index.
const WORD = /[\p{L}\p{N}\p{M}\p{Co}]+/gu;

/**
 * Bounds what a reader typed and makes it an FTS5 query that cannot be a
 * syntax error: each word becomes a quoted string, and all must match. Words
 * are what the index's tokenizer makes of the text (`read-your-writes` is
 * three); a word the same as an earlier one (by `termsOf`), one past
 * MAX_SEARCH_WORDS or longer than MAX_WORD_LENGTH is ignored and reported.
 */
export function searchTerms(input: string, termsOf: TermsOf): SearchTerms {
  let text = input.replace(LINE_BREAKS_AND_TABS, ' ').replace(CONTROL_CHARACTERS, '').trim();
  const truncated = text.length > MAX_SEARCH_LENGTH;
  // Cut between words: half a word would search for another word.
  if (truncated)
    text = text
      .slice(0, MAX_SEARCH_LENGTH + 1)
      .replace(/\S*$/u, '')
      .trimEnd();
  const candidates = text.match(WORD) ?? [];
  const short = [...new Set(candidates.filter((word) => word.length <= MAX_WORD_LENGTH))];
  const terms = termsOf(short);
  const termOf = new Map(short.map((word, i) => [word, terms[i] ?? '']));

  const words: string[] = [];
  const ignored: IgnoredWord[] = [];
  const searched = new Set<string>();
  const reported = new Set<string>();
  const ignore = (word: string, reason: IgnoredWord['reason'], key: string) => {
    if (reported.has(key)) return;
    reported.add(key);
    ignored.push({ word, reason });
  };
  for (const word of candidates) {
    if (word.length > MAX_WORD_LENGTH) {
      ignore(`${word.slice(0, MAX_WORD_LENGTH)}…`, 'too_long', `long:${word}`);
      continue;
    }
    const term = termOf.get(word) ?? '';
    // Nothing the index could match (no term at all): leaving it out changes no result.
    if (term === '') continue;
    // Each spelling of a repeat once ("the" of 300, but "Replicates" and "REPLICATING" both).
    if (searched.has(term)) ignore(word, 'repeated', `repeated:${word}`);
    else if (words.length >= MAX_SEARCH_WORDS) ignore(word, 'too_many', `term:${term}`);
    else {
      searched.add(term);
      words.push(word);
    }
  }
  const last = words.at(-1);
  const prefix =
    last === undefined
      ? null
      : hasCjk(last)
        ? { word: last, kind: 'native' as const }
        : [...last].length >= MIN_PREFIX_LENGTH
          ? { word: last, kind: 'completions' as const }
          : null;
  const phrases = words.map(toFtsPhrase);
  return { text, words, ignored, truncated, phrases, prefix, match: words.length === 0 ? null : phrases.join(' ') };
}

/**
 * A word as an FTS5 phrase: quoted (quotes doubled), so that nothing in it
 * is read as FTS5 syntax (AND, NEAR, *, column:), and, in CJK, cut into the
 * words the index holds (search-text.ts): `東京都` is the phrase `東京 都`.
 */
export function toFtsPhrase(word: string): string {
  return `"${segmentRun(word).replaceAll('"', '""')}"`;
}

/** Every word must match (see toFtsPhrase). */
export function toFtsMatch(words: readonly string[]): string {
  return words.map(toFtsPhrase).join(' ');
}

/**
 * Asks SQLite's own tokenizer, the index's, what terms it makes of words:
 * no copy of its case folding, accent removal and Porter stemming in
 * JavaScript could agree with it exactly. An in-memory database of its own,
 * a fraction of a millisecond per search.
 */
export class SearchTokenizer {
  private db: Database.Database | null = null;
  private statements: { clear: Database.Statement; insert: Database.Statement; terms: Database.Statement } | null = null;

  /** @param tokenizer the index's (SEARCH_TOKENIZER), or PREFIX_TOKENIZER for words as the unstemmed index holds them. */
  constructor(private readonly tokenizer: string = SEARCH_TOKENIZER) {}

  readonly termsOf: TermsOf = (words) => {
    if (words.length === 0) return [];
    const { clear, insert, terms } = this.prepared();
    const byWord = words.map(() => [] as string[]);
    this.db!.transaction(() => {
      clear.run();
      words.forEach((word, i) => insert.run(i + 1, segmentRun(word)));
      for (const row of terms.all() as { doc: number; term: string }[]) byWord[row.doc - 1]?.push(row.term);
      clear.run();
    })();
    return byWord.map((terms) => terms.join(' '));
  };

  close(): void {
    this.db?.close();
    this.db = null;
    this.statements = null;
  }

  private prepared(): NonNullable<SearchTokenizer['statements']> {
    if (this.statements) return this.statements;
    const db = new Database(':memory:');
    db.exec(`
      CREATE VIRTUAL TABLE words USING fts5(word, tokenize = '${this.tokenizer}');
      CREATE VIRTUAL TABLE word_terms USING fts5vocab(words, instance);
    `);
    this.db = db;
    this.statements = {
      clear: db.prepare('DELETE FROM words'),
      insert: db.prepare('INSERT INTO words (rowid, word) VALUES (?, ?)'),
      terms: db.prepare('SELECT doc, term FROM word_terms ORDER BY doc, offset'),
    };
    return this.statements;
  }
}
