import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as requestTls } from 'node:https';
import { parseTxid, type Position } from '../position.js';
import { isLeaseHostname } from './files.js';

/**
 * One event of LiteFS's `/events` stream, as much of it as we use: whether
 * the node is primary and whom it follows (`init` on each new stream,
 * `primaryChange`), and each transaction it applied (`tx`).
 */
export type LiteFSEvent =
  | {
      type: 'init' | 'primaryChange';
      isPrimary: boolean;
      /** The primary's lease hostname; null when LiteFS names none (a replica cut off) or names something that is not a hostname. */
      hostname: string | null;
    }
  | {
      type: 'tx';
      /** The database's file name in the mount (`app.db`). */
      db: string;
      txid: Position;
      /** The database's checksum after the transaction (16 hex digits); null when missing or malformed. */
      checksum: string | null;
    };

const CHECKSUM = /^[0-9a-f]{16}$/;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/**
 * Parses one line of `/events`. Anything we cannot use (not JSON, another
 * event type, a `tx` without a well-formed TXID or database) is null, never
 * an error: the stream goes on.
 */
export function parseEvent(line: string): LiteFSEvent | null {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(event)) return null;
  const data = isRecord(event.data) ? event.data : {};
  const { type } = event;
  if (type === 'init' || type === 'primaryChange') {
    const { hostname } = data;
    return {
      type,
      isPrimary: data.isPrimary === true,
      hostname: typeof hostname === 'string' && isLeaseHostname(hostname) ? hostname : null,
    };
  }
  if (type !== 'tx' || typeof event.db !== 'string' || typeof data.txID !== 'string') return null;
  const txid = parseTxid(data.txID);
  if (txid === null) return null;
  const sum = data.postApplyChecksum;
  return { type, db: event.db, txid, checksum: typeof sum === 'string' && CHECKSUM.test(sum) ? sum : null };
}

export interface EventStreamOptions {
  /** LiteFS's HTTP API (http or https): the stream is `<api>/events`. */
  api: URL;
  /**
   * First and longest pause before opening the stream again after a loss:
   * it doubles after each loss, and is back to the first after each `init`
   * (a stream that got that far was healthy).
   */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** TCP keep-alive's first probe delay on the connection (LiteFS sends no heartbeat); none when unset. */
  keepAliveMs?: number;
  /** More than this without a newline drops the stream (and opens it again); no bound when unset. */
  maxLineBytes?: number;
  /** Each event parsed, in order; lines we cannot use are skipped. */
  onEvent: (event: LiteFSEvent) => void;
  /**
   * The stream was lost and will be opened again after the pause: a failed
   * connection, a status other than 200, its end or error, an overlong line,
   * reconnect(). Not called by close().
   */
  onLost: () => void;
}

/**
 * One LiteFS `/events` stream, kept open: connects, frames its
 * newline-delimited JSON into events, and opens it again with back-off
 * whenever it is lost, until closed. Only the current request is listened
 * to: whatever a dropped one still delivers is ignored.
 */
export class EventStream {
  private stream: ClientRequest | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectDelay: number;
  private closed = false;
  private lastHeard = 0;

  constructor(private readonly options: EventStreamOptions) {
    this.reconnectDelay = options.reconnectMinMs;
    this.connect();
  }

  /** When the stream last sent anything (performance.now()); 0 before it ever did. */
  get heardAt(): number {
    return this.lastHeard;
  }

  /** Drops the stream (it may be dead without having said so) and opens it again after the usual pause. */
  reconnect(): void {
    if (this.stream) this.disconnected(this.stream);
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const stream = this.stream;
    this.stream = null;
    stream?.destroy();
  }

  private connect(): void {
    const url = new URL('/events', this.options.api);
    const send = url.protocol === 'https:' ? requestTls : request;
    const req = send(url, { headers: { accept: 'application/x-ndjson' } }, (res) => this.consume(req, res));
    this.stream = req;
    const { keepAliveMs } = this.options;
    if (keepAliveMs !== undefined) req.on('socket', (socket) => socket.setKeepAlive(true, keepAliveMs));
    req.on('error', () => this.disconnected(req));
    req.end();
  }

  private consume(req: ClientRequest, res: IncomingMessage): void {
    if (req !== this.stream || res.statusCode !== 200) {
      res.resume();
      return this.disconnected(req);
    }
    res.setEncoding('utf8');
    let buffered = '';
    res.on('data', (chunk: string) => {
      if (req !== this.stream) return;
      this.lastHeard = performance.now();
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) !== -1) {
        const event = parseEvent(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        if (event === null) continue;
        if (event.type === 'init') this.reconnectDelay = this.options.reconnectMinMs;
        try {
          this.options.onEvent(event);
        } catch {
          // Never expected (a bug in a listener); thrown from a socket's listener it would end the
          // process. The stream is dropped and opened again: its next `init` says where things are.
          return this.disconnected(req);
        }
        // A listener may have dropped or closed the stream.
        if (req !== this.stream) return;
      }
      if (buffered.length > (this.options.maxLineBytes ?? Infinity)) this.disconnected(req);
    });
    res.on('end', () => this.disconnected(req));
    res.on('error', () => this.disconnected(req));
  }

  private disconnected(req: ClientRequest): void {
    if (req !== this.stream) return;
    this.stream = null;
    req.destroy();
    try {
      this.options.onLost();
    } catch {
      // As in onEvent: a listener's bug must neither end the process nor stop the reconnection.
    }
    if (this.closed) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closed) this.connect();
    }, this.reconnectDelay);
    this.reconnectTimer.unref();
    this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.options.reconnectMaxMs);
  }
}
