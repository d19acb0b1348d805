/**
 * The read-your-writes checker on a real LiteFS cluster: a short run with the
 * layer on must find nothing, and the same kind of run with the layer off
 * under lag must find violations (the proof that the checker can fail).
 * Either way its sessions sign in (the run's author made through `/setup`
 * on the fresh cluster), publish, edit and delete.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSummary } from '../../tools/checker/check.js';
import { checkerFallbacks, runCheck } from '../../tools/checker/runner.js';
import type { Cluster } from '../../tools/cluster/cluster.js';
import { DEFAULT_REGIONS } from '../../tools/cluster/cluster.js';
import { clusterTierAvailability, startTestCluster, WAIT_MS } from './harness.js';

const tier = clusterTierAvailability();
/** Seconds of sessions under the nemesis: long enough for several lags and a cut. */
const RUN_S = 20;
/** A busy 2-core machine shared with other test runs can stall a request; 5 s waits (LiteFS's proxy) still fail. */
const MARGIN_MS = 2_000;
const SEED = 20_261_126;

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
});
