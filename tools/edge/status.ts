import { isLive, type EdgeNode } from './edge-node.js';

/** What the `/_cluster` page shows about one node. */
export interface NodeStatus {
  readonly region: string;
  readonly instance: string;
  /** The node's app, straight (no edge). */
  readonly appUrl: string;
  /** The edge port standing for "a user near this region", if any. */
  readonly edgeUrl: string | null;
  /** From the app's `/healthz`; `down` when it does not answer. */
  readonly role: 'primary' | 'replica' | 'standalone' | 'down';
  /** TXID as 16 hex digits, or null when unknown. */
  readonly position: string | null;
  /** Transactions behind the primary (0 on the primary), null when unknown. */
  readonly behindTx: number | null;
  /** LiteFS's own `.lag` (ms since the primary's last heartbeat arrived), null when unknown. */
  readonly lagMs: number | null;
  /** The faults injected on this node's replication link, in words; null for none. */
  readonly injected: string | null;
  /** Whether its machine is up (false: stopped or killed, so the edge sends it nobody). */
  readonly live: boolean;
  /** Whether it may hold the primary's lease; absent when the edge cannot tell. */
  readonly candidate?: boolean;
  /** Whether it holds the lease now (by the cluster's lease); absent when the edge cannot tell. */
  readonly leaseHolder?: boolean;
  readonly error?: string;
}

/** The lease as the cluster reports it: its kind, settings and holder. */
export type LeaseStatus =
  | { readonly type: 'static'; readonly holder: string | null }
  | {
      readonly type: 'consul';
      readonly holder: string | null;
      readonly consulUrl: string;
      readonly key: string;
      readonly ttlMs: number;
      readonly lockDelayMs: number;
      readonly reconnectDelayMs: number;
    };

export interface EdgeStatus {
  readonly at: string;
  readonly primaryRegion: string;
  readonly mainUrl: string;
  readonly nodes: readonly NodeStatus[];
  /** Absent when the edge runs without a cluster behind it (it only knows the nodes' health). */
  readonly lease?: LeaseStatus;
  /** Every change of the lease holder seen so far, oldest first. */
  readonly primaryChanges?: readonly { readonly at: string; readonly from: string | null; readonly to: string | null }[];
}

/** The subset of the app's `GET /healthz` the edge relies on. */
export interface NodeHealth {
  readonly role: 'primary' | 'replica' | 'standalone';
  readonly position: string | null;
}

/** How long the status page waits for one node's `/healthz`. */
export const HEALTH_TIMEOUT_MS = 1000;

/** Asks a node's app for `/healthz`; any failure is "down", with its reason. */
export async function fetchHealth(appUrl: string): Promise<NodeHealth | { readonly error: string }> {
  try {
    const res = await fetch(`${appUrl}/healthz`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    if (!res.ok) return { error: `healthz answered ${res.status}` };
    const body = (await res.json()) as Partial<NodeHealth>;
    const role = body.role;
    if (role !== 'primary' && role !== 'replica' && role !== 'standalone') return { error: 'healthz has no role' };
    return { role, position: typeof body.position === 'string' ? body.position : null };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The status an edge can tell on its own, with nothing but the nodes' health
 * endpoints: role, position and how far each is behind the primary.
 */
export async function basicStatus(
  nodes: readonly EdgeNode[],
  primaryRegion: string,
  mainUrl: string,
  edgeUrls: Readonly<Record<string, string>>,
): Promise<EdgeStatus> {
  const healths = await Promise.all(
    nodes.map((node) => (isLive(node) ? fetchHealth(node.url) : Promise.resolve({ error: 'not running' }))),
  );
  const primaryIndex = healths.findIndex((h) => 'role' in h && h.role === 'primary');
  const primaryHealth = primaryIndex >= 0 ? healths[primaryIndex] : undefined;
  const primaryTx = primaryHealth && 'role' in primaryHealth ? hexToNumber(primaryHealth.position) : null;
  return {
    at: new Date().toISOString(),
    primaryRegion,
    mainUrl,
    nodes: nodes.map((node, i): NodeStatus => {
      const health = healths[i]!;
      const base = {
        region: node.region,
        instance: node.instance,
        appUrl: node.url,
        edgeUrl: edgeUrls[node.region] ?? null,
        live: isLive(node),
      };
      if ('error' in health) {
        return { ...base, role: 'down', position: null, behindTx: null, lagMs: null, injected: null, error: health.error };
      }
      const tx = hexToNumber(health.position);
      return {
        ...base,
        role: health.role,
        position: health.position,
        behindTx: tx !== null && primaryTx !== null ? Math.max(0, primaryTx - tx) : null,
        lagMs: null,
        injected: null,
      };
    }),
  };
}

function hexToNumber(hex: string | null): number | null {
  if (hex === null || !/^[0-9a-f]{1,16}$/.test(hex)) return null;
  return Number(BigInt(`0x${hex}`));
}
