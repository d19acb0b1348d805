/**
 * A transaction that frees pages it allocated itself (an article's long
 * text replaced, FTS5 merging its segments) must leave LiteFS a database it
 * can still snapshot and reopen. Without `secure_delete`, SQLite never
 * writes such a page; when the same transaction grows the file past it,
 * the file has a hole that no LTX file and no running checksum knows of.
 * LiteFS then fails every snapshot (a new replica never becomes ready) and
 * refuses the file at its next start. Real LiteFS; the control does the
 * same through a connection without the app's settings.
 * (docs/decisions/0013-secure-delete.md)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteDatabase } from '../../src/sqlite/database.js';
import type { ProcessCluster } from '../../tools/cluster/process-cluster-type.js';
import { clusterTierAvailability, startTestCluster } from './harness.js';
import { CLUSTER_START_TIMEOUT_MS } from './scenarios.js';

const tier = clusterTierAvailability();

/** Pages of the blob the transaction allocates and frees again (the free list it starts from is used up first). */
const FREED_PAGES = 16;
const PAGE_SIZE = 4096;

/**
 * One transaction that takes `pages` pages (past the free list, from the end
 * of the file) for a row it deletes again, and one more for a row it keeps:
 * SQLite's "don't write" case for the freed pages, a written page after them.
 */
function freeWhatItAllocated(db: Database.Database, round: number, pages = FREED_PAGES): void {
  db.prepare('INSERT INTO probe_freed (id, b) VALUES (?, randomblob(?))').run(round, pages * PAGE_SIZE);
  db.prepare('INSERT INTO probe_kept (id, b) VALUES (?, randomblob(?))').run(round, PAGE_SIZE - 200);
  db.prepare('DELETE FROM probe_freed WHERE id = ?').run(round);
}

const createProbeTables =
  'CREATE TABLE probe_freed (id INTEGER PRIMARY KEY, b BLOB); CREATE TABLE probe_kept (id INTEGER PRIMARY KEY, b BLOB);';

describe.runIf(tier.run)('pages a transaction frees again (real LiteFS)', () => {
  let cluster: ProcessCluster;
  beforeAll(async () => {
    cluster = await startTestCluster();
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  const primary = () => cluster.node(cluster.primaryRegion);
  const databaseOn = (instance: string) => join(cluster.dir, instance, 'mnt', 'app.db');
  const logOf = (instance: string) => readFile(join(cluster.dir, instance, 'node.log'), 'utf8');
  const processNode = (instance: string) => cluster.nodes.find((n) => n.instance === instance)!;
  /** Starts `instance` afresh, as a new machine with an empty volume: it joins only once the primary has sent it a snapshot. */
  const joinAfresh = async (instance: string, timeoutMs: number) => {
    const node = processNode(instance);
    await node.stop();
    await node.wipeData();
    try {
      await node.start(node.lastOverrides, { timeoutMs });
    } catch (err) {
      await node.stop();
      throw err;
    }
  };

  it('written through the app, leave a database a new replica gets a snapshot of, and a replica reopens', async () => {
    const database = new SqliteDatabase(databaseOn(primary().instance));
    try {
      database.write((db) => db.exec(createProbeTables));
      for (let round = 1; round <= 3; round++) database.write((db) => freeWhatItAllocated(db, round));
    } finally {
      database.close();
    }
    const synced = await cluster.waitForSync(15_000);

    await joinAfresh('ewr-1', 30_000);
    expect((await cluster.node('ewr-1').waitForPosition(synced.txid, 10_000)).checksum).toBe(synced.checksum);

    // A replica that reopens its copy (its file has the same pages as the primary's): LiteFS accepts it.
    await cluster.stopNode('syd-1');
    await cluster.startNode('syd-1');
    const log = await logOf('syd-1');
    expect(log).not.toMatch(/does not match LTX post-apply checksum/);
    expect(log).not.toMatch(/moved app\.db aside/);
    expect((await cluster.node('syd-1').position())?.checksum).toBe(synced.checksum);
  }, 90_000);

  // The control, last: it leaves the primary's database in a state LiteFS cannot snapshot, until mended.
  it('written without secure_delete (SQLite’s default), leave one no new replica can join from (the fault the first test guards against), until a VACUUM on the primary mends it', async () => {
    const db = new Database(databaseOn(primary().instance));
    try {
      db.pragma('busy_timeout = 5000');
      db.pragma('secure_delete = off');
      // Past the pages the first test left on the free list (zeroed, as secure_delete does).
      db.transaction(() => freeWhatItAllocated(db, 100, FREED_PAGES * 4)).immediate();
    } finally {
      db.close();
    }
    // Sent a snapshot it is never whole: it retries, and its app never starts.
    await expect(joinAfresh('ewr-1', 8_000)).rejects.toThrow(/ewr-1: app not healthy within 8000 ms/);
    // The primary says why each time it is asked (its log may lag the node's giving up on a busy machine).
    await expect.poll(() => logOf(primary().instance), { timeout: 30_000, interval: 250 }).toMatch(/snapshot checksum mismatch/);

    // What mends a database written so before: VACUUM on the primary writes every page again.
    const mending = new Database(databaseOn(primary().instance));
    try {
      mending.pragma('busy_timeout = 5000');
      mending.pragma('secure_delete = on');
      mending.exec('VACUUM');
    } finally {
      mending.close();
    }
    const synced = await cluster.waitForSync(15_000);
    await joinAfresh('ewr-1', 30_000);
    expect((await cluster.node('ewr-1').waitForPosition(synced.txid, 10_000)).checksum).toBe(synced.checksum);
  }, 90_000);
});
