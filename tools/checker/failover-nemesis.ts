import type { Cluster } from '../cluster/cluster.js';
import { ControlInputError } from '../cluster/control-command.js';
import type { HistoryWriter, NemesisAction, NemesisErrorRecord, NemesisRecord } from './history.js';

/**
 * The nemesis that moves the primary: on a Consul lease with two or more
 * candidates it crashes the primary (SIGKILL, started again a few seconds
 * later: it rejoins as a replica), also while the standby is cut off (what
 * loses acknowledged writes with `local` durability), hands the lease off as
 * a deploy does, lags the standby's link (the candidate that is not primary: what a
 * `standby` durability waits for) and the other replicas' (below the budget:
 * their readers wait across the moves). It also records every change of the
 * lease holder in the history, as the cluster saw it.
 */

/** The cluster verbs the failover nemeses need (process clusters have them; containers run on a static lease). */
export type FailoverCluster = Pick<
  Cluster,
  | 'primaryRegion'
  | 'instances'
  | 'node'
  | 'lag'
  | 'cut'
  | 'heal'
  | 'kill'
  | 'start'
  | 'handoff'
  | 'waitForPrimary'
  | 'primaryChanges'
  | 'lease'
>;

export interface FailoverPlan {
  readonly kind: 'failover';
  /** The standby link's largest lag; small, as a write with `standby` durability waits for it. */
  readonly lagMaxMs: number;
  /**
   * The other replicas' largest lag (default DEFAULT_REPLICA_LAG_MAX_MS): below
   * the wait budget, so their readers wait for writes, and for tokens the
   * old primary issued, across the moves.
   */
  readonly replicaLagMaxMs?: number;
}

/**
 * The control that loses writes on purpose (run it with `RYW_DURABILITY=local`):
 * cut the standby's link, let acknowledged writes pile up on the primary only,
 * kill the primary, heal the standby once the dead holder's lease has expired
 * (it takes the lease without those writes), then start the old primary (it
 * rejoins the new lineage: its writes are gone). `cycles` times.
 */
export interface LoseWritesPlan {
  readonly kind: 'lose-writes';
  readonly cycles: number;
}

export const DEFAULT_FAILOVER_LAG_MAX_MS = 300;
export const DEFAULT_REPLICA_LAG_MAX_MS = 400;
/** The failover nemesis acts every FAILOVER_MIN_MS to FAILOVER_MAX_MS. */
export const FAILOVER_MIN_MS = 1_500;
export const FAILOVER_MAX_MS = 3_000;
/** A killed primary is started again this long after the kill (plus up to as much again, at random). */
export const RESTART_AFTER_MS = 2_000;
/** How long the control lets acknowledged writes pile up on the primary while the standby is cut. */
export const CUT_WRITES_MS = 2_000;
/**
 * The control's first cut comes this long into the run: the sessions' sign-ins
 * (slow on purpose: the password hash) have reached the standby by then, so
 * the sessions go on writing after the failover instead of being signed out.
 */
export const LOSE_WRITES_START_MS = 2_500;
/** How much of a failed action's error its history record keeps (the whole message, log tail and all, goes to the log). */
export const NEMESIS_ERROR_MAX_CHARS = 300;
/** Between polls of the cluster's primary changes (they go to the history with the run's clock). */
const PRIMARY_POLL_MS = 50;

interface NemesisContext {
  readonly cluster: FailoverCluster;
  readonly random: () => number;
  readonly clock: () => number;
  /** When sessions stop: no new crash after it; restarts still complete. */
  readonly deadline: number;
  readonly history: HistoryWriter;
  readonly log: (line: string) => void;
}

/** Consul lease timing: how long a crashed holder's lease outlives it (2 × TTL + lock delay). */
function leaseExpiryMs(cluster: FailoverCluster): number {
  if (cluster.lease.type !== 'consul')
    throw new Error('the failover nemesis needs a Consul lease (the primary cannot move on a static one)');
  return 2 * cluster.lease.ttlMs + cluster.lease.lockDelayMs;
}

/** The lease candidates that do not hold the lease now. */
function standbys(cluster: FailoverCluster): string[] {
  return cluster.instances.filter((i) => {
    const node = cluster.node(i);
    return node.candidate && !node.isPrimary;
  });
}

function primaryNow(cluster: FailoverCluster): string | null {
  return cluster.instances.find((i) => cluster.node(i).isPrimary && cluster.node(i).live) ?? null;
}

/**
 * Runs `action` and records it: done, or (a `nemesis-error` record, and the
 * whole error in the log) refused or failed. Resolves with whether it was
 * done. Every nemesis records its actions through this (runner.ts's random
 * one too).
 */
export async function act(
  context: Pick<NemesisContext, 'clock' | 'history' | 'log'>,
  action: NemesisAction,
  target: string | null,
  run: () => Promise<readonly string[] | string | void>,
  extra: Partial<Pick<NemesisRecord, 'lagMs' | 'jitterMs'>> = {},
): Promise<boolean> {
  try {
    const result = await run();
    const instances = typeof result === 'string' ? [result] : Array.isArray(result) ? result : undefined;
    context.history.append({
      type: 'nemesis',
      time: context.clock(),
      action,
      region: target,
      ...extra,
      ...(instances ? { instances } : {}),
    });
    return true;
  } catch (err) {
    const record = nemesisErrorRecord(context.clock(), action, target, err);
    context.history.append(record);
    context.log(
      `nemesis ${action}${target === null ? '' : ` ${target}`} ${record.outcome}: ${err instanceof Error ? err.message : String(err)}`,
    );
    return false;
  }
}

/** The history's record of an action that threw `err`: refused when the cluster said so (ControlInputError), else failed. */
export function nemesisErrorRecord(time: number, action: NemesisAction, target: string | null, err: unknown): NemesisErrorRecord {
  return {
    type: 'nemesis-error',
    time,
    action,
    target,
    outcome: err instanceof ControlInputError ? 'refused' : 'failed',
    error: errorSummary(err),
  };
}

/**
 * An error in one line of at most `max` characters: its first line, and when
 * it carries a node's log tail (a start that failed: `fra-2: litefs exited (1)
 * before the app was healthy:` and 30 lines of log, the first line ending in
 * a colon), the tail's last `ERROR:` line, the one that says why LiteFS
 * exited; with none, the tail's last line (a LiteFS that never got ready
 * says why in its last retry: `disconnected from primary with error,
 * retrying: …`).
 */
export function errorSummary(err: unknown, max = NEMESIS_ERROR_MAX_CHARS): string {
  const message = err instanceof Error ? err.message : String(err);
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const first = lines[0] ?? (err instanceof Error ? err.name : 'unknown error');
  const tail = lines.slice(1);
  const error = tail.findLast((line) => /(^|\s)ERROR:/.test(line));
  // From `ERROR:` on: what a log line has before it (a timestamp) says nothing here.
  const telling = error ? error.slice(error.indexOf('ERROR:')) : first.endsWith(':') ? tail.at(-1) : undefined;
  const text = telling ? `${first.replace(/:$/, '')}: ${telling}` : first;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Crashes, restarts, handoffs and standby lag until the deadline; every
 * run, however short, has a handoff (its first action), a crash (past a
 * quarter of it) and a crash while the standby is cut off (past half of it:
 * with `local` durability that one loses acknowledged writes). Resolves once
 * every killed node runs again.
 */
export async function runFailoverNemesis(plan: FailoverPlan, context: NemesisContext): Promise<void> {
  const { cluster, random, clock, deadline } = context;
  const expiry = leaseExpiryMs(cluster);
  const restarts: Promise<unknown>[] = [];
  let down = 0;
  let kills = 0;
  let handoffs = 0;
  let cutCrashes = 0;
  /** Kills the primary; the killed node is started again `RESTART_AFTER_MS` (up to twice that) after `restartFrom` resolves. */
  const kill = async (restartFrom: () => Promise<unknown> = async () => {}): Promise<void> => {
    let killed: readonly string[] = [];
    const done = await act(context, 'kill', null, async () => (killed = await cluster.kill('primary')));
    if (!done) return;
    kills++;
    down += killed.length;
    const after = RESTART_AFTER_MS * (1 + random());
    restarts.push(
      (async () => {
        await restartFrom();
        await sleep(after);
        for (const instance of killed) {
          // A node that did not come back (recorded, logged) gets one more try: the final reads need every node.
          if (!(await act(context, 'start', instance, () => cluster.start(instance)))) {
            await sleep(RESTART_AFTER_MS);
            await act(context, 'start', instance, () => cluster.start(instance));
          }
        }
        down -= killed.length;
      })(),
    );
  };
  const handoff = async (): Promise<void> => {
    if (await act(context, 'handoff', null, () => cluster.handoff())) handoffs++;
  };
  /**
   * The crash `standby` durability exists for: the standby cut off, writes
   * meanwhile (with `standby`, none is acknowledged), the primary killed, the
   * standby healed once the lease is free: it takes over without them.
   */
  const cutCrash = async (): Promise<void> => {
    const standby = standbys(cluster).find((i) => cluster.node(i).live);
    if (!standby || !(await act(context, 'cut', standby, () => cluster.cut(standby)))) return;
    cutCrashes++;
    await sleep(CUT_WRITES_MS);
    // Started again only once the healed standby holds the lease: back sooner, the old primary could take it itself.
    let healed: () => void = () => {};
    const tookOver = new Promise<void>((resolve) => (healed = resolve));
    await kill(() => tookOver);
    await sleep(expiry + 300);
    await act(context, 'heal', standby, () => cluster.heal(standby));
    await cluster
      .waitForPrimary(expiry + 10_000)
      .catch((err: unknown) => context.log(`after a crash with the standby cut: ${String(err)}`));
    healed();
  };
  const lagStandby = async (ms: number): Promise<void> => {
    const standby = standbys(cluster).find((i) => cluster.node(i).live);
    if (!standby) return;
    const jitterMs = Math.round(ms * 0.25 * random());
    if (ms === 0) await act(context, 'heal', standby, () => cluster.heal(standby));
    else await act(context, 'lag', standby, () => cluster.lag(standby, ms, jitterMs), { lagMs: ms, jitterMs });
  };

  const replicas = cluster.instances.filter((i) => !cluster.node(i).candidate);
  const lagReplica = async (): Promise<void> => {
    const replica = replicas[Math.floor(random() * replicas.length)];
    if (!replica) return;
    const ms = Math.round(random() * (plan.replicaLagMaxMs ?? DEFAULT_REPLICA_LAG_MAX_MS));
    const jitterMs = Math.round(ms * 0.25 * random());
    await act(context, 'lag', replica, () => cluster.lag(replica, ms, jitterMs), { lagMs: ms, jitterMs });
  };

  const start = clock();
  const span = deadline - start;
  while (clock() < deadline) {
    await sleep(FAILOVER_MIN_MS + random() * (FAILOVER_MAX_MS - FAILOVER_MIN_MS));
    if (clock() >= deadline) break;
    const elapsed = clock() - start;
    const roll = random();
    // Nothing else moves the lease while a crashed node is still away, so every kill is a clean crash failover.
    const canMove = down === 0 && primaryNow(cluster) !== null;
    // First a handoff, then (past a quarter of the run) a crash, then (past half of it) a crash with the standby cut off.
    if (canMove && handoffs === 0) await handoff();
    else if (canMove && kills === 0 && elapsed > span / 4) await kill();
    else if (canMove && cutCrashes === 0 && elapsed > span / 2) await cutCrash();
    else if (canMove && roll < 0.2) await kill();
    else if (canMove && roll < 0.25) await cutCrash();
    else if (canMove && roll < 0.45) await handoff();
    else if (roll < 0.6) await lagReplica();
    else if (roll < 0.9) await lagStandby(Math.round(random() * plan.lagMaxMs));
    else await lagStandby(0);
  }
  await Promise.all(restarts);
}

/** The control: cut the standby, write, kill the primary, heal the standby after the lease expired, start the old primary. */
export async function runLoseWritesNemesis(plan: LoseWritesPlan, context: NemesisContext): Promise<void> {
  const { cluster, clock, deadline } = context;
  const expiry = leaseExpiryMs(cluster);
  const start = clock();
  for (let cycle = 0; cycle < plan.cycles; cycle++) {
    // Cycles spread over the run, each started early enough to end before the deadline.
    const at = start + ((deadline - start) * cycle) / plan.cycles + LOSE_WRITES_START_MS;
    await sleep(Math.max(0, at - clock()));
    const old = primaryNow(cluster);
    const standby = standbys(cluster).find((i) => cluster.node(i).live);
    if (!old || !standby) {
      context.log(`lose-writes cycle ${cycle + 1}: no primary or no live standby now; skipped`);
      continue;
    }
    if (!(await act(context, 'cut', standby, () => cluster.cut(standby)))) continue;
    await sleep(CUT_WRITES_MS);
    await act(context, 'kill', null, () => cluster.kill('primary'));
    // The dead holder's session must be gone before the standby may take the lease without the writes it never got.
    await sleep(expiry + 300);
    await act(context, 'heal', standby, () => cluster.heal(standby));
    await cluster.waitForPrimary(expiry + 10_000).catch((err: unknown) => context.log(`lose-writes: ${String(err)}`));
    await act(context, 'start', old, () => cluster.start(old));
  }
}

/**
 * Appends every change of the lease holder to the history as it is seen
 * (on the run's clock), until `stop()`; the changes before the run are not
 * the run's. `stop()` flushes the last ones.
 */
export function watchPrimaryChanges(
  cluster: Pick<Cluster, 'primaryChanges'>,
  clock: () => number,
  history: HistoryWriter,
): { stop(): void } {
  const wallAtZero = Date.now() - clock();
  let seen = cluster.primaryChanges().length;
  const flush = (): void => {
    const changes = cluster.primaryChanges();
    for (const change of changes.slice(seen))
      history.append({ type: 'primary', time: Date.parse(change.at) - wallAtZero, from: change.from, to: change.to });
    seen = changes.length;
  };
  const timer = setInterval(flush, PRIMARY_POLL_MS);
  return {
    stop() {
      clearInterval(timer);
      flush();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
