import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcessCluster, type ProcessClusterOptions } from '../../tools/cluster/process-cluster.js';
import type { ProcessCluster } from '../../tools/cluster/process-cluster-type.js';
import { findClusterTools } from '../../tools/cluster/tools.js';
import { isAlive } from '../../tools/cluster/child-process.js';
import { unmountAllUnder } from '../../tools/cluster/mounts.js';
import { killLeftovers, readState } from '../../tools/cluster/state-file.js';

const DIR_PREFIX = 'litefs-cluster-';
/** A test cluster directory without a live owner and older than this was left by a killed run. */
const ABANDONED_AFTER_MS = 10 * 60_000;

/** The apps' wait budget in this tier: what "lagging more than the budget" is measured against. */
export const WAIT_MS = 500;

/**
 * Whether the cluster tier can run here. Prints one loud line when it cannot;
 * with CI=true a missing tool is the caller's cue to fail, never to skip.
 */
export function clusterTierAvailability(): { readonly run: boolean; readonly missing: readonly string[] } {
  const check = findClusterTools();
  if (check.ok) return { run: true, missing: [] };
  const why = `missing ${check.missing.join(', ')}; run npm run setup:cluster`;
  if (process.env.CI === 'true') console.error(`\nFAILING cluster tier (CI=true, real LiteFS + Consul + Toxiproxy): ${why}\n`);
  else console.warn(`\n${'!'.repeat(8)} SKIPPED cluster tier (real LiteFS + Consul + Toxiproxy): ${why} ${'!'.repeat(8)}\n`);
  return { run: false, missing: check.missing };
}

/**
 * A process cluster for one test file: its own temporary directory, free
 * ports for everything, and the wait budget above. On a Consul lease unless
 * `lease: 'static'` (fra-1 and fra-2 candidates, ewr-1, syd-1).
 */
export async function startTestCluster(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
  await cleanupAbandonedClusters();
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  const cluster = await startProcessCluster({
    dir,
    basePort: 0,
    ...options,
    env: { RYW_WAIT_MS: String(WAIT_MS), RYW_FALLBACK: 'replay', ...options.env },
  }).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    throw err;
  });
  const stop = cluster.stop.bind(cluster);
  return Object.assign(Object.create(cluster) as ProcessCluster, {
    async stop() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}

/** The numeric id in `/articles/<id>`. */
export function articlePath(location: string): string {
  const path = new URL(location, 'http://x').pathname;
  if (!/^\/articles\/\d+$/.test(path)) throw new Error(`not an article location: ${location}`);
  return path;
}

/**
 * A test run killed mid-way (Ctrl-C on vitest, a CI timeout) cannot stop its
 * cluster: its processes and mounts stay in its temporary directory. The next
 * run cleans up every such directory whose owner is gone.
 */
async function cleanupAbandonedClusters(): Promise<void> {
  const check = findClusterTools();
  if (!check.ok) return;
  const entries = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const entry of entries.filter((e) => e.startsWith(DIR_PREFIX))) {
    const dir = join(tmpdir(), entry);
    const state = await readState(dir);
    if (state && isAlive(state.ownerPid)) continue;
    if (!state) {
      const age =
        Date.now() -
        (await stat(dir).then(
          (s) => s.mtimeMs,
          () => 0,
        ));
      if (age < ABANDONED_AFTER_MS) continue; // maybe another run starting right now
    }
    if (state) await killLeftovers(state);
    await unmountAllUnder(check.tools.fusermount, dir).catch(() => []);
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
