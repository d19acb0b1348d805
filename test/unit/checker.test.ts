import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ArticleLookup, ArticleStore } from '../../src/article.js';
import { checkHistory, distribution, formatSummary, outcomeOf, servedAs } from '../../tools/checker/check.js';
import { HistoryWriter, readHistory, type HistoryEntry, type OpRecord, type RunMeta } from '../../tools/checker/history.js';
import { runCheck, type CheckCluster, type CheckRunOptions, type OpWeights } from '../../tools/checker/runner.js';
import {
  articleIdFromLocation,
  articleTitle,
  deleteFormOf,
  editFormOf,
  hiddenFields,
  isSignInLocation,
  listedArticleIds,
  listedArticles,
  SessionClient,
  signedInOf,
} from '../../tools/checker/session-client.js';
import { signIn as signInAs, TOOLS_AUTHOR } from '../../tools/checker/sign-in.js';
import { FakeLiteFS } from '../support/fake-litefs.js';

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
const base = {
  type: 'op',
  session: 's1',
  region: 'ewr',
  method: 'GET',
  status: 200,
  decision: 'fresh',
  waitMs: 0,
  hops: ['ewr-1'],
  stale: false,
} as const;

function write(at: number, articleId: number | null, extra: Partial<OpRecord> = {}): OpRecord {
  return {
    ...base,
    id: ++ids,
    kind: 'write',
    method: 'POST',
    path: '/new',
    start: at,
    end: at + 20,
    status: articleId === null ? 502 : 303,
    decision: 'issued',
    hops: ['ewr-1', 'fra-1'],
    title: `t${articleId}`,
    articleId,
    ...extra,
  };
}
function home(at: number, listed: number[], extra: Partial<OpRecord> = {}): OpRecord {
  return { ...base, id: ++ids, kind: 'read-home', path: '/', start: at, end: at + 10, listed, ...extra };
}
function article(at: number, articleId: number, title: string | null, extra: Partial<OpRecord> = {}): OpRecord {
  return { ...base, id: ++ids, kind: 'read-article', path: `/articles/${articleId}`, start: at, end: at + 10, articleId, title, ...extra };
}
/** The final reads: each article's title on every node, or `null` for 410 Gone. */
function finals(articles: Record<number, string | null>, regions = meta.regions): HistoryEntry[] {
  return [
    ...regions.flatMap((region) =>
      Object.entries(articles).map(([id, title]): OpRecord => ({
        ...base,
        id: ++ids,
        session: 'final',
        region,
        kind: 'final-read',
        path: `/articles/${id}`,
        start: 9000,
        end: 9001,
        articleId: Number(id),
        title,
        status: title === null ? 410 : 200,
        decision: 'none',
      })),
    ),
    { type: 'phase', time: 9002, phase: 'final-done' },
  ];
}
/** An edit of `articleId` to `title`: acknowledged (303 back to the article) unless `extra` says otherwise. */
function edit(at: number, articleId: number, title: string, extra: Partial<OpRecord> = {}): OpRecord {
  return {
    ...base,
    id: ++ids,
    kind: 'edit',
    method: 'POST',
    path: `/articles/${articleId}`,
    start: at,
    end: at + 20,
    status: 303,
    location: `/articles/${articleId}`,
    decision: 'issued',
    hops: ['ewr-1', 'fra-1'],
    title,
    articleId,
    revision: 1,
    ...extra,
  };
}
/** A delete of `articleId`: acknowledged (303 to `/?deleted=<id>`) unless `extra` says otherwise. */
function del(at: number, articleId: number, extra: Partial<OpRecord> = {}): OpRecord {
  return {
    ...base,
    id: ++ids,
    kind: 'delete',
    method: 'POST',
    path: `/articles/${articleId}/delete`,
    start: at,
    end: at + 20,
    status: 303,
    location: `/?deleted=${articleId}`,
    decision: 'issued',
    hops: ['ewr-1', 'fra-1'],
    articleId,
    revision: 1,
    ...extra,
  };
}
function signIn(at: number, extra: Partial<OpRecord> = {}): OpRecord {
  return {
    ...base,
    id: ++ids,
    kind: 'sign-in',
    method: 'POST',
    path: '/signin',
    start: at,
    end: at + 20,
    status: 303,
    location: '/',
    decision: 'issued',
    hops: ['ewr-1', 'fra-1'],
    ...extra,
  };
}
function editForm(at: number, articleId: number, title: string | null, extra: Partial<OpRecord> = {}): OpRecord {
  return {
    ...base,
    id: ++ids,
    kind: 'read-edit-form',
    path: `/articles/${articleId}/edit`,
    start: at,
    end: at + 10,
    articleId,
    title,
    ...extra,
  };
}
function newForm(at: number, extra: Partial<OpRecord> = {}): OpRecord {
  return { ...base, id: ++ids, kind: 'read-form', path: '/new', start: at, end: at + 10, signedIn: true, ...extra };
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
    expect(result.violations.map((v) => v.message)).toEqual([
      expect.stringMatching(/answered 404/),
      expect.stringMatching(/showed "someone else" instead of "t1"/),
    ]);
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
      [
        meta,
        write(0, 1),
        home(100, [1], { end: 100 + 500 + 251 }),
        home(1000, [1], { waitMs: 800 }),
        home(2000, [1], { end: 2000 + 700 }),
        ...finals({ 1: 't1' }),
      ],
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

describe('checkHistory: edits', () => {
  it('passes reads that show the latest acknowledged version, on the page, the edit form and the home page', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      edit(100, 1, 't1 v2'),
      article(200, 1, 't1 v2', { decision: 'waited', waitMs: 50 }),
      editForm(300, 1, 't1 v2', { revision: 2 }),
      edit(400, 1, 't1 v3', { revision: 2 }),
      home(500, [1], { listedTitles: ['t1 v3'] }),
      ...finals({ 1: 't1 v3' }),
    ]);
    expect(result.violations).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.acknowledgedByKind).toMatchObject({ write: 1, edit: 2, delete: 0 });
    expect(result.acknowledgedWrites).toBe(3);
  });

  it('flags the version from before an acknowledged edit, on the article page, in the edit form and on the home page', () => {
    const shown = [article(200, 1, 't1'), editForm(300, 1, 't1', { revision: 1 }), home(400, [1], { listedTitles: ['t1'] })];
    const result = checkHistory([meta, write(0, 1), edit(100, 1, 't1 v2'), ...shown, ...finals({ 1: 't1 v2' })]);
    expect(result.violations.map((v) => [v.kind, v.op])).toEqual(shown.map((op) => ['older-version', op.id]));
    expect(result.violations[0]!.message).toMatch(
      /showed the older version "t1", \d+ ms after the session was told its edit to "t1 v2" was saved/,
    );
    expect(result.violations[2]!.message).toMatch(/listed article 1 as "t1", older than "t1 v2"/);
    expect(result.ok).toBe(false);
  });

  it('accepts either version after an edit of unknown outcome, and only the old one after a refused edit', () => {
    const unknown = checkHistory([
      meta,
      write(0, 1),
      edit(100, 1, 't1 v2', { status: null, error: 'TimeoutError' }),
      article(200, 1, 't1'),
      article(300, 1, 't1 v2'),
      ...finals({ 1: 't1 v2' }),
    ]);
    expect(unknown.violations).toEqual([]);
    expect(unknown.unknownWrites).toBe(1);
    expect(unknown.acknowledgedByKind.edit).toBe(0); // never counted as acknowledged

    // A 409 (the form was of an older revision) saved nothing: showing its text is showing what was never saved.
    const phantom = article(300, 1, 't1 v2');
    const refused = checkHistory([
      meta,
      write(0, 1),
      edit(100, 1, 't1 v2', { status: 409, location: null }),
      article(200, 1, 't1'),
      phantom,
      ...finals({ 1: 't1' }),
    ]);
    expect(refused.refusedWrites).toBe(1);
    expect(refused.violations.map((v) => [v.kind, v.op])).toEqual([['missing-own-write', phantom.id]]);
    expect(refused.violations[0]!.message).toMatch(/showed "t1 v2" instead of "t1"/);
  });

  it('does not require an edit the read was sent before the 303 arrived, but accepts it', () => {
    const e = edit(100, 1, 't1 v2'); // acknowledged at 120
    const result = checkHistory([meta, write(0, 1), e, article(110, 1, 't1'), article(115, 1, 't1 v2'), ...finals({ 1: 't1 v2' })]);
    expect(result.violations).toEqual([]);
  });

  it('owes nothing to another session reading an older version, and accepts a page marked stale', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      edit(100, 1, 't1 v2'),
      article(200, 1, 't1', { session: 's2' }),
      article(300, 1, 't1', { stale: true, decision: 'stale' }),
      ...finals({ 1: 't1 v2' }),
    ]);
    expect(result.violations).toEqual([]);
  });

  it('flags a node that ends with the version before the last acknowledged edit as a lost write', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      edit(100, 1, 't1 v2'),
      ...finals({ 1: 't1' }, ['fra']),
      ...finals({ 1: 't1 v2' }, ['ewr']),
    ]);
    expect(result.violationsByKind['lost-write']).toBe(1);
    expect(result.violations[0]!.message).toMatch(/article 1 \(acknowledged: "t1 v2"\) on fra: showed "t1"/);
  });
});

describe('checkHistory: deletes', () => {
  it('passes 410 Gone, a page marked stale and a 5xx after an acknowledged delete, and a home page without it', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      del(100, 1),
      home(200, [], { path: '/?deleted=1' }),
      article(300, 1, null, { status: 410 }),
      article(400, 1, 't1', { stale: true, decision: 'stale' }),
      article(500, 1, null, { status: 503, decision: 'unavailable' }),
      editForm(600, 1, null, { status: 410 }),
      ...finals({ 1: null }),
    ]);
    expect(result.violations).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.acknowledgedByKind.delete).toBe(1);
  });

  it('flags an edit form that still opens after an acknowledged delete', () => {
    const form = editForm(200, 1, 't1', { revision: 1 });
    const result = checkHistory([meta, write(0, 1), del(100, 1), form, ...finals({ 1: null })]);
    expect(result.violations.map((v) => [v.kind, v.op])).toEqual([['not-gone', form.id]]);
  });

  it('flags a page that shows the deleted article, a 404 instead of 410, and a home page that lists it', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      edit(50, 1, 't1 v2'),
      del(100, 1),
      article(200, 1, 't1 v2'),
      article(300, 1, null, { status: 404 }),
      home(400, [1], { listedTitles: ['t1 v2'] }),
      ...finals({ 1: null }),
    ]);
    expect(result.violations.map((v) => v.kind)).toEqual(['not-gone', 'not-gone', 'not-gone']);
    expect(result.violations[0]!.message).toMatch(/showed "t1 v2" \d+ ms after the session was told article 1 was deleted/);
    expect(result.violations[1]!.message).toMatch(/answered 404 \d+ ms after the session was told article 1 was deleted/);
    expect(result.violations[2]!.message).toMatch(/listed article 1 \(deleted \d+ ms before\)/);
  });

  it('accepts the article or 410 after a delete of unknown outcome; a delete sent elsewhere than /?deleted= is not acknowledged', () => {
    const unknown = checkHistory([
      meta,
      write(0, 1),
      del(100, 1, { status: 502, location: null }),
      article(200, 1, 't1'),
      article(300, 1, null, { status: 410 }),
      home(400, []),
      home(500, [1], { listedTitles: ['t1'] }),
      ...finals({ 1: null }),
    ]);
    expect(unknown.violations).toEqual([]);
    expect(unknown.unknownWrites).toBe(1);

    const elsewhere = del(100, 1, { location: '/signin?next=%2F' });
    expect(outcomeOf(elsewhere)).toBe('unknown');
    expect(checkHistory([meta, write(0, 1), elsewhere, article(200, 1, 't1'), ...finals({ 1: 't1' })]).violations).toEqual([]);
  });

  it('flags a node that still shows an acknowledged delete’s article at the end, and a 410 for an article never deleted', () => {
    const result = checkHistory([meta, write(0, 1), del(100, 1), write(200, 2), ...finals({ 1: 't1', 2: null })]);
    expect(result.violationsByKind['lost-write']).toBe(4);
    expect(result.violations.map((v) => v.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/article 1 \(acknowledged: deleted\) on fra: showed "t1"/),
        expect.stringMatching(/article 2 \(acknowledged: "t2"\) on ewr: answered 410 Gone/),
      ]),
    );
  });
});

describe('checkHistory: failover', () => {
  it('flags an acknowledged article whose id is acknowledged again for another publication (a failover lost it), for one session or two', () => {
    // s1's article 2 is lost with the primary; the new primary hands id 2 out again, to s2 and then (3) to s1 itself.
    const result = checkHistory([
      meta,
      write(0, 1),
      write(100, 2),
      write(200, 3, { title: 'first 3' }),
      { type: 'nemesis', time: 200, action: 'kill', region: null, instances: ['fra-1'] },
      { type: 'primary', time: 300, from: 'fra-1', to: null },
      { type: 'primary', time: 2400, from: null, to: 'fra-2' },
      write(2500, 2, { session: 's2', title: 'someone else' }),
      write(2600, 3, { title: 'second 3' }),
      ...finals({ 1: 't1', 2: 'someone else', 3: 'second 3' }),
    ]);
    expect(result.violationsByKind['lost-write']).toBe(2);
    expect(result.violations.map((v) => v.message)).toEqual([
      expect.stringMatching(
        /^article 2 \(acknowledged: "t2"\) was lost: its id was acknowledged again \d+ ms later for another publication, "someone else" \(s2 op \d+\)$/,
      ),
      expect.stringMatching(/^article 3 \(acknowledged: "first 3"\) was lost: .* "second 3"/),
    ]);
    // Each session's last publication of the id is what the final reads are held to: both are there.
    expect(result.violations.every((v) => v.session === 's1')).toBe(true);
    expect(result.primaryChanges).toEqual([
      { time: 300, from: 'fra-1', to: null },
      { time: 2400, from: null, to: 'fra-2', afterKillMs: 2200, withoutPrimaryMs: 2100 },
    ]);
    expect(formatSummary(result)).toContain(
      'primary changes: 2: 0.3 s fra-1 -> (nobody), 2.4 s (nobody) -> fra-2 (2.2 s after the kill, 2.1 s without a primary)',
    );
  });

  it('passes a failover that lost nothing, counts unknown writes by what they got, and lists a handoff', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      write(100, null, { status: null, error: 'fetch failed' }),
      write(200, null, { status: 503 }),
      write(300, null, { status: 503 }),
      { type: 'primary', time: 400, from: 'fra-1', to: 'fra-2' },
      write(500, 2),
      ...finals({ 1: 't1', 2: 't2' }),
    ]);
    expect(result.violations).toEqual([]);
    expect(result.unknownWrites).toBe(3);
    expect(result.unknownByStatus).toEqual({ 'no answer': 1, '503': 2 });
    const summary = formatSummary(result);
    expect(summary).toContain('3 of unknown outcome (503 2, no answer 1)');
    expect(summary).toContain('primary changes: 1: 0.4 s fra-1 -> fra-2\n');
  });

  it('allows a write the durability wait on top of the budget with standby durability, and not a read', () => {
    const ops = (m: RunMeta) =>
      checkHistory([m, write(0, 1, { end: 2_400 }), article(3_000, 1, 't1', { end: 4_600 }), ...finals({ 1: 't1' })], { marginMs: 1_000 });
    expect(ops(meta).violationsByKind['over-budget']).toBe(2);
    const standby = ops({ ...meta, durability: 'standby', durabilityWaitMs: 1_000 });
    expect(standby.violationsByKind['over-budget']).toBe(1);
    expect(standby.violations[0]!.message).toMatch(/^GET \/articles\/1 via ewr took 1600 ms \(budget 500 \+ margin 1000\)$/);
  });

  it('allows a write made while the primary changes the apps’ wait for one on top (a replica that knows none yet), and no other', () => {
    const failover: RunMeta = { ...meta, durability: 'standby', durabilityWaitMs: 1_000, primaryWaitMs: 2_000 };
    // The lease holder lost at 10 s, another named at 10.4 s: a write overlapping 10 s to 12.4 s may take 500 + 1000 + 1000 + 2000.
    const changes: HistoryEntry[] = [
      { type: 'primary', time: 10_000, from: 'fra-1', to: null },
      { type: 'primary', time: 10_400, from: null, to: 'fra-2' },
    ];
    const messages = (...writes: OpRecord[]) =>
      checkHistory([failover, ...changes, ...writes, ...finals({})], { marginMs: 1_000 }).violations.map((v) => v.message);
    // During the change: up to 4500 ms.
    expect(messages(write(9_500, null, { end: 13_000, status: 503 }))).toEqual([]);
    expect(messages(write(11_000, null, { end: 15_600, status: 503 }))).toEqual([
      'POST /new via ewr took 4600 ms (budget 500 + margin 1000 + primary wait 2000 + durability wait 1000)',
    ]);
    // Before it, or after the new primary had time to be known: 2500 ms, as for any write with standby durability.
    expect(messages(write(0, null, { end: 3_520, status: 503 }), write(13_000, null, { end: 16_520, status: 503 }))).toEqual([
      'POST /new via ewr took 3520 ms (budget 500 + margin 1000 + durability wait 1000)',
      'POST /new via ewr took 3520 ms (budget 500 + margin 1000 + durability wait 1000)',
    ]);
  });
});

describe('checkHistory: nodes that do not answer, and a nemesis that fails', () => {
  /** A final read of `articleId` on `region`'s node: 200 with `t<id>` unless `extra` says otherwise. */
  function finalRead(region: string, articleId: number, extra: Partial<OpRecord> = {}): OpRecord {
    return {
      ...base,
      id: ++ids,
      session: 'final',
      region,
      kind: 'final-read',
      path: `/articles/${articleId}`,
      start: 9000,
      end: 9001,
      articleId,
      title: `t${articleId}`,
      decision: 'none',
      ...extra,
    };
  }
  const noAnswer = { status: null, title: null, decision: null, hops: [], error: 'TypeError: fetch failed' } as const;

  it('calls a node that answered none of its final reads unverified, not a loser of writes, and fails the run', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      del(100, 1),
      write(200, 2),
      finalRead('ewr', 1, noAnswer),
      finalRead('ewr', 2, noAnswer),
      ...finals({ 1: null, 2: 't2' }, ['fra']),
    ]);
    expect(result.violationsByKind['lost-write']).toBe(0);
    expect(result.violations).toEqual([]);
    expect(result.unverified).toEqual([{ node: 'ewr', reads: 2, total: 2, error: 'TypeError: fetch failed' }]);
    expect(result.ok).toBe(false);
    const summary = formatSummary(result);
    expect(summary).toContain('UNVERIFIED: ewr answered none of 2 final reads (TypeError: fetch failed): its copy was not checked');
    expect(summary).not.toMatch(/lost-write \[/);
    expect(summary).toMatch(/RESULT: FAIL$/);
  });

  it('holds a 5xx on a final read as unverified too: an app that is up and not serving shows nothing of the article', () => {
    const result = checkHistory([
      meta,
      write(0, 1),
      write(100, 2),
      finalRead('ewr', 1, { status: 503, title: null }),
      finalRead('ewr', 2),
      ...finals({ 1: 't1', 2: 't2' }, ['fra']),
    ]);
    expect(result.violations).toEqual([]);
    expect(result.unverified).toEqual([{ node: 'ewr', reads: 1, total: 2, error: 'HTTP 503' }]);
    expect(result.ok).toBe(false);
    expect(formatSummary(result)).toContain(
      'UNVERIFIED: ewr answered 1 of 2 final reads with nothing to check (first: HTTP 503): those articles were not checked on it',
    );
  });

  it('still calls a 404 on a final read of an acknowledged article a lost write', () => {
    const result = checkHistory([meta, write(0, 1), finalRead('ewr', 1, { status: 404, title: null }), ...finals({ 1: 't1' }, ['fra'])]);
    expect(result.violationsByKind['lost-write']).toBe(1);
    expect(result.violations[0]!.message).toBe('article 1 (acknowledged: "t1") on ewr: answered 404');
    expect(result.unverified).toEqual([]);
    expect(result.ok).toBe(false);
  });

  it('fails a run whose nemesis could not start a node again, naming the action, the node and LiteFS’s ERROR line', () => {
    const error =
      'fra-2: litefs exited (1) before the app was healthy: ERROR: cannot open store: open databases: open database("app.db"): recover ltx: database checksum 8e0f does not match LTX post-apply checksum 77aa';
    const refusal: HistoryEntry = {
      type: 'nemesis-error',
      time: 3_000,
      action: 'handoff',
      target: null,
      outcome: 'refused',
      error: 'no primary runs now (lease held by nobody): nothing to hand off',
    };
    const history: HistoryEntry[] = [
      meta,
      write(0, 1),
      refusal,
      { type: 'nemesis', time: 10_000, action: 'kill', region: null, instances: ['fra-2'] },
      { type: 'nemesis-error', time: 14_200, action: 'start', target: 'fra-2', outcome: 'failed', error },
      ...finals({ 1: 't1' }),
    ];
    const result = checkHistory(history);
    expect(result.ok).toBe(false);
    expect(result.violations).toEqual([]);
    expect(result.nemesis).toEqual({ kill: 1 });
    expect(result.nemesisRefused).toEqual({ handoff: 1 });
    expect(result.nemesisFailures).toEqual([{ time: 14_200, action: 'start', target: 'fra-2', error, fatal: true }]);
    const summary = formatSummary(result);
    expect(summary).toContain(`nemesis: kill 1 (refused: handoff 1)\nnemesis failures: start fra-2 at 14.2 s: ${error}\n`);
    expect(summary).toMatch(/RESULT: FAIL$/);
    // A refusal alone (nothing to do right now) fails nothing.
    expect(checkHistory([meta, write(0, 1), refusal, ...finals({ 1: 't1' })]).ok).toBe(true);
  });

  it('passes a run whose failed start was followed by one that brought the node back, and lists the failure', () => {
    const history: HistoryEntry[] = [
      meta,
      write(0, 1),
      { type: 'nemesis', time: 10_000, action: 'kill', region: null, instances: ['fra-2'] },
      {
        type: 'nemesis-error',
        time: 14_200,
        action: 'start',
        target: 'fra-2',
        outcome: 'failed',
        error: 'fra-2: app not healthy within 60000 ms',
      },
      { type: 'nemesis', time: 18_000, action: 'start', region: 'fra-2' },
      {
        type: 'nemesis-error',
        time: 19_000,
        action: 'handoff',
        target: null,
        outcome: 'failed',
        error: 'handoff to fra-1: not primary within 10000 ms',
      },
      ...finals({ 1: 't1' }),
    ];
    const result = checkHistory(history);
    expect(result.nemesisFailures.map((f) => [f.action, f.fatal])).toEqual([
      ['start', false],
      ['handoff', false],
    ]);
    expect(result.ok).toBe(true);
    expect(formatSummary(result)).toContain('nemesis failures: start fra-2 at 14.2 s: fra-2: app not healthy within 60000 ms');
    // Another node's start does not bring this one back.
    const other = history.map((e) => (e.type === 'nemesis' && e.action === 'start' ? { ...e, region: 'fra-1' } : e));
    expect(checkHistory(other).ok).toBe(false);
  });
});

describe('checkHistory: signing in', () => {
  it('flags a page or a form showing the session signed out after its sign-in was acknowledged', () => {
    const toSignIn = { status: 303, signedIn: false, location: '/signin?next=%2Fnew' } as const;
    const form = newForm(150, toSignIn);
    const page = home(200, [], { signedIn: false });
    const post = write(500, null, { status: 401 });
    const result = checkHistory([
      meta,
      newForm(0, toSignIn), // before signing in: as it should be
      signIn(100),
      form,
      page,
      home(300, [], { signedIn: false, stale: true, decision: 'stale' }), // said so
      home(400, [], { signedIn: true }),
      post,
      ...finals({}),
    ]);
    expect(result.violations.map((v) => [v.kind, v.op])).toEqual([
      ['signed-out', form.id],
      ['signed-out', page.id],
      ['signed-out', post.id],
    ]);
    expect(result.violations[0]!.message).toMatch(/sent the session to sign in \(303\) \d+ ms after it was signed in/);
    expect(result.acknowledgedByKind['sign-in']).toBe(1);
  });

  it('does not count a refused or unanswered sign-in, and does not hold its password hashing against the budget', () => {
    const result = checkHistory(
      [
        meta,
        signIn(0, { status: 401 }),
        signIn(100, { status: null }),
        home(200, [], { signedIn: false }),
        signIn(300, { end: 300 + 5_000 }),
        ...finals({}),
      ],
      { marginMs: 250 },
    );
    expect(result.violations).toEqual([]);
    expect(result.acknowledgedByKind['sign-in']).toBe(1);
    // The app's own reported wait still counts.
    expect(checkHistory([meta, signIn(0, { waitMs: 900 }), ...finals({})], { marginMs: 250 }).violationsByKind['over-budget']).toBe(1);
  });
});

describe('outcomeOf', () => {
  it('acknowledges only the 303 to where the write lands; a 4xx is refused; no answer or a 5xx is unknown', () => {
    expect(outcomeOf(write(0, 1))).toBe('acknowledged');
    expect(outcomeOf(write(0, null))).toBe('unknown'); // 502
    expect(outcomeOf(write(0, null, { status: 400 }))).toBe('refused');
    expect(outcomeOf(edit(0, 1, 'x'))).toBe('acknowledged');
    expect(outcomeOf(edit(0, 1, 'x', { location: '/articles/2' }))).toBe('unknown');
    expect(outcomeOf(edit(0, 1, 'x', { status: 409 }))).toBe('refused');
    expect(outcomeOf(edit(0, 1, 'x', { status: 503 }))).toBe('unknown');
    expect(outcomeOf(del(0, 1))).toBe('acknowledged');
    expect(outcomeOf(del(0, 1, { location: '/?deleted=2' }))).toBe('unknown');
    expect(outcomeOf(del(0, 1, { status: null }))).toBe('unknown');
    expect(outcomeOf(signIn(0))).toBe('acknowledged');
    expect(outcomeOf(signIn(0, { status: 429 }))).toBe('refused');
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
    expect(
      listedArticleIds(
        '<nav><a href="/articles/9">x</a></nav><ol class="articles"><li><a href="/articles/3">a</a></li><li><a href="/articles/2">b</a></li></ol>',
      ),
    ).toEqual([3, 2]);
    expect(articleTitle('<article>\n  <h1>Tom &amp; Jerry &lt;3</h1>')).toBe('Tom & Jerry <3');
    expect(articleTitle('<article>\n  <h1 dir="auto">مرحبا &#39;x&#39;</h1>')).toBe("مرحبا 'x'");
    expect(articleTitle('<h1>Articles</h1>')).toBeNull();
    expect(
      hiddenFields(
        '<input type="hidden" name="_csrf" value="a&amp;b"><input name="title" value="x"><input type="hidden" name="_draft" value="d1">',
      ),
    ).toEqual({ _csrf: 'a&b', _draft: 'd1' });
    expect(articleIdFromLocation('/articles/42')).toBe(42);
    expect(articleIdFromLocation('/new')).toBeNull();
  });
});

/**
 * The checker's client against the blog's real pages (a standalone app in
 * this process, on 127.0.0.1): the parsers must read what the views render
 * today, and the runner's sessions must sign in, publish, edit and delete.
 */
describe('against the real app', () => {
  let fake: FakeLiteFS | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    fake?.close();
    fake = undefined;
  });

  /** A standalone app listening on 127.0.0.1; `wrapStore` as createBlog() takes it. */
  async function serve(wrapStore?: (store: ArticleStore) => ArticleStore): Promise<string> {
    fake = new FakeLiteFS({ role: 'standalone' });
    const { app } = fake.app({ region: 'fra', instance: 'fra-1', wrapStore });
    server = createServer(app);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** The one-node cluster a run needs: the app is the edge, the primary and every region. */
  const oneNode = (url: string): CheckCluster => ({
    regions: ['fra'],
    instances: ['fra-1'],
    primaryRegion: 'fra',
    edgeUrl: () => url,
    appUrl: () => url,
    node: () => ({ region: 'fra', live: true }) as ReturnType<CheckCluster['node']>,
    lag: async () => {},
    cut: async () => {},
    heal: async () => {},
    waitForSync: async () => ({ txid: 0n, checksum: '' }),
  });

  it('takes a page for signed out only when it offers to sign in (an error page that could not look the session up says neither)', () => {
    const page = (nav: string) => `<header><nav aria-label="Main"><a href="/">Articles</a>${nav}</nav></header><main>…</main>`;
    expect(signedInOf(200, page('<span class="signed-in">Signed in as <strong>Ada</strong></span>'))).toBe(true);
    expect(signedInOf(200, page('<a href="/signin">Sign in</a>'))).toBe(false);
    expect(signedInOf(503, page(''))).toBeNull();
    expect(signedInOf(503, 'The database is busy.')).toBeNull();
    expect(signedInOf(null, '')).toBeNull();
  });

  it('signs in through /setup on a fresh blog, then through /signin, and reads every page the rules need', async () => {
    const url = await serve();
    const clock = () => performance.now();
    const first = new SessionClient(clock);
    const made = await signInAs(first, url, TOOLS_AUTHOR, { setup: true });
    expect(made).toMatchObject({ ok: true, via: 'setup' });
    const second = new SessionClient(clock);
    const again = await signInAs(second, url, TOOLS_AUTHOR, { setup: true });
    expect(again).toMatchObject({ ok: true, via: 'signin' });
    expect(await signInAs(new SessionClient(clock), url, { ...TOOLS_AUTHOR, password: 'not the password at all' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/POST \/signin answered 401: That name and password do not match/),
    });
    const signedOut = await new SessionClient(clock).get(`${url}/new`);
    expect(signedOut.status).toBe(303);
    expect(isSignInLocation(signedOut.headers!.get('location'))).toBe(true);
    expect(signedInOf(200, (await new SessionClient(clock).get(`${url}/`)).body)).toBe(false);

    const form = await second.get(`${url}/new`);
    expect(signedInOf(form.status, form.body)).toBe(true);
    const title = `Tom & "Jerry" <3 it's ${Date.now()}`;
    const post = await second.postForm(`${url}/new`, { ...hiddenFields(form.body), title, content: 'Some **text**.' });
    const id = articleIdFromLocation(post.headers!.get('location'))!;
    expect(post.status).toBe(303);
    expect(articleTitle((await second.get(`${url}/articles/${id}`)).body)).toBe(title);
    expect(listedArticles((await second.get(`${url}/`)).body)).toEqual([{ id, title }]);

    const editPage = await second.get(`${url}/articles/${id}/edit`);
    expect(editFormOf(editPage.body)).toEqual({ title, revision: 1 });
    const edited = await second.postForm(`${url}/articles/${id}`, {
      ...hiddenFields(editPage.body),
      title: 'Edited',
      content: 'New text.',
    });
    expect(edited.status).toBe(303);
    expect(editFormOf((await second.get(`${url}/articles/${id}/edit`)).body)).toEqual({ title: 'Edited', revision: 2 });
    // The form of an older revision is refused: 409, nothing saved.
    const stale = await second.postForm(`${url}/articles/${id}`, { ...hiddenFields(editPage.body), title: 'Lost?', content: 'No.' });
    expect(stale.status).toBe(409);

    const confirm = await second.get(`${url}/articles/${id}/delete`);
    expect(deleteFormOf(confirm.body)).toEqual({ title: 'Edited', revision: 2 });
    const deleted = await second.postForm(`${url}/articles/${id}/delete`, hiddenFields(confirm.body));
    expect([deleted.status, deleted.headers!.get('location')]).toEqual([303, `/?deleted=${id}`]);
    expect((await second.get(`${url}/articles/${id}`)).status).toBe(410);
    expect((await second.get(`${url}/articles/${id}/edit`)).status).toBe(410);
    expect(listedArticles((await second.get(`${url}/?deleted=${id}`)).body)).toEqual([]);
    const again410 = await second.get(`${url}/articles/${id}/delete`);
    expect([again410.status, again410.headers!.get('location')]).toEqual([303, `/?deleted=${id}`]);
  });

  // Edits and deletes often, so that a short run has several of each.
  const OFTEN_CHANGED: OpWeights = { write: 2, edit: 3, delete: 2, home: 1, article: 2 };

  /** A short run with no nemesis against `cluster`, with `options` over the defaults; its history in a directory removed after. */
  const runAgainst = async (cluster: CheckCluster, options: Partial<CheckRunOptions> = {}) => {
    const dir = mkdtempSync(join(tmpdir(), 'checker-run-'));
    try {
      return await runCheck({
        cluster,
        durationMs: 1_500,
        sessions: 2,
        seed: 7,
        historyPath: join(dir, 'h.jsonl'),
        budgetMs: 500,
        rywEnabled: true,
        fallbacks: { fra: 'replay' },
        marginMs: 5_000,
        nemesis: { kind: 'none' },
        ...options,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const runOn = (url: string, seed: number, weights: OpWeights = OFTEN_CHANGED) => runAgainst(oneNode(url), { seed, weights });

  it('runs sessions that sign in, publish, edit and delete, and finds nothing on an app that shows every change at once', async () => {
    const { result, history } = await runOn(await serve(), 7);
    const summary = formatSummary(result);
    expect(result.violations, summary).toEqual([]);
    expect(result.ok, summary).toBe(true);
    expect(result.acknowledgedByKind['sign-in'], summary).toBe(3); // the author's setup, then each session
    expect(result.acknowledgedByKind.edit, summary).toBeGreaterThan(2);
    expect(result.acknowledgedByKind.delete, summary).toBeGreaterThan(1);
    const ops = history.filter((e): e is OpRecord => e.type === 'op');
    // Each session lands where a browser does after its write: the article, or the home page after a delete.
    expect(ops.some((op) => op.kind === 'read-home' && op.path.startsWith('/?deleted='))).toBe(true);
    expect(ops.filter((op) => op.kind === 'read-article' && op.status === 410).length).toBeGreaterThan(0);
  }, 20_000);

  /** A node in front of the real app at `url` that answers `answer(path, n)` to the nth read of each path, or null to pass it on. */
  async function nodeInFront(url: string, answer: (path: string, n: number) => number | null) {
    const sends = new Map<string, number>();
    const server = createServer((req, res) => {
      const n = (sends.get(req.url!) ?? 0) + 1;
      sends.set(req.url!, n);
      const status = answer(req.url!, n);
      if (status !== null) {
        res.writeHead(status).end(`answered ${status}`);
        return;
      }
      void fetch(`${url}${req.url}`).then(async (passed) => res.writeHead(passed.status).end(await passed.text()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sends, close: () => server.close() };
  }

  /** A run of publishing sessions on `url`, whose final reads of fra-2 go to `fra2Url`. */
  const runWithSecondNode = (url: string, fra2Url: string, lines: string[] = []) =>
    runAgainst(
      { ...oneNode(url), instances: ['fra-1', 'fra-2'], appUrl: (i) => (i === 'fra-2' ? fra2Url : url) },
      {
        durationMs: 2_000,
        weights: { write: 1, edit: 0, delete: 0, home: 0, article: 0 },
        finalReadRetryMs: 20,
        log: (line) => lines.push(line),
      },
    );

  it('gives up on a node that takes connections and never answers: one wait for it, not one per article, and the run says so', async () => {
    const url = await serve();
    // Accepts, reads, never answers: a node whose app is stuck.
    let requests = 0;
    const mute = createNetServer((socket) => {
      socket.on('data', (chunk) => (requests += String(chunk).match(/^GET /gm)?.length ?? 0));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const muteUrl = `http://127.0.0.1:${(mute.address() as AddressInfo).port}`;
    const lines: string[] = [];
    try {
      const cluster: CheckCluster = { ...oneNode(url), instances: ['fra-1', 'fra-2'], appUrl: (i) => (i === 'fra-2' ? muteUrl : url) };
      const { result } = await runAgainst(cluster, {
        weights: { write: 3, edit: 0, delete: 0, home: 1, article: 1 },
        finalReadTimeoutMs: 300,
        log: (line) => lines.push(line),
      });
      const summary = formatSummary(result);
      expect(result.acknowledgedByKind.write, summary).toBeGreaterThan(8); // more articles than reads in flight at once
      expect(result.ok, summary).toBe(false);
      expect(result.unverified, summary).toEqual([
        {
          node: 'fra-2',
          reads: result.acknowledgedByKind.write,
          total: result.acknowledgedByKind.write,
          error: expect.stringMatching(/^TimeoutError/),
        },
      ]);
      // At most one round of reads in flight waited for it; the rest were never sent.
      expect(requests).toBeGreaterThan(0);
      expect(requests).toBeLessThanOrEqual(8);
      expect(lines.join('\n')).toMatch(/final reads: fra-2 did not answer \/articles\/\d+ within 300 ms; its other reads are not sent/);
    } finally {
      mute.close();
    }
  }, 20_000);

  it('reads a node again while it answers with a replay (busy applying a snapshot), and does not ask a node that is down', async () => {
    const url = await serve();
    // fra-2 replays each article's first two reads to the primary (409), as a replica's app does while LiteFS holds its lock.
    const busy = await nodeInFront(url, (_path, n) => (n <= 2 ? 409 : null));
    // fra-3 is down (not live); were it asked, it would answer 500.
    const down = await nodeInFront(url, () => 500);
    const lines: string[] = [];
    try {
      const cluster: CheckCluster = {
        ...oneNode(url),
        instances: ['fra-1', 'fra-2', 'fra-3'],
        appUrl: (i) => (i === 'fra-2' ? busy.url : i === 'fra-3' ? down.url : url),
        node: (i) => ({ region: 'fra', live: i !== 'fra-3' }) as ReturnType<CheckCluster['node']>,
      };
      const { result } = await runAgainst(cluster, {
        durationMs: 1_000,
        sessions: 1,
        weights: { write: 3, edit: 0, delete: 0, home: 0, article: 1 },
        finalReadRetryMs: 50,
        log: (line) => lines.push(line),
      });
      const summary = formatSummary(result);
      const published = result.acknowledgedByKind.write;
      expect(published, summary).toBeGreaterThan(0);
      // fra-2's copy was checked after all: every article on its third send.
      expect(result.violations, summary).toEqual([]);
      expect([...busy.sends.values()]).toEqual(Array.from({ length: published }, () => 3));
      // fra-3 is down: none of its reads was sent, and the run says its copy went unchecked.
      expect(down.sends.size).toBe(0);
      expect(result.unverified, summary).toEqual([
        { node: 'fra-3', reads: published, total: published, error: 'not sent: fra-3 is not running' },
      ]);
      expect(lines.join('\n')).toContain('final reads: fra-3 is not running; its reads are not sent');
    } finally {
      busy.close();
      down.close();
    }
  }, 20_000);

  it('takes a 404 at its word (a lost write is never read again until it shows up)', async () => {
    const url = await serve();
    const forgetful = await nodeInFront(url, (_path, n) => (n === 1 ? 404 : null));
    try {
      const { result } = await runWithSecondNode(url, forgetful.url);
      const published = result.acknowledgedByKind.write;
      expect(published).toBeGreaterThan(0);
      expect([...forgetful.sends.values()]).toEqual(Array.from({ length: published }, () => 1));
      expect(result.violationsByKind['lost-write'], formatSummary(result)).toBe(published);
    } finally {
      forgetful.close();
    }
  }, 20_000);

  it('stops asking a node whose reads get no verdict, read after read: a few rounds of tries, not three per article', async () => {
    const url = await serve();
    const failing = await nodeInFront(url, () => 503);
    const lines: string[] = [];
    try {
      const { result } = await runWithSecondNode(url, failing.url, lines);
      const published = result.acknowledgedByKind.write;
      const sent = [...failing.sends.values()].reduce((a, b) => a + b, 0);
      // The rounds in flight when it gave up (8 at once), each tried 3 times, and no more.
      expect(published).toBeGreaterThan(2 * 8);
      expect(sent).toBeLessThanOrEqual(2 * 8 * 3);
      expect(result.unverified, formatSummary(result)).toEqual([{ node: 'fra-2', reads: published, total: published, error: 'HTTP 503' }]);
      expect(lines.join('\n')).toMatch(
        /final reads: 8 final reads in a row on fra-2 got no verdict in 3 sends each \(last: HTTP 503\); its other reads are not sent/,
      );
    } finally {
      failing.close();
    }
  }, 20_000);

  it('finds the older versions an app shows when its reads miss the last edit', async () => {
    // Every article's first edit is saved (its form shows the current revision), and the page it lands on shows the old title.
    const { result } = await runOn(await serve(lagBehind('edits')), 7);
    const summary = formatSummary(result);
    expect(result.ok, summary).toBe(false);
    expect(result.acknowledgedByKind.edit, summary).toBeGreaterThan(0);
    expect(result.violationsByKind['older-version'], summary).toBeGreaterThan(0);
    expect(result.violationsByKind['not-gone'], summary).toBe(0);
  }, 20_000);

  it('finds the deleted articles an app still shows when its reads miss the delete', async () => {
    // No edits, so every delete form shows the current revision and every delete is done; reads go mostly to the article changed last.
    const { result } = await runOn(await serve(lagBehind('deletes')), 7, { write: 2, edit: 0, delete: 2, home: 0, article: 4 });
    const summary = formatSummary(result);
    expect(result.ok, summary).toBe(false);
    expect(result.acknowledgedByKind.delete, summary).toBeGreaterThan(0);
    expect(result.violationsByKind['not-gone'], summary).toBeGreaterThan(0);
    expect(result.violationsByKind['older-version'], summary).toBe(0);
  }, 20_000);
});

/**
 * A store whose article reads show each article as it was before its last
 * edit, or its delete, as a replica that missed that change would; the list
 * and everything else are as stored.
 */
function lagBehind(changes: 'edits' | 'deletes'): (store: ArticleStore) => ArticleStore {
  return (store) => {
    const before = new Map<number, ArticleLookup>();
    return {
      list: (...args) => store.list(...args),
      latest: (limit) => store.latest(limit),
      index: (limit) => store.index(limit),
      search: (...args) => store.search(...args),
      create: (input) => store.create(input),
      get: (id) => before.get(id) ?? store.get(id),
      update(id, edit) {
        const was = store.get(id);
        const result = store.update(id, edit);
        if (changes === 'edits' && result.kind === 'updated') before.set(id, was);
        return result;
      },
      delete(id, revision) {
        const was = store.get(id);
        const result = store.delete(id, revision);
        if (changes === 'deletes' && result.kind === 'deleted') before.set(id, was);
        return result;
      },
    };
  };
}
