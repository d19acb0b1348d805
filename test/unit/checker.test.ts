import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkHistory, distribution, formatSummary, servedAs } from '../../tools/checker/check.js';
import { HistoryWriter, readHistory, type HistoryEntry, type OpRecord, type RunMeta } from '../../tools/checker/history.js';
import { articleIdFromLocation, articleTitle, hiddenFields, listedArticleIds } from '../../tools/checker/session-client.js';

const meta: RunMeta = {
  type: 'meta',
  version: 1,
  seed: 1,
  startedAt: '2026-01-01T00:00:00.000Z',
  budgetMs: 500,
  homePageSize: 3,
  regions: ['fra', 'ewr'],
  primaryRegion: 'fra',
  rywEnabled: true,
  fallbacks: { fra: 'replay', ewr: 'replay' },
  sessions: 2,
};

let ids = 0;
const base = { type: 'op', session: 's1', region: 'ewr', method: 'GET', status: 200, decision: 'fresh', waitMs: 0, hops: ['ewr-1'], stale: false } as const;

function write(at: number, articleId: number | null, extra: Partial<OpRecord> = {}): OpRecord {
  return { ...base, id: ++ids, kind: 'write', method: 'POST', path: '/new', start: at, end: at + 20, status: articleId === null ? 502 : 303, decision: 'issued', hops: ['ewr-1', 'fra-1'], title: `t${articleId}`, articleId, ...extra };
}
function home(at: number, listed: number[], extra: Partial<OpRecord> = {}): OpRecord {
  return { ...base, id: ++ids, kind: 'read-home', path: '/', start: at, end: at + 10, listed, ...extra };
}
function article(at: number, articleId: number, title: string | null, extra: Partial<OpRecord> = {}): OpRecord {
  return { ...base, id: ++ids, kind: 'read-article', path: `/articles/${articleId}`, start: at, end: at + 10, articleId, title, ...extra };
}
function finals(articles: Record<number, string>, regions = meta.regions): HistoryEntry[] {
  return [
    ...regions.flatMap((region) =>
      Object.entries(articles).map(([id, title]): OpRecord => ({ ...base, id: ++ids, session: 'final', region, kind: 'final-read', path: `/articles/${id}`, start: 9000, end: 9001, articleId: Number(id), title, decision: 'none' })),
    ),
    { type: 'phase', time: 9002, phase: 'final-done' },
  ];
}

describe('checkHistory', () => {
  it('passes a history where every read shows the session its own saved writes', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      home(100, [1], { decision: 'waited', waitMs: 80 }),
      article(200, 1, 't1'),
      write(300, 2, { session: 's2' }),
      home(400, [2, 1], { session: 's2', hops: ['ewr-1', 'fra-1'] }),
      ...finals({ 1: 't1', 2: 't2' }),
    ]);
    expect(result.violations).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.complete).toBe(true);
    expect(result.acknowledgedWrites).toBe(2);
    expect(result.decisions).toEqual({ waited: 1, fresh: 1, replayed: 1 });
    expect(result.waits.max).toBe(80);
    expect(formatSummary(result)).toMatch(/RESULT: PASS$/);
  });

  it('flags a home page that leaves out a write the session was told was saved', () => {
    const result = checkHistory([meta, write(0, 1), write(50, 2), home(100, [1], { decision: 'none' }), ...finals({ 1: 't1', 2: 't2' })]);
    expect(result.ok).toBe(false);
    expect(result.violationsByKind['missing-own-write']).toBe(1);
    expect(result.violations[0]!.message).toMatch(/did not list article 2/);
    expect(formatSummary(result)).toMatch(/missing-own-write 1[\s\S]*RESULT: FAIL$/);
  });

  it('flags an article page that answers 404 or shows another title after the save, but not a 5xx', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      article(100, 1, null, { status: 404 }),
      article(200, 1, 'someone else'),
      article(300, 1, null, { status: 503, decision: 'unavailable' }),
      ...finals({ 1: 't1' }),
    ]);
    expect(result.violations.map((v) => v.message)).toEqual([expect.stringMatching(/answered 404/), expect.stringMatching(/showed "someone else" instead of "t1"/)]);
    expect(result.violationsByKind['missing-own-write']).toBe(2);
  });

  it('does not require a write the read was sent before the 303 arrived (concurrent)', () => {
    const w = write(0, 1); // acknowledged at 20
    const result = checkHistory([meta, w, home(10, []), ...finals({ 1: 't1' })]);
    expect(result.violations).toEqual([]);
  });

  it('accepts a read marked stale, and another session not seeing the write', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      home(100, [], { stale: true, decision: 'stale' }),
      article(150, 1, null, { status: 200, stale: true }),
      home(200, [], { session: 's2' }),
      ...finals({ 1: 't1' }),
    ]);
    expect(result.violations).toEqual([]);
    expect(result.decisions.stale).toBe(2);
  });

  it('lets a write fall off a full home page of newer articles, not off a page with room', () => {
    const history = [meta, write(0, 1), write(30, 2, { session: 's2' }), write(60, 3, { session: 's2' }), write(90, 4, { session: 's2' })];
    const all = finals({ 1: 't1', 2: 't2', 3: 't3', 4: 't4' });
    expect(checkHistory([...history, home(200, [4, 3, 2]), ...all]).violations).toEqual([]);
    expect(checkHistory([...history, home(200, [4, 3]), ...all]).violationsByKind['missing-own-write']).toBe(1);
  });

  it('does not count an unacknowledged write as saved', () => {
    const result = checkHistory([meta, write(0, null), home(100, []), ...finals({})]);
    expect(result.violations).toEqual([]);
    expect(result.unacknowledgedWrites).toBe(1);
  });

  it('flags an acknowledged write that a node does not have at the end, or has with another title', () => {
    const missing = checkHistory([meta, write(0, 1), ...finals({ 1: 't1' }, ['fra'])]);
    expect(missing.violationsByKind['lost-write']).toBe(1);
    expect(missing.violations[0]!.message).toMatch(/never read back on ewr/);
    const wrong = checkHistory([meta, write(0, 1), ...finals({ 1: 'other' })]);
    expect(wrong.violationsByKind['lost-write']).toBe(2);
  });

  it('flags requests past the budget plus the margin, by round trip or by the app’s own reported wait', () => {
    const result = checkHistory(
      [meta, write(0, 1), home(100, [1], { end: 100 + 500 + 251 }), home(1000, [1], { waitMs: 800 }), home(2000, [1], { end: 2000 + 700 }), ...finals({ 1: 't1' })],
      { marginMs: 250 },
    );
    expect(result.violationsByKind['over-budget']).toBe(2);
  });

  it('is not ok without its final reads: lost writes were never checked', () => {
    const result = checkHistory([meta, write(0, 1), home(100, [1])]);
    expect(result.violations).toEqual([]);
    expect(result.complete).toBe(false);
    expect(result.ok).toBe(false);
    expect(formatSummary(result)).toMatch(/INCOMPLETE/);
  });

  it('refuses a list that is not a history', () => {
    expect(() => checkHistory([])).toThrow(/no meta/);
  });
});

describe('servedAs and distribution', () => {
  it('names a read by how a reader got it', () => {
    expect(servedAs(home(0, [], { hops: ['ewr-1', 'fra-1'] }))).toBe('replayed');
    expect(servedAs(home(0, [], { status: null }))).toBe('error');
    expect(servedAs(home(0, [], { stale: true }))).toBe('stale');
    expect(servedAs(home(0, [], { decision: 'waited' }))).toBe('waited');
  });

  it('takes nearest-rank percentiles', () => {
    const d = distribution(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(d).toEqual({ count: 100, p50: 50, p90: 90, p99: 99, max: 100 });
    expect(distribution([])).toEqual({ count: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });
});

describe('history files', () => {
  it('round-trips entries and ignores a torn last line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'checker-'));
    try {
      const path = join(dir, 'h.jsonl');
      const writer = new HistoryWriter(path);
      writer.append(meta);
      writer.append(write(0, 1));
      await writer.close();
      appendFileSync(path, '{"type":"op","id":');
      expect(readHistory(path)).toEqual(writer.entries);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('page parsing', () => {
  it('reads the app’s pages as the checker needs them', () => {
    expect(listedArticleIds('<nav><a href="/articles/9">x</a></nav><ol class="articles"><li><a href="/articles/3">a</a></li><li><a href="/articles/2">b</a></li></ol>')).toEqual([3, 2]);
    expect(articleTitle('<article>\n  <h1>Tom &amp; Jerry &lt;3</h1>')).toBe('Tom & Jerry <3');
    expect(articleTitle('<h1>Articles</h1>')).toBeNull();
    expect(hiddenFields('<input type="hidden" name="_csrf" value="a&amp;b"><input name="title" value="x"><input type="hidden" name="_draft" value="d1">')).toEqual({ _csrf: 'a&b', _draft: 'd1' });
    expect(articleIdFromLocation('/articles/42')).toBe(42);
    expect(articleIdFromLocation('/new')).toBeNull();
  });
});
