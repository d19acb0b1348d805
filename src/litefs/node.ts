import type { NodeFacts, Role } from '../consistency.js';
import { reached, type Position } from '../position.js';
import { lagShowsReplica, readLag, readPrimary, type LiteFSFiles } from './files.js';
import type { PositionWatcher } from './position-watcher.js';

export interface NodeIdentity {
  region: string;
  instance: string;
}

/** How long one read of `.lag` serves every request that asks. */
export const LAG_CACHE_MS = 100;

/**
 * This instance as LiteFS sees it: its role and the primary's id (from the
 * event stream, else `.primary` and `.lag`, asked on every call because a
 * primary can change at any moment), and its position (from the shared watcher).
 */
export class LiteFSNode {
  private lagReadAt = -Infinity;
  private replicatedUntilCache: number | null = null;

  constructor(
    readonly identity: NodeIdentity,
    private readonly files: LiteFSFiles,
    readonly watcher: PositionWatcher,
    /** False when neither LiteFS's files nor its API were found at start: standalone. */
    readonly onLiteFS: boolean,
  ) {}

  /**
   * What `decide()` needs to know of this node. The position (a file read when
   * not streaming) and the replication horizon (`.lag`) are only read when a
   * token has to be judged against them.
   */
  facts(needs: { position: boolean; tokenPosition?: Position } = { position: true }): NodeFacts {
    const { role, primary } = this.role();
    let position = role !== 'standalone' && needs.position ? this.position() : null;
    // The stream may not have told us of a commit yet (a read on the primary
    // right after its own write beats the `tx` event): before judging a token
    // ahead of us, ask the pos file, which is always current.
    if (needs.tokenPosition !== undefined && role !== 'standalone' && this.watcher.streaming && !reached(position, needs.tokenPosition)) {
      position = this.watcher.refresh();
    }
    const behind = role === 'replica' && needs.tokenPosition !== undefined && !reached(position, needs.tokenPosition);
    return { ...this.identity, role, primary, position, replicatedUntil: behind ? this.replicatedUntil() : null };
  }

  /**
   * The role from LiteFS's event stream when it is connected (it knows a
   * cut-off replica from a primary), else from `.primary` and `.lag`.
   */
  role(): { role: Role; primary: string | null } {
    if (!this.onLiteFS) return { role: 'standalone', primary: null };
    const streamed = this.watcher.role();
    if (streamed) return streamed.isPrimary ? { role: 'primary', primary: null } : { role: 'replica', primary: streamed.primary };
    const file = readPrimary(this.files);
    if (file.exists) return { role: 'replica', primary: file.primary };
    // `.primary` also vanishes while a replica reconnects; `.lag` tells them apart.
    return lagShowsReplica(this.files) ? { role: 'replica', primary: null } : { role: 'primary', primary: null };
  }

  /** The position as the watcher knows it (the event stream, or one read of the pos file). */
  position(): Position | null {
    return this.watcher.current();
  }

  /**
   * The primary's time (unix ms) up to which this replica has received every
   * transaction: now minus `.lag`. Read at most once per LAG_CACHE_MS, and only
   * for requests whose token is not met yet.
   */
  replicatedUntil(now = Date.now()): number | null {
    if (now - this.lagReadAt >= LAG_CACHE_MS) {
      const lag = readLag(this.files);
      this.replicatedUntilCache = lag === null ? null : now - lag;
      this.lagReadAt = now;
    }
    // Between reads the replica only gets further, so the cached value is a safe lower bound.
    return this.replicatedUntilCache;
  }

  /**
   * The position a token issued now must carry: read from the pos file itself,
   * because right after a commit the event stream may not have told us yet.
   */
  committedPosition(): Position | null {
    return this.watcher.refresh();
  }
}
