/**
 * The container tier: the cluster tier's scenarios on containers of the
 * project's own image (the app under `litefs mount`, /dev/fuse and SYS_ADMIN),
 * a Toxiproxy container on each replica's link, host networking, through
 * testcontainers. `npm run setup:docker` prepares the engine and the images.
 */
import { describe, expect, it } from 'vitest';
import { defineClusterScenarios } from '../cluster/scenarios.js';
import { APP_IMAGE, containerTierAvailability, startTestContainerCluster } from './harness.js';

const tier = await containerTierAvailability();

describe.runIf(!tier.run && process.env.CI === 'true')('container tier prerequisites (CI)', () => {
  it('has a Docker engine and the images', () => {
    expect(tier.missing, 'npm run setup:docker must run before the tests in CI').toEqual([]);
  });
});

describe.skipIf(!tier.run)('container tier', () => {
  defineClusterScenarios(`containers of ${APP_IMAGE}`, () => startTestContainerCluster());
});
