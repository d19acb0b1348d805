import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../src/checker/random.js';
import { SqliteArticleStore, toFtsQuery } from '../src/sqlite/article-store.js';
import { SqliteDatabase } from '../src/sqlite/database.js';
import { seedArticles, wordOfRank } from './support/articles.js';
import { summarize, type Summary } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 6. The app itself: the store's queries on a 10,000-article database, in
 * process (better-sqlite3, no network, no HTTP): an article page's query, the
 * home page's, and searches from a common word to a rare one.
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
    const time = (work: () => unknown): Summary => {
      for (let i = 0; i < Math.min(100, iterations); i++) work(); // warm the statement and page cache
      const samples: number[] = [];
      const stopAt = performance.now() + maxSecondsPerQuery * 1000;
      for (let i = 0; i < iterations && (i < 20 || performance.now() < stopAt); i++) {
        const t = performance.now();
        work();
        samples.push(performance.now() - t);
      }
      return summarize(samples);
    };
    const count = database.handle().prepare('SELECT count(*) AS n FROM articles_fts WHERE articles_fts MATCH ?');
    const hitsOf = (query: string) => (count.get(toFtsQuery(query)) as { n: number }).n;
    const searches = [
      { name: 'search, most common word', query: wordOfRank(0) },
      { name: 'search, a mid-frequency word (rank 100)', query: wordOfRank(100) },
      { name: 'search, a rare word (rank 3,000)', query: wordOfRank(3_000) },
      { name: 'search, two words', query: `${wordOfRank(5)} ${wordOfRank(50)}` },
    ];
    const rows: QueryRow[] = [
      { name: 'article page: get(id)', latency: time(() => store.get(1 + Math.floor(random() * articles))) },
      { name: 'home page: list() of 50', latency: time(() => store.list()) },
      ...searches.map(({ name, query }) => ({ name: `${name} "${query}"`, hits: hitsOf(query), latency: time(() => store.search(query)) })),
    ];
    database.close();
    return { articles, wordsPerArticle, iterations, maxSecondsPerQuery, rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
