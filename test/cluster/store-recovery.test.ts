/**
 * A node whose LiteFS refuses its own database (the file no longer matches
 * its LTX history, as after some crashes) rejoins from the primary through
 * the mount supervisor (src/mount.ts), and keeps the refused copy aside;
 * with no other primary it is left alone. Real LiteFS on a Consul lease, with
 * `exit-on-error: false` as in the project's litefs.yml; the
 * damage is done the way LiteFS's own test of the check does it (bytes
 * changed on pages of a stopped node's database file).
 */
import { existsSync } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../tools/cluster/process-cluster-type.js';
import { QUARANTINE_DIR } from '../../src/mount/store-recovery.js';
import { Browser } from './browser.js';
import { articlePath, clusterTierAvailability, startTestCluster } from './harness.js';
import { CLUSTER_START_TIMEOUT_MS } from './scenarios.js';
import { signIn } from './sign-in.js';

const tier = clusterTierAvailability();

const dataOf = (cluster: ProcessCluster, instance: string) => join(cluster.dir, instance, 'data');
const databaseFileOf = (cluster: ProcessCluster, instance: string) => join(dataOf(cluster, instance), 'dbs', 'app.db', 'database');
const logOf = (cluster: ProcessCluster, instance: string) => readFile(join(cluster.dir, instance, 'node.log'), 'utf8');

/**
 * Flips bytes in the body of every page but the first (the header must stay
 * readable): whichever pages the last LTX file holds, LiteFS re-applies
 * those at start and finds the rest no longer add up to its checksum.
 */
async function damage(file: string): Promise<void> {
  const pageSize = 4096;
  const { size } = await stat(file);
  const handle = await open(file, 'r+');
  try {
    for (let offset = pageSize; offset + pageSize <= size; offset += pageSize)
      await handle.write(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, offset + 200);
  } finally {
    await handle.close();
  }
}

describe.runIf(tier.run)('a node whose LiteFS refuses its own database (real LiteFS, Consul lease)', () => {
  let cluster: ProcessCluster;
  beforeAll(async () => {
    // `exit-on-error: false`, as the project's litefs.yml: LiteFS prints the refusal and waits, and the supervisor must see it.
    cluster = await startTestCluster({ env: { LITEFS_RECOVERY_WAIT_MS: '3000' }, litefsExitOnError: false });
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  /** Publishes `title` as a newly signed-in author, and waits until every live node (and `on`) has it. */
  const publishedOn = async (on: string, title: string) => {
    const author = new Browser();
    await signIn(author, cluster.edgeUrl(cluster.primaryRegion));
    const { location } = await author.postArticle(cluster.edgeUrl(cluster.primaryRegion), title);
    const target = await cluster.waitForSync(15_000);
    await cluster.node(on).waitForPosition(target.txid, 10_000);
    return { author, path: articlePath(location) };
  };

  /** Stops `instance`, damages its database file, starts it again (the start resolves once its app is healthy), and returns its log. */
  const damagedAndStarted = async (instance: string): Promise<string> => {
    await cluster.stopNode(instance);
    await damage(databaseFileOf(cluster, instance));
    await cluster.startNode(instance);
    return logOf(cluster, instance);
  };

  it('rejoins from the primary, serves what was written before and after, and keeps the refused copy aside', async () => {
    const before = `Written before the damage ${Date.now()}`;
    const { author, path: first } = await publishedOn('syd-1', before);
    const log = await damagedAndStarted('syd-1');
    // LiteFS itself refused the file: the check this recovers from really ran.
    expect(log).toMatch(/cannot open store: .*does not match LTX post-apply checksum/);
    expect(log).toMatch(/moved app\.db aside to .*quarantine/);
    expect(log).toMatch(/app\.db at TXID \d+: caught up from fra-1; starting LiteFS as configured/);
    const kept = await readdir(join(dataOf(cluster, 'syd-1'), QUARANTINE_DIR));
    expect(kept).toHaveLength(1);
    expect(existsSync(join(dataOf(cluster, 'syd-1'), QUARANTINE_DIR, kept[0]!, 'database'))).toBe(true);

    const after = `Written after the recovery ${Date.now()}`;
    const second = await author.postArticle(cluster.edgeUrl(cluster.primaryRegion), after);
    const synced = await cluster.waitForSync(15_000);
    expect((await cluster.node('syd-1').position())?.checksum).toBe(synced.checksum);
    for (const [path, title] of [
      [first, before],
      [articlePath(second.location), after],
    ] as const) {
      const page = await new Browser().get(`${cluster.node('syd-1').appUrl}${path}`);
      expect(page.status, path).toBe(200);
      expect(page.body).toContain(title);
    }
  }, 90_000);

  it('a standby candidate catches up as a non-candidate first, then is a standby again: the primary it follows can hand it the lease', async () => {
    const title = `Written before the standby's damage ${Date.now()}`;
    const { path } = await publishedOn('fra-2', title);
    const log = await damagedAndStarted('fra-2');
    expect(log).toMatch(/catching up app\.db from fra-1 as a non-candidate/);
    expect(log).toMatch(/app\.db at TXID \d+: caught up from fra-1/);

    // A candidate again, with the data: the lease can go to it, and it serves what was written.
    await cluster.waitForSync(15_000);
    expect(await cluster.handoff('fra-2')).toBe('fra-2');
    const page = await new Browser().get(`${cluster.node('fra-2').appUrl}${path}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(title);
    expect(await cluster.handoff('fra-1')).toBe('fra-1');
  }, 90_000);

  it('with no other node primary, is left as it is: the node exits, the database stays where it was', async () => {
    // A transaction after fra-2's snapshot of the test above: LiteFS re-applies the last LTX file at start, and a snapshot would mend any damage.
    await publishedOn('fra-2', `Written before both candidates stop ${Date.now()}`);
    // Both candidates down: nobody can hold the lease, and fra-2 may hold the only copy.
    await cluster.stopNode('fra-1');
    await cluster.stopNode('fra-2');
    await damage(databaseFileOf(cluster, 'fra-2'));
    const copiesBefore = await readdir(join(dataOf(cluster, 'fra-2'), QUARANTINE_DIR)).catch(() => []);
    const startedAt = performance.now();
    await expect(cluster.startNode('fra-2')).rejects.toThrow(/exited \(1\) before the app was healthy/);
    // It waited for a primary (LITEFS_RECOVERY_WAIT_MS), then gave up.
    expect(performance.now() - startedAt).toBeGreaterThan(2_500);
    const log = await logOf(cluster, 'fra-2');
    expect(log).toMatch(/no other node became primary: app\.db is left as it is/);
    expect(existsSync(databaseFileOf(cluster, 'fra-2'))).toBe(true);
    expect(await readdir(join(dataOf(cluster, 'fra-2'), QUARANTINE_DIR)).catch(() => [])).toEqual(copiesBefore);
  }, 90_000);
});
