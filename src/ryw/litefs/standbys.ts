import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { DEFAULT_STANDBY_PORT, DEFAULT_STANDBYS_RESOLVE_MS, type StandbyList } from '../durability.js';
import { reached, type Position } from '../position.js';
import { Waiters } from '../waiters.js';
import { EventStream, type LiteFSEvent } from './event-stream.js';

/**
 * First and longest pause before reconnecting to a standby's `/events`. Shorter
 * than for our own node's stream: while a standby is unreachable no write is
 * confirmed, so a standby back from a restart must be followed again at once
 * (a refused connection a second costs nothing).
 */
export const STANDBY_RECONNECT_MIN_MS = 100;
export const STANDBY_RECONNECT_MAX_MS = 1_000;
/**
 * TCP keep-alive on each standby's stream: LiteFS sends nothing on `/events`
 * between transactions (no heartbeat), so a machine that vanished without a
 * FIN would otherwise look connected, silent, for as long as the kernel keeps
 * retransmitting. Dead connections are also dropped after a write times out
 * (see Standbys.waitFor).
 */
export const STANDBY_KEEPALIVE_MS = 5_000;
/** More than this without a newline is not LiteFS (its events are a few hundred bytes): the stream is dropped and opened again. */
export const STANDBY_MAX_LINE_BYTES = 64 * 1024;

export interface StandbysOptions {
  standbys: StandbyList;
  /** The database's file name in the mount (`app.db`): `tx` events of other databases are ignored. */
  database: string;
  /**
   * Our lease hostname (litefs.yml's `lease.hostname`: the node's
   * identity.instance, FLY_MACHINE_ID on Fly.io): a standby counts only while
   * its LiteFS says it follows this primary, so that a TXID of another
   * lineage (an old primary's, or its own as a primary) never confirms ours.
   */
  self: string;
  /**
   * Whether to follow the standbys now (default: always): the node is the
   * primary. Asked at every lookup and by each wait, so that a replica (in
   * another region too) holds no stream, and a node that has just become
   * primary follows them from its first write.
   */
  active?: () => boolean;
  /**
   * Commits one small transaction on the primary (see DurabilityOptions.mark):
   * called when a write waits for a standby that follows us but whose
   * position is not known (a stream just opened: LiteFS's `init` has none),
   * at most once per such stream, so that its next `tx` proves the wait.
   */
  mark?: () => void;
  resolveEveryMs?: number;
  resolve?: (name: string) => Promise<string[]>;
  onState?: (standby: URL, connected: boolean) => void;
}

/** What one standby's stream said last. */
interface StandbyState {
  connected: boolean;
  /** From `init` and `primaryChange`: a standby that is itself primary confirms nothing. */
  isPrimary: boolean;
  /** From `init` and `primaryChange`: the lease hostname of the primary it follows (null: none). */
  primary: string | null;
  /**
   * The last TXID its stream reported applied since it last said whom it
   * follows: null after each `init` and `primaryChange` (neither carries a
   * position, and what was known before may be of another lineage).
   */
  position: Position | null;
  /** Whether a marker was committed for this unknown position already. */
  marked: boolean;
}

/** Every address of a DNS name, as getaddrinfo gives them (so /etc/hosts counts too). */
export async function lookupAll(name: string): Promise<string[]> {
  return (await lookup(name, { all: true })).map((entry) => entry.address);
}

/**
 * One address family of a name's addresses: a name with both A and AAAA
 * records names each machine twice, and two streams to one standby would
 * count it twice. IPv4 when there is any (a dual-stack name, /etc/hosts'
 * localhost), else IPv6 (Fly.io's `.internal` names have only AAAA records).
 */
export function oneFamily(addresses: readonly string[]): string[] {
  const v4 = addresses.filter((address) => isIP(address) === 4);
  return [...new Set(v4.length > 0 ? v4 : addresses)];
}

/** The LiteFS API URL of a standby at `address` (IPv6 in brackets). */
export function standbyUrl(address: string, port = DEFAULT_STANDBY_PORT): URL {
  return new URL(`http://${isIP(address) === 6 ? `[${address}]` : address}:${port}`);
}

const followsUs = (state: StandbyState, self: string): boolean => state.connected && !state.isPrimary && state.primary === self;
const confirms = (state: StandbyState, self: string): boolean => followsUs(state, self) && state.position !== null;

/**
 * Follows the standby candidates' positions: one `/events` subscription per
 * standby per process while this node is primary, reconnecting with
 * back-off, and wakes the writes waiting for a position as soon as a standby
 * that follows us reports it applied (`tx`): no polling, one timer for all
 * waits. The standbys (a DNS name is looked up again) are looked at again
 * every `resolveEveryMs`: new machines join, gone ones are dropped.
 */
export class Standbys {
  private readonly followers = new Map<string, StandbyFollower>();
  private readonly waiters = new Waiters();
  private readonly timer: NodeJS.Timeout;
  private readonly active: () => boolean;
  private refreshing: Promise<void> | null = null;
  /** Whether the standbys were followed at the last look (active then). */
  private following = false;
  private closedNow = false;
  /** Resolves once the first look (a DNS lookup, if any) is done: tests and the log wait on it. */
  readonly ready: Promise<void>;

  constructor(private readonly options: StandbysOptions) {
    this.active = options.active ?? (() => true);
    this.ready = this.refresh();
    this.timer = setInterval(() => void this.refresh(), options.resolveEveryMs ?? DEFAULT_STANDBYS_RESOLVE_MS);
    this.timer.unref();
  }

  get closed(): boolean {
    return this.closedNow;
  }

  /** How many standbys are known, and how many could confirm a write now (streaming, following us). */
  count(): { known: number; streaming: number } {
    let streaming = 0;
    for (const follower of this.followers.values()) if (followsUs(follower.state, this.options.self)) streaming++;
    return { known: this.followers.size, streaming };
  }

  /** The highest position any standby that may confirm has reported (null: none known). */
  highest(): Position | null {
    let best: Position | null = null;
    for (const { state } of this.followers.values()) {
      if (!confirms(state, this.options.self)) continue;
      if (best === null || state.position! > best) best = state.position;
    }
    return best;
  }

  /**
   * Resolves true as soon as a standby has applied `target`, false at the
   * deadline or when `signal` aborts. A wait that times out drops the
   * streams that stayed silent throughout it (see STANDBY_KEEPALIVE_MS).
   */
  async waitFor(target: Position, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closedNow) return false;
    // Just become primary: follow them now, not at the next look.
    if (!this.following && this.active()) void this.refresh();
    if (reached(this.highest(), target)) return true;
    if (timeoutMs <= 0 || signal?.aborted) return false;
    const started = performance.now();
    const waiting = this.waiters.add(target, timeoutMs, signal);
    this.markIfUnknown();
    const confirmed = await waiting;
    if (!confirmed && !signal?.aborted && !this.closedNow) {
      for (const follower of this.followers.values()) if (follower.heardAt < started) follower.reconnect();
    }
    return confirmed;
  }

  close(): void {
    this.closedNow = true;
    clearInterval(this.timer);
    for (const follower of this.followers.values()) follower.close();
    this.followers.clear();
    this.waiters.clear();
  }

  /**
   * A standby that follows us but has reported no position since its stream
   * opened cannot prove anything until we commit again, and a write sent
   * again (a publish that finds its draft) commits nothing: commit a marker,
   * once per such stream, while someone waits.
   */
  private markIfUnknown(): void {
    const { mark, self } = this.options;
    if (!mark || this.waiters.size === 0) return;
    const unknown = [...this.followers.values()].filter(({ state }) => followsUs(state, self) && state.position === null && !state.marked);
    if (unknown.length === 0) return;
    try {
      mark();
    } catch {
      // The database refused it (busy): the next wait tries again.
      return;
    }
    for (const { state } of unknown) state.marked = true;
  }

  /** Looks at the standbys again, one look at a time: none while inactive; a DNS name's addresses. */
  private refresh(): Promise<void> {
    this.refreshing ??= this.look().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async look(): Promise<void> {
    if (this.closedNow) return;
    if (!this.active()) {
      this.following = false;
      return this.follow([]);
    }
    this.following = true;
    const list = this.options.standbys;
    if (!('dns' in list)) return this.follow(list.map((url) => new URL(url)));
    const { dns, port } = list;
    let addresses: string[];
    try {
      addresses = await (this.options.resolve ?? lookupAll)(dns);
    } catch {
      // A failed lookup keeps the standbys known so far: DNS hiccups must not drop them.
      return;
    }
    if (!this.closedNow && this.active()) this.follow(oneFamily(addresses).map((address) => standbyUrl(address, port)));
  }

  /** Follows exactly `urls`: new ones are subscribed to, ones no longer listed are dropped. */
  private follow(urls: URL[]): void {
    const wanted = new Map(urls.map((url) => [url.href, url]));
    for (const [href, follower] of this.followers) {
      if (wanted.has(href)) continue;
      follower.close();
      this.followers.delete(href);
    }
    for (const [href, url] of wanted) {
      if (this.followers.has(href)) continue;
      this.followers.set(
        href,
        new StandbyFollower(url, this.options.database, {
          applied: (state) => {
            if (confirms(state, this.options.self)) this.waiters.advance(state.position);
          },
          changed: () => this.markIfUnknown(),
          onState: this.options.onState,
        }),
      );
    }
  }
}

/** One standby's `/events` stream, kept open, and what it said last. */
class StandbyFollower {
  readonly state: StandbyState = { connected: false, isPrimary: false, primary: null, position: null, marked: false };
  private readonly stream: EventStream;

  constructor(
    private readonly url: URL,
    private readonly database: string,
    private readonly hooks: {
      applied: (state: StandbyState) => void;
      /** It said whom it follows (`init`, `primaryChange`). */
      changed: () => void;
      onState?: (standby: URL, connected: boolean) => void;
    },
  ) {
    this.stream = new EventStream({
      api: url,
      reconnectMinMs: STANDBY_RECONNECT_MIN_MS,
      reconnectMaxMs: STANDBY_RECONNECT_MAX_MS,
      keepAliveMs: STANDBY_KEEPALIVE_MS,
      maxLineBytes: STANDBY_MAX_LINE_BYTES,
      onEvent: (event) => this.onEvent(event),
      onLost: () => this.lost(),
    });
  }

  /** When its stream last sent anything (performance.now()). */
  get heardAt(): number {
    return this.stream.heardAt;
  }

  close(): void {
    this.stream.close();
    this.state.connected = false;
  }

  /** Drops the stream (it may be dead without having said so) and opens it again after the usual pause. */
  reconnect(): void {
    this.stream.reconnect();
  }

  private onEvent(event: LiteFSEvent): void {
    if (event.type === 'tx') {
      // While it is primary its TXIDs are its own commits, not ours.
      if (event.db !== this.database || this.state.isPrimary) return;
      this.state.position = event.txid;
      this.hooks.applied(this.state);
      return;
    }
    // Whom it follows now; whatever it applied before may be of another lineage.
    this.state.isPrimary = event.isPrimary;
    this.state.primary = event.isPrimary ? null : event.hostname;
    this.state.position = null;
    this.state.marked = false;
    if (event.type === 'init') {
      this.state.connected = true;
      this.hooks.onState?.(this.url, true);
    }
    this.hooks.changed();
  }

  private lost(): void {
    const was = this.state.connected;
    this.state.connected = false;
    this.state.primary = null;
    this.state.position = null;
    if (was) this.hooks.onState?.(this.url, false);
  }
}
