import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedArticles, wordOfRank } from '../../bench/support/articles.js';
import { toFtsMatch } from '../../src/sqlite/search-query.js';
import { SearchWorkers } from '../../src/sqlite/search-workers.js';

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
      const results = await Promise.all([wordOfRank(0), wordOfRank(10), wordOfRank(3_000)].map((word) => workers.search(toFtsMatch([word]), 5)));
      expect(results.map((hits) => hits.length)).toEqual([5, 5, expect.any(Number)]);
      expect(results[0]![0]!.created).toBeInstanceOf(Date);
    } finally {
      await workers.close();
    }
  });

  it('really stops a statement it gives up on: closing mid-search takes milliseconds, not the statement’s seconds', async () => {
    // Past what searchTerms() allows: 150 phrases of the most common word, seconds of FTS5 work.
    const runaway = toFtsMatch(Array(150).fill(wordOfRank(0)));
    const workers = new SearchWorkers({ path, deadlineMs: 60_000 });
    await workers.search(toFtsMatch([wordOfRank(3_000)]), 5); // the worker is up
    const search = workers.search(runaway, 50).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the statement is running
    const started = performance.now();
    await workers.close(); // resolves once the thread has exited
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await search).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/shutting down/) });
    await expect(workers.search(toFtsMatch(['x']), 5)).rejects.toMatchObject({ code: 'unavailable' });
  });
});
