/**
 * A replicated cluster of the app as a tester drives it: nodes in regions
 * (the primary region may hold several lease candidates), an edge router in
 * front, and faults on each node's incoming replication link. Backends (real
 * processes on this machine, containers) implement this interface; the
 * cluster tests and the CLI only speak it.
 *
 * Targets: a verb that takes a "target" accepts an instance (`fra-2`) or a
 * region (`ewr`: its instances; see `node()` for the one-node verbs).
 */
import type { PosFile } from '../../src/ryw/litefs/files.js';
export { LAG_NOT_SYNCED, parseLagFile, parsePosFile } from '../../src/ryw/litefs/files.js';

export const DEFAULT_REGIONS: readonly string[] = ['fra', 'ewr', 'syd'];
/**
 * How the primary is chosen: `consul` elects it through a Consul lease (as on
 * Fly.io: it moves on a crash or a handoff); `static` fixes it (no failover).
 */
export type LeaseType = 'static' | 'consul';
export const LEASE_TYPES: readonly LeaseType[] = ['consul', 'static'];
/** What `npm run cluster` and the test tier run on. */
export const DEFAULT_LEASE: LeaseType = 'consul';
/** Lease candidates in the primary region on a Consul lease (`fra-1`, `fra-2`). */
export const DEFAULT_CANDIDATES = 2;
export const DEFAULT_BASE_PORT = 8080;
export const DEFAULT_CLUSTER_DIR = '.cluster';
/** The database file name inside each node's mount. */
export const DATABASE_NAME = 'app.db';

/** A replication position as LiteFS writes it in `<db>-pos` (the app's codec: src/ryw/litefs/files.ts). */
export type ReplicationPosition = PosFile;

/** What is injected on one node's incoming replication link (whoever is the primary). */
export interface Fault {
  readonly latencyMs: number;
  readonly jitterMs: number;
  /** Bandwidth cap in KB/s on what the replica receives; null for none. */
  readonly bandwidthKBps: number | null;
  /** Nothing gets through, both ways; the connection stays open (a partition). */
  readonly cut: boolean;
}

export const NO_FAULT: Fault = { latencyMs: 0, jitterMs: 0, bandwidthKBps: null, cut: false };

/** Environment changes for a node: a string sets the variable, undefined removes it. */
export type EnvOverrides = Readonly<Record<string, string | undefined>>;

export interface ClusterNode {
  readonly region: string;
  /** Its machine id (`FLY_MACHINE_ID`), e.g. `fra-1`. */
  readonly instance: string;
  /** Whether it may hold the primary's lease. */
  readonly candidate: boolean;
  /** Whether it holds the primary's lease now (on a static lease: always the same node). */
  readonly isPrimary: boolean;
  /** Whether it runs (started and not stopped, killed or exited): the edge sends users only to live nodes. */
  readonly live: boolean;
  /** The app, straight, without the edge. */
  readonly appUrl: string;
  /** The node's LiteFS HTTP API (`/events`, `/info`). */
  readonly litefsApiUrl: string;
  /** The node's database position, or null while the database does not exist. */
  position(): Promise<ReplicationPosition | null>;
  /** LiteFS's `.lag` in ms, or null when unknown. */
  lagMs(): Promise<number | null>;
  /** Resolves once the node has applied `txid`; rejects after `timeoutMs`. */
  waitForPosition(txid: bigint, timeoutMs: number): Promise<ReplicationPosition>;
}

export interface Cluster {
  readonly regions: readonly string[];
  /** The region of the lease candidates (the first region). */
  readonly primaryRegion: string;
  /** Every node's instance, the primary region's candidates first (`fra-1`, `fra-2`, `ewr-1`, …). */
  readonly instances: readonly string[];
  readonly lease: LeaseSettings;
  /** The edge: a region's port ("a user near it"), or without one the main port. */
  edgeUrl(region?: string): string;
  /** The app of `node(target)`, straight. */
  appUrl(target: string): string;
  /**
   * An instance by name; for a region, the primary if it is in that region,
   * else the region's first instance (so `node('fra')` is the primary
   * wherever the lease moved within fra).
   */
  node(target: string): ClusterNode;
  /**
   * Delays what the target receives from the primary by `ms` (± `jitterMs`);
   * 0 removes it. The fault stays on the node's link whoever the primary is.
   * A region means its instances but the primary; the primary itself is refused.
   */
  lag(target: string, ms: number, jitterMs?: number): Promise<void>;
  /** Caps what the target receives from the primary, in KB/s; null removes the cap. */
  bandwidth(target: string, kbps: number | null): Promise<void>;
  /** Partitions the target from the primary (its replication link only). */
  cut(target: string): Promise<void>;
  /** Removes every fault of the target, or of all nodes. */
  heal(target?: string): Promise<void>;
  /** The faults by instance, and by region where all its instances have the same. */
  faults(): Readonly<Record<string, Fault>>;
  /** Resolves once every live replica has the primary's current position. */
  waitForSync(timeoutMs: number): Promise<ReplicationPosition>;
  /**
   * Restarts one node (LiteFS and its app), keeping its data and its link's
   * faults. `env` is applied over the cluster's defaults and replaces the
   * node's previous changes: without it the node is back to the defaults.
   */
  restartNode(target: string, env?: EnvOverrides): Promise<void>;
  /** Stops one node gracefully (LiteFS and its app) until `startNode`: its machine is down. */
  stopNode(target: string): Promise<void>;
  /** Starts a node stopped by `stopNode`, keeping its data (and, without `env`, its first start's env). */
  startNode(target: string, env?: EnvOverrides): Promise<void>;
  /**
   * SIGKILLs the LiteFS and the app of an instance, of every live instance of
   * a region, or (`primary`) of the lease holder: a crash. Resolves with the
   * instances killed once they are gone. Refused (ControlInputError) when
   * nothing it names is running.
   */
  kill(target: string): Promise<readonly string[]>;
  /**
   * Brings a killed or stopped instance back with its data and first env; it
   * rejoins as a replica (or takes the lease when nobody holds it). Refused
   * when it is running.
   */
  start(instance: string): Promise<void>;
  /**
   * Hands the primary's lease to a caught-up candidate (the named one, or
   * any), as a deploy does: resolves with the new primary once it holds the
   * lease. Refused when there is no primary, no such candidate, or none that
   * has caught up.
   */
  handoff(instance?: string): Promise<string>;
  /** Resolves with the primary's instance once a live node holds the lease; rejects after `timeoutMs`. */
  waitForPrimary(timeoutMs: number): Promise<string>;
  /** Every change of the lease holder seen since the cluster started, oldest first. */
  primaryChanges(): readonly PrimaryChange[];
  /**
   * Replaces the primary's database with a new lineage, as a fresh data
   * directory (or `litefs import`) does: the primary starts over and replicas
   * re-snapshot. The cluster id is kept, so replicas reconnect.
   */
  restartPrimaryWithFreshData(): Promise<void>;
  stop(): Promise<void>;
}

/** How the cluster elects its primary, as `status` prints it. */
export type LeaseSettings =
  | { readonly type: 'static' }
  | {
      readonly type: 'consul';
      readonly consulUrl: string;
      readonly key: string;
      readonly ttlMs: number;
      readonly lockDelayMs: number;
      readonly reconnectDelayMs: number;
    };

/** One change of the lease holder: `null` is "nobody holds it". */
export interface PrimaryChange {
  /** ISO time the cluster saw it. */
  readonly at: string;
  readonly from: string | null;
  readonly to: string | null;
}

/** Describes a fault in words, for the status page and `status`; null for none. */
export function describeFault(fault: Fault): string | null {
  const parts: string[] = [];
  if (fault.cut) parts.push('cut');
  if (fault.latencyMs > 0) parts.push(`lag ${fault.latencyMs}${fault.jitterMs > 0 ? `±${fault.jitterMs}` : ''} ms`);
  if (fault.bandwidthKBps !== null) parts.push(`bandwidth ${fault.bandwidthKBps} KB/s`);
  return parts.length > 0 ? parts.join(', ') : null;
}

/**
 * The environment a node's app gets, the contract of src/config.ts: the
 * cluster's shared variables, then this node's port, database and identity.
 */
export function nodeAppEnv(
  node: { readonly region: string; readonly instance: string; readonly litefsApiUrl: string },
  appPort: number,
  databaseDir: string,
  baseEnv: Readonly<Record<string, string>>,
): Record<string, string> {
  return {
    ...baseEnv,
    PORT: String(appPort),
    DATABASE_URL: `file:${databaseDir}/${DATABASE_NAME}`,
    FLY_REGION: node.region,
    FLY_MACHINE_ID: node.instance,
    // As on Fly.io: the app then believes the edge's Fly-Client-IP (sign-in limits count per client).
    FLY_APP_NAME: 'litefs-ryw-cluster',
    LITEFS_API: node.litefsApiUrl,
  };
}
