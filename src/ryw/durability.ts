/**
 * Durable acknowledgements: when a write may be answered. LiteFS replicates
 * asynchronously, so a write committed on the primary but not yet streamed
 * is lost, silently, when the primary dies, and the new primary gives its
 * TXID to another write (docs/consistency.md, "Across a primary change").
 * With `standby`, the primary answers a write only once a standby candidate
 * (a node that can take the lease over) has applied it.
 */

/** `local`: acknowledged once committed on the primary (LiteFS's own behaviour); `standby`: once a standby has it too. */
export const DURABILITY_MODES = ['local', 'standby'] as const;
export type DurabilityMode = (typeof DURABILITY_MODES)[number];
/** LiteFS's behaviour unless told: no wait, no standby needed. */
export const DEFAULT_DURABILITY_MODE: DurabilityMode = 'local';
/**
 * The longest a write waits for a standby before the author is told "saved on
 * the primary, not yet confirmed elsewhere" (503): a healthy standby in the
 * same region answers in a few ms; past a second it is lagging or gone.
 */
export const DEFAULT_DURABILITY_WAIT_MS = 1_000;
/** The port of LiteFS's API on a standby found by DNS name (`http.addr`'s default, :20202). */
export const DEFAULT_STANDBY_PORT = 20202;
/** How often a DNS name of standbys is looked up again, so that new machines join and gone ones leave. */
export const DEFAULT_STANDBYS_RESOLVE_MS = 15_000;

/**
 * Where the standbys' LiteFS APIs are: a list of URLs, or a DNS name (on
 * Fly.io, `<region>.<app>.internal`) whose every address is one, at `port`.
 */
export type StandbyList = readonly (string | URL)[] | { dns: string; port?: number };

/** Why a write was not confirmed. */
export type UnconfirmedReason =
  /** No standby reported the write's position within the wait. */
  | 'timeout'
  /** None is configured (RYW_STANDBYS unset): nothing can ever confirm. */
  | 'no-standbys'
  /** The position the write committed is unknown (no pos file): nothing to wait for. */
  | 'no-position'
  /** This node is not the primary (it lost the lease): its commit may be of a lineage nobody follows. */
  | 'not-primary'
  /** The client went away, or the layer was closed, while waiting. */
  | 'aborted';

/** What `confirm()` found: the write is on a standby too, or why that is not known. */
export type Confirmation = { confirmed: true; waitedMs: number } | { confirmed: false; reason: UnconfirmedReason; waitedMs: number };

export interface DurabilityOptions {
  mode?: DurabilityMode;
  /** Required for `standby` on a node that can become primary; a replica never confirms anything. */
  standbys?: StandbyList;
  /** Default DEFAULT_DURABILITY_WAIT_MS. */
  waitMs?: number;
  /** How often a DNS name of standbys is looked up again (default DEFAULT_STANDBYS_RESOLVE_MS). */
  resolveEveryMs?: number;
  /** Looks a DNS name up (default: node:dns `lookup` with `all`, which also reads /etc/hosts). */
  resolve?: (name: string) => Promise<string[]>;
  /**
   * Commits one small transaction (the blog bumps a one-row table): called
   * when a write waits for a standby whose stream has just opened and so has
   * reported no position yet (LiteFS's `init` carries none), once per such
   * stream, so that its next `tx` proves the write. Without it a write sent
   * again that commits nothing (a publish finding its draft) waits for
   * someone else's write, and is 503 until then.
   */
  mark?: () => void;
  /** Told when a standby's event stream connects or is lost (for the log). */
  onStandbyState?: (standby: URL, connected: boolean) => void;
}
