import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../tools/checker/random.js';
import { HOME_PAGE_SIZE } from '../src/article.js';
import { Markdown } from '../src/markdown/markdown.js';
import { SqliteArticleStore } from '../src/sqlite/article-store.js';
import { SqliteDatabase } from '../src/sqlite/database.js';
import { MAX_SEARCH_WORDS, searchTerms, SearchTokenizer } from '../src/sqlite/search-query.js';
import { CJK_SAMPLE, seedArticles, WORST_PREFIX, wordOfRank } from './support/articles.js';
import { summarize, type Summary } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 6. The app itself: the store's queries on a 10,000-article database, in
 * process (better-sqlite3, no network, no HTTP): an article page's query, the
 * home page's (first and a later page), searches from a common word to a rare
 * one, prefixes and CJK words, and the Markdown of an article page.
 */

export interface QueryRow {
  readonly name: string;
  /** Articles the query matched (searches), for context. */
  readonly hits?: number;
  readonly latency: Summary;
}

export interface AppQueriesResult {
  readonly articles: number;
  readonly wordsPerArticle: number;
  readonly iterations: number;
  readonly maxSecondsPerQuery: number;
  readonly rows: readonly QueryRow[];
}

export async function benchAppQueries(mode: BenchMode): Promise<AppQueriesResult> {
  const articles = 10_000;
  const wordsPerArticle = 300;
  const iterations = mode.quick ? 200 : 5_000;
  /** A slow query stops early: the common-word search would otherwise take a minute. */
  const maxSecondsPerQuery = mode.quick ? 0.5 : 5;
  const dir = mkdtempSync(join(tmpdir(), 'bench-queries-'));
  try {
    const path = join(dir, 'app.db');
    const started = performance.now();
    seedArticles(path, articles, { words: wordsPerArticle });
    mode.log(`app: seeded ${articles} articles in ${Math.round(performance.now() - started)} ms`);
    const database = new SqliteDatabase(path, { readonly: true });
    const store = new SqliteArticleStore(database);
    const random = seededRandom(1);
    // Searches answer asynchronously (a worker thread runs them): timed to the answer, message passing included.
    const time = async (work: () => unknown): Promise<Summary> => {
      for (let i = 0; i < Math.min(100, iterations); i++) await work(); // warm the statement and page cache
      const samples: number[] = [];
      const stopAt = performance.now() + maxSecondsPerQuery * 1000;
      for (let i = 0; i < iterations && (i < 20 || performance.now() < stopAt); i++) {
        const t = performance.now();
        await work();
        samples.push(performance.now() - t);
      }
      return summarize(samples);
    };
    const count = database.handle().prepare('SELECT count(*) AS n FROM articles_fts WHERE articles_fts MATCH ?');
    const tokenizer = new SearchTokenizer();
    const hitsOf = (query: string) => (count.get(searchTerms(query, tokenizer.termsOf).match) as { n: number }).n;
    const mostCommon = Array.from({ length: MAX_SEARCH_WORDS }, (_, rank) => wordOfRank(rank)).join(' ');
    const searches = [
      { name: 'search, most common word', query: wordOfRank(0) },
      { name: 'search, a mid-frequency word (rank 100)', query: wordOfRank(100) },
      { name: 'search, a rare word (rank 3,000)', query: wordOfRank(3_000) },
      { name: 'search, two words', query: `${wordOfRank(5)} ${wordOfRank(50)}` },
      // The worst a reader may ask for (src/sqlite/search-query.ts): as many words as are searched, all common.
      { name: `search, the ${MAX_SEARCH_WORDS} most common words`, query: mostCommon },
      { name: 'search, a prefix of many common words', query: WORST_PREFIX },
      // The last word a prefix adds its completions (src/sqlite/search-statement.ts): the worst allowed now.
      {
        name: `search, the worst allowed: ${MAX_SEARCH_WORDS - 1} most common words and that prefix`,
        query: `${mostCommon.split(' ').slice(0, -1).join(' ')} ${WORST_PREFIX}`,
      },
      { name: 'search, a CJK word inside runs', query: CJK_SAMPLE },
      // Once minutes (FTS5's cost grows with the square of the words): now bounded to one word.
      { name: 'search, the most common word 300 times', query: Array(300).fill(wordOfRank(0)).join(' ') },
    ];
    const markdown = new Markdown();
    const page2 = store.list().older!;
    const rows: QueryRow[] = [
      { name: 'article page: get(id)', latency: await time(() => store.get(1 + Math.floor(random() * articles))) },
      {
        name: `article page: its Markdown, cached by revision`,
        latency: await time(() => {
          const found = store.get(1);
          if (found.kind === 'found') markdown.render(found.article);
        }),
      },
      { name: `home page: list() of ${HOME_PAGE_SIZE}`, latency: await time(() => store.list()) },
      { name: 'home page: a later page (?before=)', latency: await time(() => store.list({ before: page2 })) },
    ];
    for (const { name, query } of searches) {
      // A last word searched as a prefix also matches its completions, which the count of whole words would miss: no count then.
      const prefixed = searchTerms(query, tokenizer.termsOf).prefix?.kind === 'completions' && query.endsWith(WORST_PREFIX);
      rows.push({
        name: `${name} "${query.length > 60 ? `${query.slice(0, 60)}…` : query}"`,
        hits: prefixed ? undefined : hitsOf(query),
        latency: await time(() => store.search(query)),
      });
    }
    tokenizer.close();
    await store.close();
    database.close();
    return { articles, wordsPerArticle, iterations, maxSecondsPerQuery, rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
