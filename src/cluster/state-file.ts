import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive, killGroup } from './child-process.js';

/** Written into the cluster directory while a cluster runs. */
export const STATE_FILE = 'cluster.json';

/**
 * What another terminal needs to find a running cluster (the control verbs),
 * and what the next run needs to clean up after a crashed one.
 */
export interface ClusterState {
  /** The process that owns the cluster (the CLI or a test worker). */
  readonly ownerPid: number;
  readonly controlUrl: string;
  readonly edgeUrl: string;
  readonly toxiproxyApi: string;
  /** Process groups started for the cluster: LiteFS nodes and Toxiproxy. */
  readonly pids: readonly number[];
}

export async function writeState(dir: string, state: ClusterState): Promise<void> {
  await writeFile(join(dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

export async function readState(dir: string): Promise<ClusterState | null> {
  try {
    return JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as ClusterState;
  } catch {
    return null;
  }
}

export async function removeState(dir: string): Promise<void> {
  await rm(join(dir, STATE_FILE), { force: true });
}

/**
 * After a crash (the owner is gone) the processes it started may live on:
 * kill their groups, but only if they are still the tools we started
 * (a recycled pid belongs to someone else and is left alone).
 */
export async function killLeftovers(state: ClusterState): Promise<number[]> {
  const killed: number[] = [];
  for (const pid of state.pids) {
    if (!isAlive(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!/litefs|toxiproxy-server/.test(cmdline)) continue;
    killGroup(pid, 'SIGKILL');
    killed.push(pid);
  }
  return killed;
}
