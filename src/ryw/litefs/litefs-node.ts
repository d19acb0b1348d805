import { basename, dirname } from 'node:path';
import type { NodeFacts, Role } from '../decide.js';
import type { NodeIdentity, ReplicaNode, WakeSource } from '../node.js';
import { reached, type Position } from '../position.js';
import {
  lagShowsReplica,
  liteFSFiles,
  liteFSFilesPresent,
  readLag,
  readPosFile,
  readPrimary,
  type LiteFSFiles,
  type PosFile,
} from './files.js';
import { LineageChecksums } from './checksums.js';
import { PositionWatcher } from './position-watcher.js';
import { Waiters } from '../waiters.js';

/** Whether LiteFS's files are beside this database (a `-pos` file, or `.primary` on a replica). */
export function isOnLiteFS(databasePath: string): boolean {
  return liteFSFilesPresent(liteFSFiles(dirname(databasePath), basename(databasePath)));
}

/** How long one read of `.lag` serves every request that asks. */
export const LAG_CACHE_MS = 100;
/** How often the role is looked at (`.primary`, `.lag`: two small reads) while a write waits for a primary. */
export const PRIMARY_POLL_MS = 25;
/**
 * How long a primary must stay named before a waiting write is sent to it.
 * While the old primary is down, LiteFS names it again for the moment each
 * reconnection attempt takes (about once a second), then names none: a
 * write woken by that would be replayed to a dead instance.
 */
export const PRIMARY_SETTLE_MS = 50;
/**
 * A silence from the primary longer than this (`.lag`, or between two reads
 * of it) is more than a reconnection to the same primary (LiteFS retries
 * after 1 s, heartbeats are 1 s apart): a primary change may hide in it, and
 * with it a snapshot of another lineage, so this replica starts over (see
 * LiteFSNode.restartLineage()).
 */
export const RECONNECTION_GAP_MS = 2_000;
/**
 * Without the event stream, how often a replica looks at `.primary` and
 * `.lag` (three small reads), requests or not: a primary change that came and
 * went while nobody asked shows as a name, a vanished `.primary` or a gap.
 */
export const LINEAGE_POLL_MS = 500;
/** The one target primary waiters share: advance(PRIMARY_KNOWN) wakes them all. */
const PRIMARY_KNOWN = 0n;

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
  /** Writes waiting for a primary to be named; one timer for them all. */
  private readonly primaryWaiters = new Waiters();
  private primaryPoller: NodeJS.Timeout | null = null;
  /** Since when (performance.now()) a primary has been named without a gap, as last looked; null: none named. */
  private namedSince: number | null = null;
  private readonly stopFollowingRole: () => void;
  /** The checksum after each TXID seen since the last primary change (see LineageChecksums). */
  private readonly checksums = new LineageChecksums();
  /** The latest TXID and checksum seen (file or event): the database as it is, or nearly. */
  private latest: PosFile | null = null;
  /** Whose lineage this node follows: 'self' on the primary, else the primary's name; null until known. */
  private lineage: string | null = null;
  /**
   * Since when (unix ms) this replica follows a new primary: what it sees is
   * of that primary's lineage only once it has heard from it after then
   * (a snapshot may still replace its database). At start, the same: null
   * only on a primary.
   */
  private followingSince: number | null = Date.now();
  /** When (unix ms) this node took the lease over from a primary it followed; null otherwise. */
  private tookOverAt: number | null = null;
  /** Whether this node has followed another primary since it started. */
  private followedOther = false;
  /** The primary's time (unix ms) this replica last heard from it, at the last read of `.lag`. */
  private lastHeard: number | null = null;
  /** Whether the last read of `.lag` showed a silence longer than RECONNECTION_GAP_MS. */
  private inGap = false;
  private readonly lineagePoller: NodeJS.Timeout;
  /** checksumAt(), for NodeFacts: one function for every request. */
  private readonly checksumLookup = (txid: Position): string | null => this.checksumAt(txid);

  constructor(options: LiteFSNodeOptions) {
    this.identity = options.identity;
    this.files = liteFSFiles(dirname(options.databasePath), basename(options.databasePath));
    this.replicated = options.api !== null || liteFSFilesPresent(this.files);
    this.watcher = new PositionWatcher({
      readPosition: () => this.readPosition(),
      pollMs: options.pollMs,
      events:
        options.api && this.replicated
          ? {
              api: options.api,
              database: basename(options.databasePath),
              onState: (connected: boolean) => {
                // A new connection (its `init`): whatever happened while the
                // stream was down (a primary change, a snapshot) went unseen.
                if (connected) this.unfollow();
                options.onStreamState?.(connected);
              },
            }
          : undefined,
    });
    this.lineagePoller = setInterval(() => this.lookAtLineage(), LINEAGE_POLL_MS);
    this.lineagePoller.unref();
    // Role events wake waiting writes at once; the poll covers the files (and a missed event).
    this.stopFollowingRole = this.watcher.onRoleEvent(() => this.lookForPrimary());
    this.watcher.onTransaction((txid, checksum) => this.saw(txid, checksum, false));
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
    // A token to judge: a gap in `.lag` restarts the trust gate before its checksum is looked up.
    if (role === 'replica' && needs.tokenPosition !== undefined) this.trusted();
    return {
      ...this.identity,
      role,
      primary,
      position,
      replicatedUntil: behind ? this.replicatedUntil() : null,
      checksumAt: this.checksumLookup,
      tookOverAt: role === 'primary' ? this.tookOverAt : null,
    };
  }

  /**
   * The checksum this node's lineage had after `txid`, when known: seen
   * since the last primary change, once this node was of that primary's
   * lineage (see LineageChecksums). Null: unknown.
   */
  checksumAt(txid: Position): string | null {
    if (!this.trusted()) return null;
    return this.checksums.at(txid) ?? (this.latest?.txid === txid ? this.latest.checksum : null);
  }

  private readPosition(): Position | null {
    const pos = readPosFile(this.files);
    if (pos) this.saw(pos.txid, pos.checksum, true);
    return pos?.txid ?? null;
  }

  private saw(txid: Position, checksum: string | null, fromFile: boolean): void {
    if (checksum !== null) this.latest = { txid, checksum };
    this.checksums.observe(txid, checksum, { trusted: this.trusted(), fromFile });
  }

  /** Whether this node's database is of its primary's lineage: it is the primary, or heard from it since following it. */
  private trusted(): boolean {
    if (this.lineage === null) return false;
    if (this.lineage === 'self') return true;
    // Read even once trusted: a gap in it restarts the gate (see replicatedUntil()).
    const heard = this.replicatedUntil();
    if (this.followingSince === null) return true;
    if (heard === null || heard < this.followingSince) return false;
    this.followingSince = null;
    this.seed();
    return true;
  }

  /** What the database is now, once trusted: a quiet stream may tell of no commit for long. */
  private seed(): void {
    const pos = readPosFile(this.files);
    if (pos) {
      this.latest = pos;
      this.checksums.observe(pos.txid, pos.checksum, { trusted: true, fromFile: true });
    }
  }

  /**
   * A new primary (or this node becoming it) may begin a new lineage: forget
   * what was seen of the old one. So does a replica naming no primary at
   * all: LiteFS is between two primaries, or reconnecting, and the one it
   * names next, even under the same name, may come with a snapshot of
   * another lineage (fra-1, fra-2, fra-1 again).
   */
  private follow(role: Role, primary: string | null): void {
    if (role === 'standalone') return;
    const lineage = role === 'primary' ? 'self' : primary;
    if (lineage === this.lineage) return;
    this.checksums.forget();
    this.latest = null;
    this.lineage = lineage;
    if (lineage === 'self') {
      this.followingSince = null;
      if (this.followedOther) this.tookOverAt ??= Date.now();
      // A primary's own database is its lineage: known at once, not at its next commit (a page cache keys on it).
      this.seed();
    } else if (lineage !== null) {
      this.followedOther = true;
      this.tookOverAt = null;
      this.restartLineage();
    }
  }

  /** Forgets the lineage followed, so that the next role looked at is followed anew (a new stream connection). */
  private unfollow(): void {
    this.checksums.forget();
    this.latest = null;
    this.lineage = null;
  }

  /**
   * This replica's database may be of another lineage from now on: nothing
   * seen so far counts, and nothing is kept until it hears from its primary
   * after now (the trust gate).
   */
  private restartLineage(now = Date.now()): void {
    this.checksums.forget();
    this.latest = null;
    this.followingSince = now;
  }

  /** Without the event stream: looks at the role and `.lag` (see LINEAGE_POLL_MS). */
  private lookAtLineage(): void {
    if (!this.replicated || this.watcher.streaming) return;
    this.role();
    this.trusted();
  }

  /**
   * The role from LiteFS's event stream when it is connected (it knows a
   * cut-off replica from a primary), else from `.primary` and `.lag`.
   */
  role(): { role: Role; primary: string | null } {
    const now = this.currentRole();
    this.follow(now.role, now.primary);
    return now;
  }

  private currentRole(): { role: Role; primary: string | null } {
    if (!this.replicated) return { role: 'standalone', primary: null };
    const streamed = this.watcher.role();
    if (streamed) {
      if (streamed.isPrimary) return { role: 'primary', primary: null };
      // Cut off, LiteFS names no primary: neither do we (the last one is most
      // likely down, and writes wait for a new one: waitForPrimary()).
      return { role: 'replica', primary: this.watcher.primaryNamed() ? streamed.primary : null };
    }
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
   * Waits for a primary to be named (for PRIMARY_SETTLE_MS without a gap) or
   * for this node to become it: woken by LiteFS's role events, else by a poll
   * of the files that runs only while someone waits.
   */
  waitForPrimary(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.lookForPrimary()) return Promise.resolve(true);
    if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve(false);
    const done = this.primaryWaiters.add(PRIMARY_KNOWN, timeoutMs, signal);
    this.primaryPoller ??= setInterval(() => {
      if (this.primaryWaiters.size > 0) return void this.lookForPrimary();
      clearInterval(this.primaryPoller!);
      this.primaryPoller = null;
    }, PRIMARY_POLL_MS);
    return done;
  }

  /** Whether writes have somewhere to go now, waking the waiting ones if so. */
  private lookForPrimary(now = performance.now()): boolean {
    const { role, primary } = this.role();
    if (role === 'replica' && primary === null) {
      this.namedSince = null;
      return false;
    }
    this.namedSince ??= now;
    // A primary (this node) is definite; a name must last, see PRIMARY_SETTLE_MS.
    const known = role !== 'replica' || now - this.namedSince >= PRIMARY_SETTLE_MS;
    if (known) this.primaryWaiters.advance(PRIMARY_KNOWN);
    return known;
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
    this.stopFollowingRole();
    if (this.primaryPoller) clearInterval(this.primaryPoller);
    this.primaryPoller = null;
    this.primaryWaiters.clear();
    clearInterval(this.lineagePoller);
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
      if (lag !== null && this.lineage !== 'self') this.lookForGap(lag, now - lag, now);
    }
    // Between reads the replica only gets further, so the cached value is a safe lower bound.
    return this.replicatedUntilCache;
  }

  /**
   * A silence longer than RECONNECTION_GAP_MS, seen in `.lag` now (once per
   * silence: a link that lags steadily restarts the gate once), or between
   * this read and the last one (nobody looked meanwhile, and heartbeats are
   * 1 s apart; without the stream, LINEAGE_POLL_MS keeps looking), restarts the trust gate: a primary change may lie in it.
   */
  private lookForGap(lag: number, heard: number, now: number): void {
    const silent = lag > RECONNECTION_GAP_MS;
    // With the stream, its events say what happened meanwhile; without it, nobody may have looked.
    const unseen = !this.watcher.streaming && this.lastHeard !== null && heard - this.lastHeard > RECONNECTION_GAP_MS;
    if ((silent && !this.inGap) || unseen) this.restartLineage(now);
    this.inGap = silent;
    this.lastHeard = heard;
  }
}
