import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ClusterNode } from '../../tools/cluster/cluster.js';
import { ControlInputError } from '../../tools/cluster/control-command.js';
import { checkHistory, formatSummary } from '../../tools/checker/check.js';
import {
  errorSummary,
  nemesisErrorRecord,
  NEMESIS_ERROR_MAX_CHARS,
  runLoseWritesNemesis,
  type FailoverCluster,
} from '../../tools/checker/failover-nemesis.js';
import { HistoryWriter, type RunMeta } from '../../tools/checker/history.js';

/** What ProcessNode.start throws when LiteFS exits before the app is healthy: its first line, then the node log's tail. */
const LITEFS_EXITED = [
  'fra-1: litefs exited (1) before the app was healthy:',
  'config file read from /tmp/c/fra-1/litefs.yml',
  'Using Consul to determine primary',
  'ERROR: cannot open store: open databases: open database("app.db"): recover ltx: database checksum 8e0f does not match LTX post-apply checksum 77aa',
  '',
].join('\n');

describe('errorSummary', () => {
  it('keeps the first line and LiteFS’s ERROR line of a node’s log tail, without what a log line has before it', () => {
    expect(errorSummary(new Error(LITEFS_EXITED))).toBe(
      'fra-1: litefs exited (1) before the app was healthy: ERROR: cannot open store: open databases: open database("app.db"): recover ltx: database checksum 8e0f does not match LTX post-apply checksum 77aa',
    );
    expect(errorSummary(new Error('fra-2: app not healthy within 60000 ms:\n2026/01/01 12:00:00 ERROR: cannot init consul: refused'))).toBe(
      'fra-2: app not healthy within 60000 ms: ERROR: cannot init consul: refused',
    );
  });

  it('keeps the log tail’s last line when no line says ERROR: (a LiteFS that never got ready, retrying)', () => {
    const stuck = [
      'fra-2: app not healthy within 60000 ms:',
      'level=INFO msg="LiteFS mounted to: /tmp/c/fra-2/mnt"',
      '3A5E: existing primary found (fra-1), connecting as replica to "http://127.0.0.1:20202"',
      '3A5E: disconnected from primary with error, retrying: process ltx stream frame: position mismatch on db "app.db"',
      '',
    ].join('\n');
    expect(errorSummary(new Error(stuck))).toBe(
      'fra-2: app not healthy within 60000 ms: 3A5E: disconnected from primary with error, retrying: process ltx stream frame: position mismatch on db "app.db"',
    );
  });

  it('is the first line alone when no line says ERROR: and it carries no log tail, and at most the bound long', () => {
    expect(errorSummary(new Error('toxiproxy POST /proxies/ewr-1: 500 boom\nmore detail'))).toBe('toxiproxy POST /proxies/ewr-1: 500 boom');
    const long = errorSummary(new Error(`fra-1: litefs exited (1):\nERROR: ${'x'.repeat(1000)}`));
    expect(long).toHaveLength(NEMESIS_ERROR_MAX_CHARS);
    expect(long).toMatch(/^fra-1: litefs exited \(1\): ERROR: x+…$/);
  });

  it('tells a refusal (the cluster had nothing to do) from a failure', () => {
    const refused = nemesisErrorRecord(
      1_000,
      'handoff',
      null,
      new ControlInputError('no primary runs now (lease held by nobody): nothing to hand off'),
    );
    expect(refused).toMatchObject({ type: 'nemesis-error', outcome: 'refused', action: 'handoff', target: null });
    expect(nemesisErrorRecord(1_000, 'start', 'fra-1', new Error(LITEFS_EXITED)).outcome).toBe('failed');
  });
});

describe('the lose-writes nemesis records what it could not do', () => {
  let dir: string | undefined;
  afterEach(() => {
    vi.useRealTimers();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('puts a start that failed and a cut that was refused in the history; the check counts neither as done, and fails the run', async () => {
    vi.useFakeTimers();
    dir = mkdtempSync(join(tmpdir(), 'nemesis-failures-'));
    const history = new HistoryWriter(join(dir, 'history.jsonl'));
    const t0 = Date.now();
    const clock = () => Date.now() - t0;
    const cluster = fakeCluster({
      start: () => Promise.reject(new Error(LITEFS_EXITED)),
      // The first cycle's cut finds the standby holding the lease: refused, nothing changed; the second cycle goes ahead.
      cut: (calls) =>
        calls === 1 ? Promise.reject(new ControlInputError('fra-2 is the primary: nothing streams to it')) : Promise.resolve(),
    });
    const log: string[] = [];
    const run = runLoseWritesNemesis(
      { kind: 'lose-writes', cycles: 2 },
      { cluster, random: () => 0.5, clock, deadline: 20_000, history, log: (line) => log.push(line) },
    );
    await vi.runAllTimersAsync();
    await run;
    await history.close();

    const errors = history.entries.filter((e) => e.type === 'nemesis-error');
    expect(errors).toEqual([
      expect.objectContaining({ action: 'cut', target: 'fra-2', outcome: 'refused' }),
      expect.objectContaining({
        action: 'start',
        target: 'fra-1',
        outcome: 'failed',
        error: expect.stringMatching(/^fra-1: litefs exited \(1\) before the app was healthy: ERROR: cannot open store: /),
      }),
    ]);
    // The whole error (the log tail) still goes to the log.
    expect(log.join('\n')).toContain('Using Consul to determine primary');

    const meta: RunMeta = {
      type: 'meta',
      version: 4,
      seed: 1,
      startedAt: '2026-01-01T00:00:00.000Z',
      budgetMs: 500,
      homePageSize: 3,
      regions: ['fra'],
      instances: ['fra-1', 'fra-2'],
      primaryRegion: 'fra',
      rywEnabled: true,
      fallbacks: { fra: 'replay' },
      sessions: 0,
    };
    const result = checkHistory([meta, ...history.entries, { type: 'phase', time: 30_000, phase: 'final-done' }]);
    expect(result.nemesis).toEqual({ cut: 1, kill: 1, heal: 1 });
    expect(result.nemesisRefused).toEqual({ cut: 1 });
    expect(result.nemesisFailures).toHaveLength(1);
    expect(result.ok).toBe(false);
    const summary = formatSummary(result);
    expect(summary).toContain('nemesis: cut 1, kill 1, heal 1 (refused: cut 1)\nnemesis failures: start fra-1 at ');
    expect(summary).toContain(' s: fra-1: litefs exited (1) before the app was healthy: ERROR: cannot open store:');
    expect(summary).toMatch(/RESULT: FAIL$/);
  });
});

/** Two candidates, fra-1 primary; `kill` takes fra-1 down and `heal` makes fra-2 the primary, as the control's cycle does. */
function fakeCluster(verbs: { start: () => Promise<void>; cut: (calls: number) => Promise<void> }): FailoverCluster {
  const state = { primary: 'fra-1', down: new Set<string>() };
  let cuts = 0;
  const node = (instance: string): ClusterNode => ({
    region: 'fra',
    instance,
    candidate: true,
    isPrimary: state.primary === instance,
    live: !state.down.has(instance),
    appUrl: 'http://127.0.0.1:1',
    litefsApiUrl: 'http://127.0.0.1:1',
    position: () => Promise.resolve(null),
    lagMs: () => Promise.resolve(null),
    waitForPosition: () => Promise.reject(new Error('not in this fake')),
  });
  return {
    primaryRegion: 'fra',
    instances: ['fra-1', 'fra-2'],
    lease: { type: 'consul', consulUrl: 'http://127.0.0.1:1', key: 'k', ttlMs: 100, lockDelayMs: 100, reconnectDelayMs: 100 },
    node,
    lag: () => Promise.resolve(),
    cut: () => verbs.cut(++cuts),
    heal: () => {
      state.primary = 'fra-2';
      return Promise.resolve();
    },
    kill: () => {
      state.down.add(state.primary);
      return Promise.resolve([state.primary]);
    },
    start: verbs.start,
    handoff: () => Promise.reject(new Error('not in this fake')),
    waitForPrimary: () => Promise.resolve(state.primary),
    primaryChanges: () => [],
  } satisfies FailoverCluster;
}
