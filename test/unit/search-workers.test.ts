import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedArticles, wordOfRank } from '../../bench/support/articles.js';
import { toFtsPhrase } from '../../src/sqlite/search-query.js';
import type { SearchQuery } from '../../src/sqlite/search-statement.js';
import { SearchWorkers } from '../../src/sqlite/search-workers.js';

/** A search of whole words (no prefix), the first page. */
const query = (words: string[], limit: number): SearchQuery => ({
  phrases: words.map(toFtsPhrase),
  prefix: null,
  cursor: null,
  direction: 'before',
  limit,
});

describe('SearchWorkers', () => {
  let dir: string;
  let path: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'litefs-ryw-workers-'));
    path = join(dir, 'app.db');
    seedArticles(path, 2_000, { words: 300 });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers searches, one worker taking them in turn', async () => {
    const workers = new SearchWorkers({ path });
    try {
      const results = await Promise.all([wordOfRank(0), wordOfRank(10), wordOfRank(3_000)].map((word) => workers.search(query([word], 5))));
      expect(results.map((page) => page.hits.length)).toEqual([5, 5, expect.any(Number)]);
      expect(results.map((page) => page.more)).toEqual([true, true, expect.any(Boolean)]);
      expect(results[0]!.hits[0]!.created).toBeInstanceOf(Date);
    } finally {
      await workers.close();
    }
  });

  it('really stops a statement it gives up on: closing mid-search takes milliseconds, not the statement’s seconds', async () => {
    // Past what searchTerms() allows: 150 phrases of the most common word, seconds of FTS5 work.
    const runaway = query(Array<string>(150).fill(wordOfRank(0)), 50);
    const workers = new SearchWorkers({ path, deadlineMs: 60_000 });
    await workers.search(query([wordOfRank(3_000)], 5)); // the worker is up
    const search = workers.search(runaway).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the statement is running
    const started = performance.now();
    await workers.close(); // resolves once the thread has exited
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await search).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/shutting down/) });
    await expect(workers.search(query(['x'], 5))).rejects.toMatchObject({ code: 'unavailable' });
  });
});
