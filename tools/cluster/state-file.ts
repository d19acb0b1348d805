import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive } from './child-process.js';

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
  /** The cluster's regions and its primary's: the CLI checks a verb's target against them before calling. */
  readonly regions: readonly string[];
  readonly primaryRegion: string;
  /** Every node's instance and region (missing in a state file of an older run: one `<region>-1` each). */
  readonly instances?: readonly { readonly instance: string; readonly region: string }[];
  readonly lease?: 'static' | 'consul';
  /** Process groups started for the cluster: LiteFS nodes, Toxiproxy, Consul and its views. */
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
 * kill their groups. The group is signalled even when its leader (LiteFS,
 * Toxiproxy, Consul) is gone: a SIGKILLed LiteFS leaves the app it exec'd running in
 * its group, holding its port. That is safe because Linux never reuses a pid
 * while a group of that id still exists. Only a leader that is alive is
 * checked: a recycled pid running something else is left alone.
 */
export async function killLeftovers(state: Pick<ClusterState, 'pids'>): Promise<number[]> {
  const killed: number[] = [];
  for (const pid of state.pids) {
    if (!Number.isInteger(pid) || pid <= 1) continue; // -0 and -1 would signal far more than a group
    if (isAlive(pid)) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (!/litefs|toxiproxy-server|consul/.test(cmdline)) continue;
    }
    if (signalGroup(pid, 'SIGKILL')) killed.push(pid);
  }
  return killed;
}

/**
 * Whether the group was signalled: ESRCH (none left) is the common case, and
 * EPERM (not ours) is nothing a cleanup could fix either.
 */
function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
