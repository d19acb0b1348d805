import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/sqlite/migrations.js';
import {
  MAX_SEARCH_LENGTH,
  MAX_SEARCH_WORDS,
  MAX_WORD_LENGTH,
  PREFIX_TOKENIZER,
  SEARCH_TOKENIZER,
  searchTerms,
  SearchTokenizer,
  toFtsPhrase,
} from '../../src/sqlite/search-query.js';
import { matchOf } from '../../src/sqlite/search-statement.js';
import { WORD_BREAK } from '../../src/sqlite/search-text.js';

const tokenizer = new SearchTokenizer();
afterAll(() => tokenizer.close());
const terms = (input: string) => searchTerms(input, tokenizer.termsOf);

/** A migrated in-memory database with one article, to run the queries against FTS5 for real. */
function index(title: string, content: string): Database.Database {
  const db = new Database(':memory:');
  migrate(db);
  db.prepare("INSERT INTO articles (title, content, created, updated) VALUES (?, ?, 'x', 'x')").run(title, content);
  return db;
}
const matches = (db: Database.Database, match: string | null) =>
  match === null ? 0 : (db.prepare('SELECT count(*) AS n FROM articles_fts WHERE articles_fts MATCH ?').get(match) as { n: number }).n;

describe('searchTerms: what a search may contain', () => {
  it('uses the tokenizer of the index, so that "the same word" means what the index means', () => {
    const db = index('t', 'c');
    const { sql } = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'articles_fts'").get() as { sql: string };
    expect(sql).toContain(`tokenize = '${SEARCH_TOKENIZER}'`);
  });

  it('drops control characters, NUL included, which made FTS5 stop reading the query (500)', () => {
    const db = index('Cache control', 'The primary replicates.');
    const nul = terms('cache\u0000 control\u0001\u007f \u0000');
    expect(nul.text).toBe('cache control');
    expect(nul.words).toEqual(['cache', 'control']);
    expect(nul.match).not.toMatch(/\p{Cc}/u);
    expect(matches(db, nul.match)).toBe(1);
    // Inside a word it joins the halves, as it does in articles (validateArticle drops them too).
    expect(terms('repli\u0000cates').words).toEqual(['replicates']);
    // Tabs and line breaks separate words.
    expect(terms('cache\tcontrol\nprimary').words).toEqual(['cache', 'control', 'primary']);
    expect(terms('\u0000\u0000').match).toBeNull();
  });

  it.each(['"', 'NEAR(', 'a OR b', '*', 'title:x', '(((', 'AND', "'; DROP TABLE articles; --", '^', 'x"y'])(
    'treats %s as words, never FTS5 syntax',
    (input) => {
      const db = index('Quotes " and stars *', 'a b x y title and near or drop table articles');
      expect(() => matches(db, terms(input).match)).not.toThrow();
    },
  );

  it('searches a repeated word once, whatever its case, accents or ending (as the Porter stemmer folds them)', () => {
    const result = terms('Replicate replicates REPLICATING réplicate replicate lag');
    expect(result.words).toEqual(['Replicate', 'lag']);
    expect(result.ignored).toEqual([
      { word: 'replicates', reason: 'repeated' },
      { word: 'REPLICATING', reason: 'repeated' },
      { word: 'réplicate', reason: 'repeated' },
      { word: 'replicate', reason: 'repeated' },
    ]);
    // Each spelling once: 300 times "the" is one "the".
    expect(terms('the '.repeat(300)).ignored).toEqual([{ word: 'the', reason: 'repeated' }]);
    expect(result.match).toBe('"Replicate" "lag"');
  });

  it(`searches at most ${MAX_SEARCH_WORDS} different words, repeats not counted, and names the rest`, () => {
    const distinct = Array.from({ length: MAX_SEARCH_WORDS + 3 }, (_, i) => `word${i}`);
    const result = terms(['word0', 'word0', ...distinct, 'word1'].join(' '));
    expect(result.words).toEqual(distinct.slice(0, MAX_SEARCH_WORDS));
    expect(result.ignored).toEqual([
      { word: 'word0', reason: 'repeated' },
      ...distinct.slice(MAX_SEARCH_WORDS).map((word) => ({ word, reason: 'too_many' })),
      { word: 'word1', reason: 'repeated' },
    ]);
  });

  it('reads the words as the tokenizer does: punctuation separates them', () => {
    expect(terms('read-your-writes, (LiteFS)!').words).toEqual(['read', 'your', 'writes', 'LiteFS']);
  });

  it(`ignores words longer than ${MAX_WORD_LENGTH} characters, shown cut`, () => {
    const long = 'x'.repeat(MAX_WORD_LENGTH + 1);
    const result = terms(`${long} ok ${'y'.repeat(MAX_WORD_LENGTH)}`);
    expect(result.words).toEqual(['ok', 'y'.repeat(MAX_WORD_LENGTH)]);
    expect(result.ignored).toEqual([{ word: `${'x'.repeat(MAX_WORD_LENGTH)}…`, reason: 'too_long' }]);
  });

  it(`reads at most ${MAX_SEARCH_LENGTH} characters, cut between words`, () => {
    const input = `${'ab '.repeat(MAX_SEARCH_LENGTH / 3)}halfword and more`;
    const result = terms(input);
    expect(result.truncated).toBe(true);
    expect(result.text.length).toBeLessThanOrEqual(MAX_SEARCH_LENGTH);
    expect(result.text).toMatch(/ab$/); // "halfword" straddled the limit: dropped, not searched as "ha"
    expect(terms('ab '.repeat(10)).truncated).toBe(false);
    // A huge query costs no more than its first characters.
    expect(terms(`${'z '.repeat(100_000)}`).text.length).toBeLessThanOrEqual(MAX_SEARCH_LENGTH);
  });

  it('leaves nothing to search for in punctuation alone', () => {
    for (const input of ['', '   ', '"', '*** ---', '\u0000']) expect(terms(input).match).toBeNull();
  });
});

describe('prefixes and CJK words', () => {
  it('searches the last word also as a prefix: by completions for words of 3 letters or more, natively for CJK', () => {
    expect(terms('primary replicat').prefix).toEqual({ word: 'replicat', kind: 'completions' });
    expect(terms('replicat pa').prefix).toBeNull(); // "pa" would be the start of half the vocabulary
    expect(terms('東京').prefix).toEqual({ word: '東京', kind: 'native' });
    expect(terms('都').prefix).toEqual({ word: '都', kind: 'native' });
    expect(terms('"').prefix).toBeNull();
  });

  it('cuts a CJK word into the words the index holds, as one phrase: 東京都 is "東京 都"', () => {
    expect(toFtsPhrase('東京都')).toBe(`"東京${WORD_BREAK}都"`);
    expect(toFtsPhrase('LiteFS')).toBe('"LiteFS"');
    // A run is one word of the search (a phrase of its parts), and the same run twice is searched once.
    expect(terms('東京都に住んでいます 東京都').words).toEqual(['東京都に住んでいます', '東京都']);
    expect(terms('東京都 東京都').ignored).toEqual([{ word: '東京都', reason: 'repeated' }]);
  });

  it('agrees with the unstemmed index on its tokenizer', () => {
    const db = index('t', 'c');
    const { sql } = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'articles_words'").get() as { sql: string };
    expect(sql).toContain(`tokenize = '${PREFIX_TOKENIZER}'`);
  });

  it.each([
    [['"a"'], null, [], '"a"'],
    [['"a"', '"b"'], null, [], '"a" AND "b"'],
    [['"a"', '"東京"'], { word: '東京', kind: 'native' }, [], '"a" AND "東京"*'],
    [
      ['"a"', '"replicat"'],
      { word: 'replicat', kind: 'completions' },
      ['replication', 'x"y'],
      '"a" AND ("replicat" OR "replication" OR "x""y")',
    ],
  ] as const)('builds FTS5 queries that FTS5 reads (%j)', (phrases, prefix, completions, expected) => {
    const match = matchOf(phrases, prefix, completions);
    expect(match).toBe(expected);
    const db = index('a b 東京 replication', 'x"y');
    expect(() => db.prepare('SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?').get(match)).not.toThrow();
  });
});
