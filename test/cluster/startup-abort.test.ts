/**
 * Ctrl-C while `npm run cluster` is still starting: startProcessCluster's
 * AbortSignal must stop whatever was started so far, so that no detached
 * LiteFS, app, Toxiproxy, Consul or Consul view and no FUSE mount outlives
 * it. Real LiteFS and Consul.
 */
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fuseMountsUnder, unmountAllUnder } from '../../tools/cluster/mounts.js';
import { findClusterTools } from '../../tools/cluster/tools.js';
import { startProcessCluster } from '../../tools/cluster/process-cluster.js';
import { clusterTierAvailability } from './harness.js';

const tier = clusterTierAvailability();
/** Starting three nodes takes seconds; an abort is honoured well within this. */
const ABORT_TEST_TIMEOUT_MS = 90_000;

/** Live processes (not zombies) whose command line, environment or cwd names `dir`. */
async function processesUsing(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat === '' || /^\d+ \(.*\) Z /.test(stat)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    if (cmdline.includes(dir) || environ.includes(dir) || cwd.startsWith(dir)) found.push(`${entry} ${cmdline.replaceAll('\0', ' ')}`);
  }
  return found;
}

describe.skipIf(!tier.run)('aborting a process cluster while it starts', () => {
  let dir = '';
  afterEach(async () => {
    if (!dir) return;
    // A failed test may leave its cluster behind: never leave it mounted.
    const tools = findClusterTools();
    if (tools.ok) await unmountAllUnder(tools.tools.fusermount, dir).catch(() => []);
    await rm(dir, { recursive: true, force: true });
  });

  it(
    'stops and unmounts everything when aborted while the replicas are starting',
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'litefs-abort-'));
      const controller = new AbortController();
      const lines: string[] = [];
      const starting = startProcessCluster({
        dir,
        basePort: 0,
        signal: controller.signal,
        log: (line) => {
          lines.push(line);
          if (line.startsWith('fra-1 primary')) controller.abort(new Error('Ctrl-C'));
        },
      });
      await expect(starting).rejects.toThrow('Ctrl-C');
      expect(
        lines.some((l) => l.startsWith('fra-1 primary')),
        lines.join('\n'),
      ).toBe(true);
      expect(
        lines.some((l) => l.startsWith('edge')),
        'the cluster must not have come up',
      ).toBe(false);
      expect(await fuseMountsUnder(dir)).toEqual([]);
      expect(await processesUsing(dir)).toEqual([]);
    },
    ABORT_TEST_TIMEOUT_MS,
  );

  it(
    'stops and unmounts everything when aborted while the primary is starting',
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'litefs-abort-'));
      const controller = new AbortController();
      const starting = startProcessCluster({ dir, basePort: 0, signal: controller.signal });
      const outcome = starting.then(
        () => 'started',
        (err: unknown) => err,
      );
      // Abort as soon as the primary's LiteFS runs (it then mounts and execs the app).
      const primaryConfig = join(dir, 'fra-1', 'litefs.yml');
      let seen: string[] = [];
      for (let i = 0; i < 2000 && seen.length === 0; i++) {
        seen = (await processesUsing(dir)).filter((p) => p.includes(primaryConfig));
        if (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
      }
      controller.abort(new Error('Ctrl-C'));
      const error = await outcome;
      expect(
        seen.filter((p) => / mount -config /.test(p)),
        `the primary's LiteFS never ran: ${seen.join('; ')}`,
      ).toHaveLength(1);
      expect(error).toEqual(new Error('Ctrl-C'));
      expect(await fuseMountsUnder(dir)).toEqual([]);
      expect(await processesUsing(dir)).toEqual([]);
    },
    ABORT_TEST_TIMEOUT_MS,
  );

  it('starts nothing when aborted before it begins', async () => {
    dir = await mkdtemp(join(tmpdir(), 'litefs-abort-'));
    const controller = new AbortController();
    controller.abort(new Error('Ctrl-C'));
    await expect(startProcessCluster({ dir, basePort: 0, signal: controller.signal })).rejects.toThrow('Ctrl-C');
    expect(await readdir(dir)).toEqual([]);
  });
});
