/**
 * A replicated cluster of the app as a tester drives it: one node per region,
 * an edge router in front, and faults on each replica's replication link.
 * Backends (real processes on this machine today, containers later) implement
 * this interface; the cluster tests and the CLI only speak it.
 */
import type { PosFile } from '../../src/ryw/litefs/files.js';
export { LAG_NOT_SYNCED, parseLagFile, parsePosFile } from '../../src/ryw/litefs/files.js';

export const DEFAULT_REGIONS: readonly string[] = ['fra', 'ewr', 'syd'];
export const DEFAULT_BASE_PORT = 8080;
export const DEFAULT_CLUSTER_DIR = '.cluster';
/** The database file name inside each node's mount. */
export const DATABASE_NAME = 'app.db';

/** A replication position as LiteFS writes it in `<db>-pos` (the app's codec: src/ryw/litefs/files.ts). */
export type ReplicationPosition = PosFile;

/** What is injected on one replica's replication link. */
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
  readonly isPrimary: boolean;
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
  readonly primaryRegion: string;
  /** The edge: a region's port ("a user near it"), or without one the main port. */
  edgeUrl(region?: string): string;
  appUrl(region: string): string;
  node(region: string): ClusterNode;
  /** Delays what `region` receives from the primary by `ms` (± `jitterMs`); 0 removes it. */
  lag(region: string, ms: number, jitterMs?: number): Promise<void>;
  /** Caps what `region` receives from the primary, in KB/s; null removes the cap. */
  bandwidth(region: string, kbps: number | null): Promise<void>;
  /** Partitions `region` from the primary. */
  cut(region: string): Promise<void>;
  /** Removes every fault of `region`, or of all regions. */
  heal(region?: string): Promise<void>;
  faults(): Readonly<Record<string, Fault>>;
  /** Resolves once every replica has the primary's current position. */
  waitForSync(timeoutMs: number): Promise<ReplicationPosition>;
  /**
   * Restarts one node (LiteFS and its app), keeping its data and its link's
   * faults. `env` is applied over the cluster's defaults and replaces the
   * node's previous changes: without it the node is back to the defaults.
   */
  restartNode(region: string, env?: EnvOverrides): Promise<void>;
  /** Stops one node (LiteFS and its app) until `startNode`: its machine is down. */
  stopNode(region: string): Promise<void>;
  /** Starts a node stopped by `stopNode`, keeping its data (and, without `env`, its first start's env). */
  startNode(region: string, env?: EnvOverrides): Promise<void>;
  /**
   * Replaces the primary's database with a new lineage, as a fresh data
   * directory (or `litefs import`) does: the primary starts over and replicas
   * re-snapshot. The cluster id is kept, so replicas reconnect.
   */
  restartPrimaryWithFreshData(): Promise<void>;
  stop(): Promise<void>;
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
    LITEFS_API: node.litefsApiUrl,
  };
}
