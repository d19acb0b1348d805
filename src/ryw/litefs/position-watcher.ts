import { request, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as requestTls } from 'node:https';
import { parseTxid, type Position } from '../position.js';
import { isLeaseHostname } from './files.js';
import { Waiters } from '../waiters.js';

/** How often the pos file is read while at least one request waits (and the event stream is down). */
export const DEFAULT_POLL_MS = 5;
/**
 * While streaming, the pos file is still read this often while someone waits:
 * a stalled or half-open stream must cost waiters a little latency, not
 * their whole budget.
 */
export const STREAMING_POLL_MS = 100;
/** First and longest pause before reconnecting to LiteFS's `/events`. */
export const EVENTS_RECONNECT_MIN_MS = 100;
export const EVENTS_RECONNECT_MAX_MS = 5_000;

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
  private stream: ClientRequest | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectDelay = EVENTS_RECONNECT_MIN_MS;
  private closed = false;
  /** Pos-file reads made, for the benchmarks and metrics. */
  fileReads = 0;
  /** Waiters woken, by what woke them: tells whether the event stream is doing its job. */
  readonly woken = { events: 0, poll: 0 };

  constructor(private readonly options: PositionWatcherOptions) {
    this.pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    if (options.events) this.connect();
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
    this.closed = true;
    this.stopPolling();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stream?.destroy();
    this.waiters.clear();
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
        this.refresh();
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
    this.options.events?.onState?.(connected);
    if (!connected) for (const listener of this.roleListeners) listener();
    // Same poller, another pace: fast without the stream, a safety net with it.
    this.stopPolling();
    if (this.waiters.size > 0) this.startPolling();
  }

  private connect(): void {
    const events = this.options.events!;
    const url = new URL('/events', events.api);
    const send = url.protocol === 'https:' ? requestTls : request;
    const req = send(url, { headers: { accept: 'application/x-ndjson' } }, (res) => this.consume(res));
    this.stream = req;
    req.on('error', () => this.disconnected(req));
    req.end();
  }

  private consume(res: IncomingMessage): void {
    const req = this.stream;
    if (res.statusCode !== 200) {
      res.resume();
      return this.disconnected(req);
    }
    res.setEncoding('utf8');
    let buffered = '';
    res.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        this.onEvent(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
      }
    });
    res.on('end', () => this.disconnected(req));
    res.on('error', () => this.disconnected(req));
  }

  private onEvent(line: string): void {
    let event: {
      type?: unknown;
      db?: unknown;
      data?: { txID?: unknown; postApplyChecksum?: unknown; isPrimary?: unknown; hostname?: unknown };
    };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return;
    }
    if (event.type === 'init' || event.type === 'primaryChange') {
      const isPrimary = event.data?.isPrimary === true;
      const hostname = typeof event.data?.hostname === 'string' && isLeaseHostname(event.data.hostname) ? event.data.hostname : null;
      // LiteFS reports no hostname while a replica is disconnected; the primary is most likely unchanged.
      this.streamedRole = { isPrimary, primary: isPrimary ? null : (hostname ?? this.streamedRole?.primary ?? null) };
      this.named = isPrimary || hostname !== null;
    }
    if (event.type === 'init') {
      // The stream tells of changes, not of where we are: seed from the file,
      // then follow the stream.
      this.reconnectDelay = EVENTS_RECONNECT_MIN_MS;
      this.setConnected(true);
      this.refresh();
    }
    if (event.type === 'init' || event.type === 'primaryChange') {
      for (const listener of this.roleListeners) listener();
    } else if (event.type === 'tx' && event.db === this.options.events!.database) {
      const position = typeof event.data?.txID === 'string' ? parseTxid(event.data.txID) : null;
      if (position === null) return;
      const sum = event.data?.postApplyChecksum;
      const checksum = typeof sum === 'string' && /^[0-9a-f]{16}$/.test(sum) ? sum : null;
      for (const listener of this.txListeners) listener(position, checksum);
      this.observe(position, 'events');
    }
  }

  private disconnected(req: ClientRequest | null): void {
    if (req !== this.stream) return;
    this.stream = null;
    req?.destroy();
    this.setConnected(false);
    if (this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed) this.connect();
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, EVENTS_RECONNECT_MAX_MS);
  }
}
