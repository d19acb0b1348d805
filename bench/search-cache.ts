import { readFileSync } from 'node:fs';
import http from 'node:http';
import { formatTxid } from '../src/ryw/position.js';
import { fakeEvents, type FakeEvents } from '../test/support/fake-events.js';
import { FakeReplicaDir, startReplicaApp, type AppProcess } from './support/app-process.js';
import { VOCABULARY_SIZE, wordOfRank } from './support/articles.js';
import { metricValue, rawGet, scrape } from './support/raw-http.js';
import { sleep, summarize, type Summary } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 9. Search pages in the page cache: memory with the cache full (distinct
 * searches, far more than fit, against the bound PAGE_CACHE_MB sets, with
 * the same run on the cache off as the control), on a replica of 1,000
 * articles (the search worker answers one at a time: 10,000 searches of a
 * larger blog take minutes); and, on 10,000 articles, the cold cost of a
 * search for a word in every article (the first after the position moved)
 * against the same search cached.
 */

/** The blog the cold cost is measured on (section 6's). */
export const SEARCH_ARTICLES = 10_000;
/** The blog the memory run searches. */
export const MEMORY_ARTICLES = 1_000;
/** The bound the memory run sets, small enough that the distinct searches overfill it many times. */
export const MEMORY_RUN_CACHE_MB = 8;
/** What a browser asks for: the cold cost includes compressing the page for the cache. */
const BROWSER_ENCODINGS = 'gzip, deflate, br, zstd';
const POSITION = 1_000n;
/** Searches in flight at once: a handful of readers, enough to keep the search worker busy. */
const CONCURRENCY = 4;

export interface MemoryRun {
  readonly cache: 'on' | 'off';
  readonly queries: number;
  readonly seconds: number;
  /** RSS (bytes) after start and a warm-up, at the end, and the peak (VmHWM). */
  readonly rssStart: number;
  readonly rssEnd: number;
  readonly rssPeak: number;
  /** page_cache_bytes as the app reports it: largest seen while filling (sampled), and at the end. */
  readonly cacheBytesMax: number | null;
  readonly cacheBytesEnd: number | null;
  readonly entries: number | null;
  readonly evictions: number | null;
  /** Sum of the bodies the app sent: how much there was to keep. */
  readonly bodyBytes: number;
}

export interface SearchCacheResult {
  /** Articles of the cold-cost blog, and of the memory run's. */
  readonly articles: number;
  readonly memoryArticles: number;
  readonly boundMb: number;
  readonly memory: readonly MemoryRun[];
  readonly word: string;
  /** First search after each move of the position (cache cold), and the same search again (a hit). */
  readonly cold: Summary;
  readonly cached: Summary;
}

function procStatus(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** The i-th distinct search: a common word (ranks 0–49) and a rarer one, so every page lists matches. */
function query(i: number): string {
  const common = wordOfRank(i % 50);
  const other = wordOfRank(50 + (Math.floor(i / 50) % (VOCABULARY_SIZE - 50)));
  return `${common} ${other}`;
}

export async function benchSearchCache(mode: BenchMode): Promise<SearchCacheResult> {
  const queries = mode.quick ? 300 : 10_000;
  const coldSamples = mode.quick ? 3 : 20;
  const started = performance.now();
  const small = new FakeReplicaDir(MEMORY_ARTICLES, POSITION);
  const dir = new FakeReplicaDir(SEARCH_ARTICLES, POSITION);
  mode.log(`search-cache: seeded ${MEMORY_ARTICLES} and ${SEARCH_ARTICLES} articles in ${Math.round(performance.now() - started)} ms`);
  let events: FakeEvents | null = null;
  let app: AppProcess | null = null;
  let position = POSITION;
  try {
    events = await fakeEvents({ isPrimary: false, hostname: 'fra-1' });
    const api = { LITEFS_API: events.url.href.replace(/\/$/, '') };
    const memory: MemoryRun[] = [];
    for (const cache of ['on', 'off'] as const) {
      app = await startReplicaApp(small, { ...api, PAGE_CACHE_MB: cache === 'on' ? String(MEMORY_RUN_CACHE_MB) : '0' });
      events.send(formatTxid(position));
      const pid = app.child.pid!;
      // Warm-up: the JIT, SQLite's page cache and the search worker, on searches the run does not repeat.
      for (let i = 0; i < 100; i++) await search(app.url, `${wordOfRank(VOCABULARY_SIZE - 1 - i)}`);
      const start = procStatus(pid);
      let next = 0;
      let bodyBytes = 0;
      let cacheBytesMax: number | null = null;
      const t0 = performance.now();
      const worker = async () => {
        while (next < queries) {
          const i = next++;
          bodyBytes += await search(app!.url, query(i));
          if (i % 500 === 499) {
            const bytes = metricValue(await scrape(app!.url), 'page_cache_bytes');
            if (bytes !== null) cacheBytesMax = Math.max(cacheBytesMax ?? 0, bytes);
          }
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const seconds = (performance.now() - t0) / 1000;
      const metrics = await scrape(app.url);
      const end = procStatus(pid);
      const cacheBytesEnd = metricValue(metrics, 'page_cache_bytes');
      memory.push({
        cache,
        queries,
        seconds,
        rssStart: start.rss,
        rssEnd: end.rss,
        rssPeak: end.peak,
        cacheBytesMax: cacheBytesEnd === null ? cacheBytesMax : Math.max(cacheBytesMax ?? 0, cacheBytesEnd),
        cacheBytesEnd,
        entries: metricValue(metrics, 'page_cache_entries'),
        evictions: metricValue(metrics, 'page_cache_evictions_total'),
        bodyBytes,
      });
      mode.log(
        `search-cache memory, cache ${cache}: ${queries} searches in ${seconds.toFixed(1)} s, RSS ${mib(start.rss)} → ${mib(end.rss)} MiB (peak ${mib(end.peak)}), page_cache_bytes ${cacheBytesEnd ?? 'n/a'}`,
      );
      await app.stop();
      app = null;
    }
    app = await startReplicaApp(dir, api);
    const found = await coldAndCached(app.url);
    return { articles: SEARCH_ARTICLES, memoryArticles: MEMORY_ARTICLES, boundMb: MEMORY_RUN_CACHE_MB, memory, ...found };
  } finally {
    await app?.stop();
    await events?.close();
    small.remove();
    dir.remove();
  }

  /** The cold cost: each move of the position makes every cached page old, so the next search is a miss. */
  async function coldAndCached(url: string): Promise<Pick<SearchCacheResult, 'word' | 'cold' | 'cached'>> {
    const word = wordOfRank(0);
    const cold: number[] = [];
    const cached: number[] = [];
    // One kept-alive connection, as a browser's: connecting is not part of either cost.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (q: string) => rawGet(`${url}/?search=${encodeURIComponent(q)}`, { 'accept-encoding': BROWSER_ENCODINGS }, agent);
    try {
      // The search worker started and SQLite's pages read once, on other words: cold means a cache miss, not a cold process.
      for (let i = 1; i <= 5; i++) await get(wordOfRank(i));
      for (let s = 0; s < coldSamples; s++) {
        position += 1n;
        dir.setPosition(position);
        events!.send(formatTxid(position));
        await waitForPosition(url, position);
        let t = performance.now();
        const first = await get(word);
        cold.push(performance.now() - t);
        if (first.status !== 200) throw new Error(`search ${word} answered ${first.status}`);
        for (let k = 0; k < 10; k++) {
          t = performance.now();
          await get(word);
          cached.push(performance.now() - t);
        }
      }
    } finally {
      agent.destroy();
    }
    return { word, cold: summarize(cold), cached: summarize(cached) };
  }
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** One search page, its body's size (bytes): every answer must be a page. */
async function search(url: string, q: string): Promise<number> {
  const res = await rawGet(`${url}/?search=${encodeURIComponent(q)}`);
  if (res.status !== 200) throw new Error(`search ${q} answered ${res.status}`);
  return res.body.length;
}

async function waitForPosition(url: string, position: bigint): Promise<void> {
  const want = formatTxid(position);
  const deadline = Date.now() + 5_000;
  for (;;) {
    const res = await rawGet(`${url}/healthz`);
    if ((JSON.parse(res.body.toString('utf8')) as { position: string | null }).position === want) return;
    if (Date.now() > deadline) throw new Error(`the replica did not reach ${want} within 5 s`);
    await sleep(5);
  }
}
