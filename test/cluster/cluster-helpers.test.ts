/**
 * The cluster tooling's small parts that need no LiteFS: picking ports, and
 * cleaning up after a crashed run. (LiteFS's files are read with the
 * product's codecs: test/unit/litefs-files.test.ts.)
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CLUSTER_PORTS_FROM, ephemeralPortsFrom, freePorts } from '../../tools/cluster/ports.js';
import { killLeftovers } from '../../tools/cluster/state-file.js';

describe('freePorts', () => {
  it('gives distinct ports, free again once it returns', async () => {
    const ports = await freePorts(40);
    expect(new Set(ports).size).toBe(40);
    expect(ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)).toBe(true);
    const again = await freePorts(0);
    expect(again).toEqual([]);
  });

  it('gives ports below the kernel’s ephemeral range, which no outgoing connection can take before the cluster binds them', async () => {
    const ephemeral = ephemeralPortsFrom();
    if (ephemeral === null) return; // not Linux: the kernel picks, as before
    const ports = await freePorts(40);
    expect(ports.every((p) => p >= CLUSTER_PORTS_FROM && p < ephemeral)).toBe(true);
  });
});

/** Gone, or a zombie waiting for a parent that does not reap it promptly. */
async function isGone(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return stat === null || /^\d+ \(.*\) Z /.test(stat);
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isGone(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return isGone(pid);
}

describe('killLeftovers', () => {
  it('kills what is left in the group of a leader that was SIGKILLed (the app of a killed LiteFS)', async () => {
    // A group leader standing for LiteFS, with a child standing for the app it
    // exec'd; the leader prints the child's pid, then dies by SIGKILL.
    const leader = spawn('sh', ['-c', 'sleep 300 & echo $!; wait'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const childPid = await new Promise<number>((resolve, reject) => {
      leader.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
      leader.once('error', reject);
    });
    try {
      const exited = new Promise((resolve) => leader.once('exit', resolve));
      process.kill(leader.pid!, 'SIGKILL');
      await exited;
      expect(await isGone(childPid), 'the child outlives its leader').toBe(false);

      const killed = await killLeftovers({ pids: [leader.pid!] });

      expect(killed).toEqual([leader.pid]);
      expect(await waitGone(childPid, 5000)).toBe(true);
    } finally {
      try {
        process.kill(-leader.pid!, 'SIGKILL');
      } catch {
        // Gone, as it should be.
      }
    }
  });

  it('leaves a live process alone when it is not a tool the cluster starts (a recycled pid)', async () => {
    const other = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    try {
      expect(await killLeftovers({ pids: [other.pid!] })).toEqual([]);
      expect(await isGone(other.pid!)).toBe(false);
    } finally {
      other.kill('SIGKILL');
    }
  });
});
