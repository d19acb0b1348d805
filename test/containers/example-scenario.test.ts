/**
 * A tester's own lag scenario on containers, as docs/testing-with-lag.md
 * shows it: start a cluster, inject a fault, act as a user through the edge,
 * check what that user got. Kept as a real test so that the recipe stays true.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../../tools/cluster/cluster.js';
import { Browser } from '../cluster/browser.js';
import { articlePath } from '../cluster/harness.js';
import { CLUSTER_START_TIMEOUT_MS } from '../cluster/scenarios.js';
import { signIn } from '../cluster/sign-in.js';
import { containerTierAvailability, startTestContainerCluster } from './harness.js';

const tier = await containerTierAvailability();

describe.skipIf(!tier.run)('example: an author near a slow, throttled syd', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startTestContainerCluster({ env: { RYW_WAIT_MS: '1500' } });
  }, CLUSTER_START_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('sees their own article (syd waits for it), while a reader without a token near syd does not wait', async () => {
    const author = new Browser();
    await signIn(author, cluster.edgeUrl('syd')); // writing takes an author; signing in is a write too

    await cluster.lag('syd', 400, 50);
    await cluster.bandwidth('syd', 64);

    const { location } = await author.postArticle(cluster.edgeUrl('syd'), 'Hello from syd');
    const reader = new Browser();
    const [own, other] = await Promise.all([
      author.get(`${cluster.edgeUrl('syd')}${articlePath(location)}`),
      reader.get(`${cluster.edgeUrl('syd')}/`),
    ]);

    expect(own.status).toBe(200);
    expect(own.body).toContain('Hello from syd');
    expect(own.hops).toEqual(['syd-1']); // served by syd itself, after waiting for the write
    expect(own.decision).toBe('waited');
    expect(own.ms).toBeGreaterThanOrEqual(300); // the lag, less the jitter and the post's own time

    expect(other.decision).toBe('none'); // no token: never waits
    expect(other.body).not.toContain('Hello from syd'); // syd has not got it yet

    // Once healed, syd has everything the primary has.
    await cluster.heal('syd');
    const synced = await cluster.waitForSync(10_000);
    expect((await cluster.node('syd').position())?.txid).toBe(synced.txid);
  }, 30_000);
});
