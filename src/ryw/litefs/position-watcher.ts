import type { Position } from '../position.js';
import { Waiters } from '../waiters.js';
import { EventStream, type LiteFSEvent } from './event-stream.js';

/** How often the pos file is read while at least one request waits (and the event stream is down). */
export const DEFAULT_POLL_MS = 5;
/**
 * While streaming, the pos file is still read this often while someone waits:
 * a stalled or half-open stream must cost waiters a little latency, not
 * their whole budget.
 */
export const STREAMING_POLL_MS = 100;
/**
 * How long the safety poll, finding the file ahead of a connected stream,
 * leaves the stream to deliver that position before waking waiters itself:
 * LiteFS moves the file as it commits and sends the event just after, so a
 * tick landing in between would otherwise take the stream's place.
 */
export const EVENT_GRACE_MS = 25;
/** First and longest pause before reconnecting to LiteFS's `/events`. */
export const EVENTS_RECONNECT_MIN_MS = 100;
export const EVENTS_RECONNECT_MAX_MS = 5_000;
/** Longest line read from this node's own LiteFS: its events are a few hundred bytes; anything longer is not LiteFS speaking. */
export const EVENTS_MAX_LINE_BYTES = 64 * 1024;

/** What LiteFS's event stream says of this node: primary or not, and who is. */
export interface StreamedRole {
  isPrimary: boolean;
  /** The primary's lease hostname; the last one known while a replica is cut off. */
  primary: string | null;
}

export interface PositionWatcherOptions {
  /** Reads the `<db>-pos` file: null when missing or malformed. */
  readPosition: () => Position | null;
  pollMs?: number;
  /** LiteFS's HTTP API; when set, positions come from its `/events` stream. */
  events?: { api: URL; database: string; onState?: (connected: boolean) => void };
}

/**
 * The one place a process learns its replication position. All waiting
 * requests share it: they are woken by LiteFS's `/events` stream when one is
 * configured and connected, otherwise by a single poller of the pos file that
 * runs only while somebody waits (and, slowly, as a safety net under the stream).
 */
export class PositionWatcher {
  private readonly waiters = new Waiters();
  private readonly pollMs: number;
  private poller: NodeJS.Timeout | null = null;
  /** The latest position learnt, from the pos file or the stream alike (see observe()). */
  private known: Position | null = null;
  private streamedRole: StreamedRole | null = null;
  /** Whether LiteFS's latest role event named a primary (or said this node is one); see primaryNamed(). */
  private named = false;
  /** Told of every role event, and of the stream's loss (see onRoleEvent()). */
  private readonly roleListeners = new Set<() => void>();
  /** Told of every `tx` event's TXID and checksum (see onTransaction()). */
  private readonly txListeners = new Set<(txid: Position, checksum: string | null) => void>();
  private connected = false;
  private closing = false;
  private readonly stream: EventStream | null = null;
  /** Pos-file reads made, for the benchmarks and metrics. */
  fileReads = 0;
  /** Waiters woken, by what woke them: tells whether the event stream is doing its job. */
  readonly woken = { events: 0, poll: 0 };

  constructor(private readonly options: PositionWatcherOptions) {
    this.pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    const { events } = options;
    if (events) {
      this.stream = new EventStream({
        api: events.api,
        reconnectMinMs: EVENTS_RECONNECT_MIN_MS,
        reconnectMaxMs: EVENTS_RECONNECT_MAX_MS,
        maxLineBytes: EVENTS_MAX_LINE_BYTES,
        onEvent: (event) => this.onEvent(event, events.database),
        onLost: () => this.setConnected(false),
      });
    }
  }

  /** Whether positions currently arrive from LiteFS's event stream. */
  get streaming(): boolean {
    return this.connected;
  }

  /** The role the event stream reported last; null while not streaming. */
  role(): StreamedRole | null {
    return this.connected ? this.streamedRole : null;
  }

  /**
   * Whether LiteFS's latest role event named a primary (or said this node
   * is one); null while not streaming. role() keeps the last name known while
   * a replica is cut off; this says whether LiteFS names one now.
   */
  primaryNamed(): boolean | null {
    return this.connected ? this.named : null;
  }

  /** Calls `listener` after every role event and when the stream is lost; returns the way to stop. */
  onRoleEvent(listener: () => void): () => void {
    this.roleListeners.add(listener);
    return () => this.roleListeners.delete(listener);
  }

  /** Calls `listener` with each `tx` event's TXID and post-apply checksum (null when missing), before waiters hear of it. */
  onTransaction(listener: (txid: Position, checksum: string | null) => void): () => void {
    this.txListeners.add(listener);
    return () => this.txListeners.delete(listener);
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** The position now: from the stream when connected, else one read of the pos file. */
  current(): Position | null {
    return this.connected ? this.known : this.refresh();
  }

  /**
   * Reads the pos file now, which is always the truth, and learns from it:
   * e.g. right after a commit, before its `tx` event has arrived.
   */
  refresh(): Position | null {
    return this.observe(this.read(), 'poll');
  }

  /**
   * Resolves true as soon as the position reaches `target`, false when
   * `timeoutMs` runs out or `signal` aborts (the client went away).
   */
  async waitFor(target: Position, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (timeoutMs <= 0 || signal?.aborted) return false;
    const done = this.waiters.add(target, timeoutMs, signal);
    this.startPolling();
    return done;
  }

  close(): void {
    this.closing = true;
    this.stopPolling();
    this.stream?.close();
    this.waiters.clear();
    // Role listeners hear the stream is down, as when it is lost; onState does not: nothing was lost.
    this.setConnected(false);
  }

  private read(): Position | null {
    this.fileReads++;
    return this.options.readPosition();
  }

  /**
   * The one path every position comes in by, from the pos file (polls, token
   * issues, seeding) and from the event stream alike, so that decisions,
   * waiters and metrics all see one truth. The file is the truth at the time
   * it was read. An event below what is known may be one that was overtaken
   * by a read of the file, or a real move down (a restore, a failover
   * re-snapshot): the file tells which.
   */
  private observe(position: Position | null, source: 'events' | 'poll'): Position | null {
    if (source === 'events' && position !== null && this.known !== null && position < this.known) {
      return this.refresh();
    }
    this.known = position;
    this.woken[source] += this.waiters.advance(position);
    return position;
  }

  private startPolling(): void {
    if (this.poller) return;
    this.poller = setInterval(
      () => {
        if (this.waiters.size === 0) return this.stopPolling();
        if (!this.connected) return void this.refresh();
        const seen = this.read();
        if (seen === null || this.known === null || seen < this.known) return void this.observe(seen, 'poll');
        if (seen === this.known) return;
        // Ahead of the stream: most often its event is on the way (see EVENT_GRACE_MS).
        setTimeout(() => {
          if (this.known === null || this.known < seen) this.observe(seen, 'poll');
        }, EVENT_GRACE_MS).unref();
      },
      this.connected ? STREAMING_POLL_MS : this.pollMs,
    );
  }

  private stopPolling(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  }

  private setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    if (!this.closing) this.options.events?.onState?.(connected);
    if (!connected) for (const listener of this.roleListeners) listener();
    // Same poller, another pace: fast without the stream, a safety net with it.
    this.stopPolling();
    if (this.waiters.size > 0) this.startPolling();
  }

  private onEvent(event: LiteFSEvent, database: string): void {
    if (event.type === 'tx') {
      if (event.db !== database) return;
      for (const listener of this.txListeners) listener(event.txid, event.checksum);
      this.observe(event.txid, 'events');
      return;
    }
    const { isPrimary, hostname } = event;
    // LiteFS reports no hostname while a replica is disconnected; the primary is most likely unchanged.
    this.streamedRole = { isPrimary, primary: isPrimary ? null : (hostname ?? this.streamedRole?.primary ?? null) };
    this.named = isPrimary || hostname !== null;
    if (event.type === 'init') {
      // The stream tells of changes, not of where we are: seed from the file,
      // then follow the stream.
      this.setConnected(true);
      this.refresh();
    }
    for (const listener of this.roleListeners) listener();
  }
}
