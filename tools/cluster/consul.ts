/**
 * The cluster's Consul: one `consul agent -dev` on 127.0.0.1 (in memory, every
 * port its own free one), the lease LiteFS elects its primary with, and a
 * watch on the lease key that records every change of its holder. Consul
 * v1.16.0 (MPL-2.0), built by `npm run setup:cluster` (docs/decisions/0009).
 */
import { join } from 'node:path';
import { spawnLogged, type Spawned } from './child-process.js';
import type { PrimaryChange } from './cluster.js';

/** The KV key LiteFS's lease lives in (its value names the holder). */
export const LEASE_KEY = 'litefs/primary';
/**
 * Short enough for tests (a crashed primary is replaced within about 3 s:
 * Consul expires a session after twice its TTL), steady enough on 2 busy
 * cores (seen here for minutes). Production keeps LiteFS's 10 s / 1 s.
 */
export const DEFAULT_LEASE_TTL_MS = 1000;
export const DEFAULT_LOCK_DELAY_MS = 100;
/**
 * LiteFS's default is 1 s; every failed attempt to reach or become the
 * primary waits this long, and a failover takes one or two of them.
 */
export const DEFAULT_RECONNECT_DELAY_MS = 500;
/** How long the agent gets to elect itself leader. */
const CONSUL_START_TIMEOUT_MS = 20_000;
/** A blocking query's longest wait (Consul caps it at 10 minutes). */
const WATCH_WAIT_S = 30;

/** Consul's ports, all given so that two clusters on one machine never collide. */
export interface ConsulPorts {
  readonly http: number;
  readonly dns: number;
  readonly serfLan: number;
  readonly serfWan: number;
  readonly server: number;
  readonly grpc: number;
  readonly grpcTls: number;
}
export const CONSUL_PORT_COUNT = 7;

export function consulPorts(next: () => number): ConsulPorts {
  return { http: next(), dns: next(), serfLan: next(), serfWan: next(), server: next(), grpc: next(), grpcTls: next() };
}

export interface ConsulAgent {
  readonly url: string;
  readonly process: Spawned;
  stop(): Promise<void>;
}

/** Starts the agent and resolves once it has a leader (it answers KV requests from then on). */
export async function startConsul(binary: string, ports: ConsulPorts, dir: string, signal?: AbortSignal): Promise<ConsulAgent> {
  const args = [
    'agent',
    '-dev',
    '-client',
    '127.0.0.1',
    '-bind',
    '127.0.0.1',
    '-node',
    'litefs-cluster',
    `-http-port=${ports.http}`,
    '-https-port=-1',
    `-dns-port=${ports.dns}`,
    `-serf-lan-port=${ports.serfLan}`,
    `-serf-wan-port=${ports.serfWan}`,
    `-server-port=${ports.server}`,
    `-grpc-port=${ports.grpc}`,
    `-grpc-tls-port=${ports.grpcTls}`,
    // Sessions shorter than 10 s are refused otherwise, and no node becomes primary.
    '-hcl',
    'session_ttl_min = "1s"',
    '-log-level=warn',
  ];
  const spawned = spawnLogged(binary, args, { cwd: dir, env: process.env, logFile: join(dir, 'consul.log') });
  const url = `http://127.0.0.1:${ports.http}`;
  const deadline = Date.now() + CONSUL_START_TIMEOUT_MS;
  for (;;) {
    if (signal?.aborted) {
      await spawned.stop();
      throw signal.reason;
    }
    const leader: unknown = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(1000) })
      .then((res) => (res.ok ? (res.json() as Promise<unknown>) : ''))
      .catch(() => '');
    if (typeof leader === 'string' && leader !== '') break;
    if (Date.now() > deadline) {
      await spawned.stop();
      throw new Error(`consul has no leader within ${CONSUL_START_TIMEOUT_MS} ms; see ${join(dir, 'consul.log')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, process: spawned, stop: () => spawned.stop() };
}

/** Who holds the lease, as LiteFS wrote it into the key: its hostname (our instance), or null. */
export function holderOf(kvAnswer: unknown): string | null {
  if (!Array.isArray(kvAnswer) || kvAnswer.length === 0) return null;
  const value = (kvAnswer[0] as { Value?: unknown }).Value;
  if (typeof value !== 'string' || value === '') return null;
  try {
    const info = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as { hostname?: unknown };
    return typeof info.hostname === 'string' && info.hostname !== '' ? info.hostname : null;
  } catch {
    return null;
  }
}

/**
 * Follows the lease key with Consul's blocking queries: `holder()` is who
 * holds it now, `changes()` every change seen, in order. A key deleted (the
 * holder's session expired or was destroyed) is "nobody".
 */
export class LeaseWatch {
  private current: string | null = null;
  private readonly seen: PrimaryChange[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(
    private readonly consulUrl: string,
    private readonly key: string = LEASE_KEY,
  ) {}

  /** Starts following; resolves after the first answer, so `holder()` is current. */
  async start(): Promise<void> {
    let index = 0;
    const first = await this.poll(index);
    index = first.index;
    this.update(first.holder);
    this.loop = (async () => {
      while (!this.stopping.signal.aborted) {
        try {
          const next = await this.poll(index);
          // An index that went backwards (an agent restart) starts over.
          index = next.index < index ? 0 : next.index;
          this.update(next.holder);
        } catch {
          if (this.stopping.signal.aborted) return;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
  }

  holder(): string | null {
    return this.current;
  }

  changes(): readonly PrimaryChange[] {
    return [...this.seen];
  }

  /** Calls `listener` on every change of the holder; returns how to stop. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  private update(holder: string | null): void {
    if (holder === this.current) return;
    this.seen.push({ at: new Date().toISOString(), from: this.current, to: holder });
    this.current = holder;
    for (const listener of this.listeners) listener();
  }

  private async poll(index: number): Promise<{ index: number; holder: string | null }> {
    const query = index > 0 ? `?index=${index}&wait=${WATCH_WAIT_S}s` : '';
    const res = await fetch(`${this.consulUrl}/v1/kv/${this.key}${query}`, {
      signal: AbortSignal.any([this.stopping.signal, AbortSignal.timeout((WATCH_WAIT_S + 5) * 1000)]),
    });
    const next = Number(res.headers.get('x-consul-index') ?? '0');
    if (res.status === 404) {
      await res.body?.cancel();
      return { index: next, holder: null };
    }
    if (!res.ok) throw new Error(`consul GET ${this.key}: ${res.status}`);
    return { index: next, holder: holderOf(await res.json()) };
  }
}
