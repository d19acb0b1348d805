/**
 * The shape of a running process cluster, apart from the code that starts
 * one: the control API (served by the cluster's edge) and the CLI need the
 * type, and the starter needs the control API, so the type lives here to
 * keep them from importing each other.
 */
import type { EdgeStatus } from '../edge/status.js';
import type { Cluster } from './cluster.js';
import type { ProcessNode } from './node-process.js';

/** What the CLI and the control API show besides the Cluster interface. */
export interface ProcessCluster extends Cluster {
  readonly dir: string;
  readonly toxiproxyApi: string;
  /** The cluster's Consul agent; null on a static lease. */
  readonly consulUrl: string | null;
  readonly controlUrl: string;
  readonly nodes: readonly ProcessNode[];
  status(): Promise<EdgeStatus>;
}
