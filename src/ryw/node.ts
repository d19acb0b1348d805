import type { NodeFacts, Role } from './decide.js';
import type { Position } from './position.js';

/** Where this process runs: what `fly-replay` and every page call it. */
export interface NodeIdentity {
  region: string;
  instance: string;
}

/** What woke waiting requests: the replication system's notifications, or a poll. */
export type WakeSource = 'events' | 'poll';

/**
 * What the read-your-writes layer needs of the node it runs on: its facts,
 * a way to wait for a position, and the position a write committed. LiteFS's
 * adapter (./litefs/) is one; tests use an in-memory one.
 */
export interface ReplicaNode {
  readonly identity: NodeIdentity;
  /**
   * False when no replication is in play (standalone): no tokens, no waits.
   * Decided once, at start.
   */
  readonly replicated: boolean;
  /** The role and the primary's name now (a primary can change at any moment). */
  role(): { role: Role; primary: string | null };
  /**
   * What `decide()` needs to know of this node. `position` asks for the
   * position (it may cost a file read); `tokenPosition` says which token is
   * to be judged, so that the node can make sure it is not judged against a
   * position it has not caught up with in memory yet.
   */
  facts(needs?: { position?: boolean; tokenPosition?: Position }): NodeFacts;
  /** The position as known now, for health checks and metrics. */
  position(): Position | null;
  /** Resolves true as soon as the position reaches `target`; false at the deadline or when `signal` aborts. */
  waitFor(target: Position, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /**
   * Resolves true as soon as this node knows where writes go (it names a
   * primary, or has become one); false at the deadline or when `signal`
   * aborts. For writes that arrive while no primary is named (a failover):
   * it must cost nothing while nobody waits.
   */
  waitForPrimary(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /**
   * The checksum this node's lineage had after `position`, when it knows it
   * (null: unknown): carried in tokens, and compared with theirs to find a
   * write lost in a failover. Optional: a node without it issues tokens of
   * the older format and never judges a write lost.
   */
  checksumAt?(position: Position): string | null;
  /** The position a token issued now must carry: read after the write committed. */
  committedPosition(): Position | null;
  /** Requests waiting now, and how many were woken by what. */
  stats(): { waiting: number; woken: Readonly<Record<WakeSource, number>> };
  close(): void;
}
