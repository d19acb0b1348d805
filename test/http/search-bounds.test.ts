import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seedArticles, wordOfRank } from '../../bench/support/articles.js';
import { MAX_SEARCH_WORDS } from '../../src/sqlite/search-query.js';
import { MAX_COMPLETIONS } from '../../src/sqlite/search-statement.js';
import { FakeLiteFS, PRIMARY_ID, serverTiming } from '../support/fake-litefs.js';
import { holdFileLock } from '../support/locks.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a search of any shape gets an answer, and is told what was left out', () => {
  let fs: FakeLiteFS;
  let app: RequestListener;
  beforeAll(() => {
    fs = new FakeLiteFS({ role: 'standalone' });
    fs.insertArticle('Replicating SQLite', 'LiteFS replicates every transaction; the primary takes the writes.');
    fs.insertArticle('Cooking pasta', 'Boil water, then the pasta.');
    app = fs.app().app;
  });
  afterAll(() => fs.close());

  it('answers 300 repeats of a common word (once minutes of frozen process) at once, searched once', async () => {
    const page = await request(app)
      .get('/')
      .query({ search: Array(300).fill('the').join(' ') })
      .expect(200);
    expect(page.text).toContain('Cooking pasta');
    expect(page.text).toMatch(/Searched for once, as they repeat a word before them[^<]*<q dir="auto">the<\/q>\./);
    expect(page.text).toMatch(/Your search was too long: only its start/);
  });

  it('answers a search with a NUL byte (once a 500: FTS5 stopped reading at it), without the NUL', async () => {
    const page = await request(app).get('/?search=repli%00cate%00').expect(200);
    expect(page.text).toContain('<mark>Replicating</mark> SQLite');
    expect(page.text).toContain('<h1>Search: <q dir="auto">replicate</q></h1>');
    expect(page.text).not.toContain('\u0000');
    await request(app).get('/?search=%00').expect(200);
  });

  it(`searches at most ${MAX_SEARCH_WORDS} words and names the ones it left out, escaped`, async () => {
    const words = ['primary', 'the', 'writes', 'takes', 'LiteFS', 'every', 'transaction', 'replicates'];
    const left = ['pasta', 'x<b>'];
    const page = await request(app)
      .get('/')
      .query({ search: [...words, ...left].join(' ') })
      .expect(200);
    expect(page.text).toContain('<mark>Replicating</mark> SQLite');
    expect(page.text).not.toContain('Cooking pasta'); // "pasta" was not searched for
    expect(page.text).toContain(
      `At most ${MAX_SEARCH_WORDS} words are searched for at once, so these were left out: <q dir="auto">pasta</q>, <q dir="auto">x</q>, <q dir="auto">b</q>.`,
    );
    expect(page.text).not.toContain('<b>');
  });

  it('names words too long to be words, and says nothing when nothing was left out', async () => {
    const page = await request(app)
      .get('/')
      .query({ search: `${'z'.repeat(60)} pasta` })
      .expect(200);
    expect(page.text).toContain(`Too long to be words, so left out: <q dir="auto">${'z'.repeat(40)}…</q>.`);
    expect(page.text).toContain('Cooking <mark>pasta</mark>');
    const plain = await request(app).get('/').query({ search: 'pasta' }).expect(200);
    expect(plain.text).not.toMatch(/left out|Searched for once|too long/);
  });
});

describe('searches never hold up the process', () => {
  let fs: FakeLiteFS;
  let unlock: (() => void) | undefined;
  let server: Server | undefined;
  beforeAll(() => {
    fs = new FakeLiteFS({ role: 'standalone' });
    // 10,000 articles of about 300 words from a Zipf-like vocabulary, in one transaction.
    seedArticles(fs.dbPath, 10_000, { words: 300 });
  });
  afterEach(() => {
    unlock?.();
    unlock = undefined;
    server?.closeAllConnections();
    server?.close();
    server = undefined;
  });
  afterAll(() => fs.close());

  /**
   * The worst search a reader may make: as many words as are searched for,
   * all of them common, the last a prefix of many common words ("ser" starts
   * 218 words of the vocabulary, ranks 5, 28, 32…), which adds
   * MAX_COMPLETIONS more phrases.
   */
  const worst = [...Array.from({ length: MAX_SEARCH_WORDS - 1 }, (_, rank) => wordOfRank(rank)), 'ser'].join(' ');

  async function listen(app: RequestListener): Promise<string> {
    server = createServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('on 10,000 articles, /healthz answers at once while the worst allowed searches run', async () => {
    const base = await listen(fs.app().app);
    const search = `${base}/?search=${encodeURIComponent(worst)}`;
    expect((await fetch(search)).status).toBe(200); // starts the worker

    // As many as may queue (MAX_QUEUED_SEARCHES): on the event loop they would hold it for ~0.5 s.
    const searches = Array.from({ length: 16 }, async () => {
      const res = await fetch(search);
      const body = await res.text();
      return { status: res.status, body, doneAt: performance.now() };
    });
    await sleep(20); // most searches have reached the app; the doneAt check below proves some were in flight
    const asked = performance.now();
    const health = await fetch(`${base}/healthz`);
    const answered = performance.now();
    const done = await Promise.all(searches);

    expect(health.status).toBe(200);
    // Fly's check gives up after 2 s; in process, these searches held it for about half a second.
    expect(answered - asked).toBeLessThan(250);
    // And health did not simply come first: searches were still running when it answered.
    expect(Math.max(...done.map((d) => d.doneAt))).toBeGreaterThan(answered);
    expect(done.map((d) => d.status)).toEqual(Array(16).fill(200));
    expect(done[0]!.body).toMatch(/<ol class="articles results">/);
  });

  it('on 10,000 articles, expands a prefix into at most MAX_COMPLETIONS words, and answers the worst allowed search in time', async () => {
    const { app } = fs.app();
    const res = await request(app).get('/').query({ search: worst }).expect(200);
    // Some of the completions of "ser" (by stem, most common first) are what the page highlights.
    const marked = new Set([...res.text.matchAll(/<mark>([^<]*)<\/mark>/g)].map((m) => m[1]!.toLowerCase()));
    const completions = [...marked].filter((word) => word.startsWith('ser'));
    expect(completions.length).toBeGreaterThan(0);
    expect(completions.length).toBeLessThanOrEqual(MAX_COMPLETIONS);
    expect(res.text).toMatch(/<a class="older" rel="next" href="\/\?search=/);
  });

  it('bounds a search of CJK runs as any other: at most 8 of them (each cut into its words), 200 characters in all', async () => {
    const { app } = fs.app();
    const run = '東京都に住んでいます毎朝電車で'; // 15 characters, cut into 9 words: one phrase
    const words = Array.from({ length: MAX_SEARCH_WORDS + 2 }, (_, i) => `${run}${String.fromCodePoint(0x4e00 + i)}`);
    const res = await request(app)
      .get('/')
      .query({ search: words.join(' ') })
      .expect(200);
    expect(res.text).toMatch(/At most 8 words are searched for at once, so these were left out/);
    expect(res.text).toMatch(/No article matches/);
    const long = await request(app)
      .get('/')
      .query({ search: `${run.repeat(3)} `.repeat(5) })
      .expect(200);
    expect(long.text).toMatch(/Your search was too long: only its start, above, was searched for/);
  });

  it('stops a search past its deadline (the worst allowed, on 10,000 articles, with 10 ms): 503, Retry-After', async () => {
    const { app } = fs.app({ search: { deadlineMs: 10 } });
    const res = await request(app).get('/').query({ search: worst }).expect(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.text).toMatch(/This search took too long and was stopped/);
    await request(app).get('/healthz').expect(200);
  });

  it('answers 503 with Retry-After when a search overruns, replaces its worker, and serves the next search', async () => {
    const { app } = fs.app({ search: { deadlineMs: 50 } });
    await request(app)
      .get('/')
      .query({ search: wordOfRank(3_000) })
      .expect(200); // the worker is up
    // Stuck for the busy timeout (100 ms), past the 50 ms deadline.
    unlock = holdFileLock(fs.dbPath);
    const started = performance.now();
    const stuck = await request(app)
      .get('/')
      .query({ search: wordOfRank(3_000) })
      .expect(503);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(stuck.headers['retry-after']).toBe('5');
    expect(stuck.text).toMatch(/This search took too long and was stopped/);
    unlock();
    const next = await request(app)
      .get('/')
      .query({ search: wordOfRank(3_000) })
      .expect(200);
    expect(next.text).toMatch(/<mark>/);
  });

  it('refuses searches beyond the queue at once (503) instead of piling them up', async () => {
    const { app } = fs.app({ search: { maxQueued: 1 } });
    await request(app)
      .get('/')
      .query({ search: wordOfRank(3_000) })
      .expect(200);
    unlock = holdFileLock(fs.dbPath); // holds the one worker for 100 ms
    const answers = await Promise.all(
      Array.from({ length: 3 }, () =>
        request(app)
          .get('/')
          .query({ search: wordOfRank(3_000) }),
      ),
    );
    expect(answers.map((res) => res.status)).toEqual([503, 503, 503]);
    expect(answers.filter((res) => /Too many searches are running right now/.test(res.text))).toHaveLength(1);
    expect(answers.filter((res) => /busy applying changes/.test(res.text))).toHaveLength(2);
  });

  it('on a locked replica, sends searches to the primary, as every read', async () => {
    const replica = new FakeLiteFS({ role: 'replica' });
    try {
      const { app } = replica.app();
      await request(app).get('/?search=anything').expect(200);
      unlock = holdFileLock(replica.dbPath);
      const res = await request(app).get('/?search=anything').expect(409);
      expect(res.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
      expect(serverTiming(res.headers['server-timing']).desc).toBe('replayed');
    } finally {
      unlock?.();
      unlock = undefined;
      replica.close();
    }
  });
});
