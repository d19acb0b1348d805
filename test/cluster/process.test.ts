/**
 * The cluster tier on real processes: LiteFS, Consul and Toxiproxy from
 * .tools/bin (`npm run setup:cluster`), the app run by tsx from this tree, on
 * the default Consul lease (two candidates in fra). The scenarios live in
 * ./scenarios.ts and run on containers too (test/containers/, a static lease).
 */
import { describe, expect, it } from 'vitest';
import { clusterTierAvailability, startTestCluster } from './harness.js';
import { defineClusterScenarios } from './scenarios.js';

const tier = clusterTierAvailability();

describe.runIf(!tier.run && process.env.CI === 'true')('cluster tier prerequisites (CI)', () => {
  it('has LiteFS, Consul, Toxiproxy and fusermount3 installed', () => {
    expect(tier.missing, 'bash scripts/setup-cluster.sh must run before the tests in CI').toEqual([]);
  });
});

describe.skipIf(!tier.run)('cluster tier', () => {
  defineClusterScenarios('a real LiteFS cluster (processes)', () => startTestCluster());
});
