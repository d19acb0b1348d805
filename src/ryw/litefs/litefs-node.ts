import { basename, dirname } from 'node:path';
import type { NodeFacts, Role } from '../decide.js';
import type { NodeIdentity, ReplicaNode, WakeSource } from '../node.js';
import { reached, type Position } from '../position.js';
import { lagShowsReplica, liteFSFiles, liteFSFilesPresent, readLag, readPosition, readPrimary, type LiteFSFiles } from './files.js';
import { PositionWatcher } from './position-watcher.js';

/** Whether LiteFS's files are beside this database (a `-pos` file, or `.primary` on a replica). */
export function isOnLiteFS(databasePath: string): boolean {
  return liteFSFilesPresent(liteFSFiles(dirname(databasePath), basename(databasePath)));
}

/** How long one read of `.lag` serves every request that asks. */
export const LAG_CACHE_MS = 100;

export interface LiteFSNodeOptions {
  /** Absolute path of the database in LiteFS's mount: `.primary`, `<db>-pos` and `.lag` are beside it. */
  databasePath: string;
  identity: NodeIdentity;
  /** LiteFS's HTTP API: its `/events` stream wakes waiters and names the role. Null: the files only. */
  api: URL | null;
  /** How often the pos file is read while someone waits and the stream is down. */
  pollMs?: number;
  /** Told when the event stream connects or is lost (for the log). */
  onStreamState?: (connected: boolean) => void;
}

/**
 * This instance as LiteFS sees it: its role and the primary's id (from the
 * event stream, else `.primary` and `.lag`, asked on every call because a
 * primary can change at any moment), and its position (from the shared watcher).
 */
export class LiteFSNode implements ReplicaNode {
  readonly identity: NodeIdentity;
  /** False when neither LiteFS's files nor its API were found at start: standalone. */
  readonly replicated: boolean;
  private readonly files: LiteFSFiles;
  private readonly watcher: PositionWatcher;
  private lagReadAt = -Infinity;
  private replicatedUntilCache: number | null = null;

  constructor(options: LiteFSNodeOptions) {
    this.identity = options.identity;
    this.files = liteFSFiles(dirname(options.databasePath), basename(options.databasePath));
    this.replicated = options.api !== null || liteFSFilesPresent(this.files);
    this.watcher = new PositionWatcher({
      readPosition: () => readPosition(this.files),
      pollMs: options.pollMs,
      events:
        options.api && this.replicated
          ? { api: options.api, database: basename(options.databasePath), onState: options.onStreamState }
          : undefined,
    });
  }

  facts(needs: { position?: boolean; tokenPosition?: Position } = { position: true }): NodeFacts {
    const { role, primary } = this.role();
    const wanted = needs.position ?? needs.tokenPosition !== undefined;
    let position = role !== 'standalone' && wanted ? this.position() : null;
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
    if (!this.replicated) return { role: 'standalone', primary: null };
    const streamed = this.watcher.role();
    if (streamed) return streamed.isPrimary ? { role: 'primary', primary: null } : { role: 'replica', primary: streamed.primary };
    const file = readPrimary(this.files);
    if (file.exists) return { role: 'replica', primary: file.primary };
    // `.primary` also vanishes while a replica reconnects; `.lag` tells them apart.
    return lagShowsReplica(this.files) ? { role: 'replica', primary: null } : { role: 'primary', primary: null };
  }

  /** The position as the watcher knows it (the event stream, or one read of the pos file). */
  position(): Position | null {
    return this.replicated ? this.watcher.current() : null;
  }

  waitFor(target: Position, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.watcher.waitFor(target, timeoutMs, signal);
  }

  /**
   * The position a token issued now must carry: read from the pos file itself,
   * because right after a commit the event stream may not have told us yet.
   */
  committedPosition(): Position | null {
    return this.watcher.refresh();
  }

  stats(): { waiting: number; woken: Readonly<Record<WakeSource, number>>; fileReads: number; streaming: boolean } {
    return {
      waiting: this.watcher.waiting,
      woken: this.watcher.woken,
      fileReads: this.watcher.fileReads,
      streaming: this.watcher.streaming,
    };
  }

  close(): void {
    this.watcher.close();
  }

  /**
   * The primary's time (unix ms) up to which this replica has received every
   * transaction: now minus `.lag`. Read at most once per LAG_CACHE_MS, and only
   * for requests whose token is not met yet.
   */
  private replicatedUntil(now = Date.now()): number | null {
    if (now - this.lagReadAt >= LAG_CACHE_MS) {
      const lag = readLag(this.files);
      this.replicatedUntilCache = lag === null ? null : now - lag;
      this.lagReadAt = now;
    }
    // Between reads the replica only gets further, so the cached value is a safe lower bound.
    return this.replicatedUntilCache;
  }
}
