import http from 'node:http';
import { parseTxid } from '../../src/ryw/position.js';

/**
 * Follows one node's LiteFS `/events` stream and notes when each TXID of the
 * database arrived there: the moment "the replica's position reached the
 * token" that wake-up latencies are measured from.
 */
export class LiteFSEvents {
  private latest = -1n;
  private readonly waiting: { target: bigint; resolve: (at: number) => void }[] = [];
  private readonly req: http.ClientRequest;
  private ready!: () => void;
  /** Resolves once the stream's `init` event arrived. */
  readonly connected = new Promise<void>((resolve) => (this.ready = resolve));

  constructor(
    apiUrl: string,
    private readonly database = 'app.db',
  ) {
    this.req = http.get(`${apiUrl}/events`, (res) => {
      res.setEncoding('utf8');
      let buffered = '';
      res.on('data', (chunk: string) => {
        const at = performance.now();
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) !== -1) {
          this.onLine(buffered.slice(0, newline), at);
          buffered = buffered.slice(newline + 1);
        }
      });
    });
    this.req.on('error', () => {});
  }

  /** Starts from a position read elsewhere (the pos file): the stream only tells of changes. */
  seed(txid: bigint): void {
    if (txid > this.latest) this.latest = txid;
  }

  /** The highest TXID seen so far. */
  get position(): bigint {
    return this.latest;
  }

  /** When the node reached `target` (performance.now()); resolves at once with -Infinity if it already had. */
  reached(target: bigint): Promise<number> {
    if (this.latest >= target) return Promise.resolve(-Infinity);
    return new Promise((resolve) => this.waiting.push({ target, resolve }));
  }

  close(): void {
    this.req.destroy();
  }

  private onLine(line: string, at: number): void {
    let event: { type?: string; db?: string; data?: { txID?: string } };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return;
    }
    if (event.type === 'init') this.ready();
    if (event.type !== 'tx' || event.db !== this.database || typeof event.data?.txID !== 'string') return;
    const txid = parseTxid(event.data.txID);
    if (txid === null) return;
    this.latest = txid > this.latest ? txid : this.latest;
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const waiter = this.waiting[i]!;
      if (txid >= waiter.target) {
        this.waiting.splice(i, 1);
        waiter.resolve(at);
      }
    }
  }
}
