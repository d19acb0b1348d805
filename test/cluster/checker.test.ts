/**
 * The read-your-writes checker on a real LiteFS cluster: a short run with the
 * layer on must find nothing, and the same kind of run with the layer off
 * under lag must find violations (the proof that the checker can fail).
 * Either way its sessions sign in (the run's author made through `/setup`
 * on the fresh cluster), publish, edit and delete. Then the primary moves:
 * with `RYW_DURABILITY=standby` crashes and handoffs lose nothing, and with
 * `local` a crash while the standby is cut off loses acknowledged writes,
 * which the checker must report (the proof that it can see a lost write).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSummary } from '../../tools/checker/check.js';
import { checkerFallbacks, runCheck } from '../../tools/checker/runner.js';
import { DEFAULT_FAILOVER_LAG_MAX_MS } from '../../tools/checker/failover-nemesis.js';
import type { Cluster } from '../../tools/cluster/cluster.js';
import { DEFAULT_REGIONS } from '../../tools/cluster/cluster.js';
import { clusterTierAvailability, startTestCluster, WAIT_MS } from './harness.js';

const tier = clusterTierAvailability();
/** Seconds of sessions under the nemesis: long enough for several lags and a cut. */
const RUN_S = 20;
/** A busy 2-core machine shared with other test runs can stall a request; 5 s waits (LiteFS's proxy) still fail. */
const MARGIN_MS = 2_000;
const SEED = 20_261_126;
/** Seconds of the failover run: a handoff, then a crash past a quarter of it, the node back a few seconds later, more moves. */
const FAILOVER_RUN_S = 24;
/**
 * The failover run's own bound. It takes about 30 s; when a node does not
 * come back, its longest path (two starts of 60 s each, the final phase's
 * waits) still ends inside this, with a summary saying why, rather than as
 * vitest's bare timeout.
 */
const FAILOVER_TEST_TIMEOUT_MS = 300_000;
/** The control: one cycle of cut, writes, kill, heal, start. */
const CONTROL_RUN_S = 12;
/** The apps' RYW_DURABILITY_WAIT_MS in the standby run. */
const DURABILITY_WAIT_MS = 1_000;

describe.runIf(!tier.run && process.env.CI === 'true')('checker prerequisites (CI)', () => {
  it('has LiteFS, Toxiproxy and fusermount3 installed', () => {
    expect(tier.missing, 'bash scripts/setup-cluster.sh must run before the tests in CI').toEqual([]);
  });
});

describe.skipIf(!tier.run)('the read-your-writes checker on a real LiteFS cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'checker-history-'));
  const fallbacks = checkerFallbacks(DEFAULT_REGIONS);
  const nodeEnv = Object.fromEntries(Object.entries(fallbacks).map(([region, fallback]) => [region, { RYW_FALLBACK: fallback }]));

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('with read-your-writes on', () => {
    let cluster: Cluster;
    beforeAll(async () => {
      cluster = await startTestCluster({ nodeEnv });
    }, 120_000);
    afterAll(async () => {
      await cluster?.stop();
    }, 60_000);

    it('finds no violation under changing lag, jitter and cuts', async () => {
      const { result } = await runCheck({
        cluster,
        durationMs: RUN_S * 1000,
        sessions: 6,
        seed: SEED,
        historyPath: join(dir, 'on.jsonl'),
        budgetMs: WAIT_MS,
        rywEnabled: true,
        fallbacks,
        marginMs: MARGIN_MS,
        nemesis: { kind: 'random', lagMaxMs: 2_000, cuts: true },
      });
      const summary = formatSummary(result);
      console.log(`checker, read-your-writes on:\n${summary}`);
      expect(result.violations, summary).toEqual([]);
      expect(result.ok, summary).toBe(true);
      // The run must have exercised the layer, not just read caught-up replicas.
      expect(result.acknowledgedWrites).toBeGreaterThan(20);
      // Every session signed in (and the author was set up first), and every kind of write was made.
      expect(result.acknowledgedByKind['sign-in'], summary).toBe(6 + 1);
      expect(result.acknowledgedByKind.edit, summary).toBeGreaterThan(3);
      expect(result.acknowledgedByKind.delete, summary).toBeGreaterThan(1);
      expect(result.nemesis.cut ?? 0).toBeGreaterThanOrEqual(1);
      const behind = (result.decisions.waited ?? 0) + (result.decisions.replayed ?? 0) + (result.decisions.stale ?? 0);
      expect(behind, summary).toBeGreaterThan(0);
    }, 120_000);
  });

  describe('with read-your-writes off (RYW_ENABLED=false)', () => {
    let cluster: Cluster;
    beforeAll(async () => {
      cluster = await startTestCluster({ nodeEnv, env: { RYW_ENABLED: 'false' } });
    }, 120_000);
    afterAll(async () => {
      await cluster?.stop();
    }, 60_000);

    it('finds readers missing their own writes under lag, and still no lost write', async () => {
      const { result } = await runCheck({
        cluster,
        durationMs: 8_000,
        sessions: 4,
        seed: SEED,
        historyPath: join(dir, 'off.jsonl'),
        budgetMs: WAIT_MS,
        rywEnabled: false,
        fallbacks,
        marginMs: MARGIN_MS,
        nemesis: { kind: 'fixed-lag', lagMs: 1_000 },
        sessionRegions: DEFAULT_REGIONS.slice(1),
      });
      const summary = formatSummary(result);
      console.log(`checker, read-your-writes off:\n${summary}`);
      expect(result.ok).toBe(false);
      expect(result.violationsByKind['missing-own-write'], summary).toBeGreaterThan(0);
      // Edits and deletes read back through a lagging replica: the old version, the deleted article.
      expect(result.violationsByKind['older-version'], summary).toBeGreaterThan(0);
      expect(result.violationsByKind['not-gone'], summary).toBeGreaterThan(0);
      // Signed in on the primary, the replica does not know the session yet.
      expect(result.violationsByKind['signed-out'], summary).toBeGreaterThan(0);
      expect(result.violationsByKind['lost-write'], summary).toBe(0);
      expect(result.complete).toBe(true);
    }, 120_000);
  });

  describe('the primary moves, with RYW_DURABILITY=standby (Consul lease, fra-1 and fra-2 candidates)', () => {
    let cluster: Cluster;
    beforeAll(async () => {
      cluster = await startTestCluster({
        nodeEnv,
        env: { RYW_DURABILITY: 'standby', RYW_DURABILITY_WAIT_MS: String(DURABILITY_WAIT_MS) },
      });
    }, 120_000);
    afterAll(async () => {
      await cluster?.stop();
    }, 60_000);

    it(
      'loses no acknowledged write and misses none through crashes, restarts, handoffs and a lagging standby',
      async () => {
        const { result } = await runCheck({
          cluster,
          durationMs: FAILOVER_RUN_S * 1000,
          sessions: 6,
          seed: SEED,
          historyPath: join(dir, 'failover-standby.jsonl'),
          budgetMs: WAIT_MS,
          rywEnabled: true,
          fallbacks,
          marginMs: MARGIN_MS,
          nemesis: { kind: 'failover', lagMaxMs: DEFAULT_FAILOVER_LAG_MAX_MS },
          durability: 'standby',
          durabilityWaitMs: DURABILITY_WAIT_MS,
          // A move that broke or was refused is logged here, and recorded in the history and summary.
          log: (line) => console.error(`checker (failover): ${line}`),
        });
        const summary = formatSummary(result);
        console.log(`checker, failover with standby durability:\n${summary}`);
        // Every killed node came back and was read back: the primary could send it a snapshot (the app leaves no holes in the file, decision 0013), and a LiteFS that refuses its own database rejoins through the mount supervisor.
        expect(
          result.nemesisFailures.filter((f) => f.fatal),
          summary,
        ).toEqual([]);
        expect(result.unverified, summary).toEqual([]);
        expect(result.violationsByKind['lost-write'], summary).toBe(0);
        expect(result.violationsByKind['missing-own-write'], summary).toBe(0);
        expect(result.violations, summary).toEqual([]);
        expect(result.ok, summary).toBe(true);
        // The primary really moved: a handoff, a crash (nobody, then the other candidate), the crashed node back.
        expect(result.nemesis.handoff ?? 0, summary).toBeGreaterThanOrEqual(1);
        expect(result.nemesis.kill ?? 0, summary).toBeGreaterThanOrEqual(1);
        expect(result.nemesis.cut ?? 0, summary).toBeGreaterThanOrEqual(1); // one crash with the standby cut off
        expect(result.nemesis.start ?? 0, summary).toBe(result.nemesis.kill);
        const changes = result.primaryChanges;
        expect(
          changes.some((c) => c.from !== null && c.to !== null),
          summary,
        ).toBe(true); // a handoff
        expect(
          changes.some((c) => c.to === null),
          summary,
        ).toBe(true); // a crash
        expect(changes.at(-1)?.to, summary).not.toBeNull();
        // Writes went on around the moves; the ones that got no answer or a 5xx were never counted as saved.
        expect(result.acknowledgedWrites, summary).toBeGreaterThan(10);
      },
      FAILOVER_TEST_TIMEOUT_MS,
    );
  });

  describe('the control: RYW_DURABILITY=local, the standby cut off, the primary killed, the standby healed', () => {
    let cluster: Cluster;
    beforeAll(async () => {
      cluster = await startTestCluster({ nodeEnv, env: { RYW_DURABILITY: 'local' } });
    }, 120_000);
    afterAll(async () => {
      await cluster?.stop();
    }, 60_000);

    it('loses acknowledged writes, and the checker reports them as lost-write', async () => {
      const { result } = await runCheck({
        cluster,
        durationMs: CONTROL_RUN_S * 1000,
        sessions: 4,
        seed: SEED,
        historyPath: join(dir, 'failover-local.jsonl'),
        budgetMs: WAIT_MS,
        rywEnabled: true,
        fallbacks,
        marginMs: MARGIN_MS,
        nemesis: { kind: 'lose-writes', cycles: 1 },
        log: (line) => console.error(`checker (control): ${line}`),
        durability: 'local',
        // Not fra: its users may land on the cut standby, which does not know what they did there.
        sessionRegions: DEFAULT_REGIONS.slice(1),
      });
      const summary = formatSummary(result);
      console.log(`checker, the control (local durability, standby cut, primary killed):\n${summary}`);
      expect(result.complete, summary).toBe(true);
      expect(result.ok, summary).toBe(false);
      expect(result.violationsByKind['lost-write'], summary).toBeGreaterThan(0);
      expect(result.nemesis, summary).toMatchObject({ cut: 1, kill: 1, heal: 1, start: 1 });
      expect(
        result.primaryChanges.map((c) => [c.from, c.to]),
        summary,
      ).toEqual([
        ['fra-1', null],
        [null, 'fra-2'],
      ]);
    }, 120_000);
  });
});
