/**
 * LiteFS configuration for one node of a local cluster, on either lease.
 *
 * - `static`: no election. The primary is fixed; replicas are told its
 *   hostname and where to stream from (their own Toxiproxy listener).
 * - `consul`: LiteFS elects the primary through a Consul lease, as on Fly.io.
 *   Each node advertises its own API; what a replica streams through is
 *   decided by the Consul view it is pointed at (consul-view.ts), which shows
 *   it the primary's address as its own Toxiproxy listener.
 */

/** The lease section of one node, by kind. */
export type LiteFsLease =
  | {
      readonly type: 'static';
      /** True on the primary only: a static candidate is the primary. */
      readonly candidate: boolean;
      /** The primary's lease hostname: what replicas write into `.primary`. */
      readonly primaryHostname: string;
      /** Where this node reaches the primary: its own Toxiproxy listener on a replica. */
      readonly primaryAdvertiseUrl: string;
    }
  | {
      readonly type: 'consul';
      readonly candidate: boolean;
      /** This node's name in the lease: what replicas write into `.primary` while it is primary. */
      readonly hostname: string;
      /** This node's own API, as the lease records it. */
      readonly advertiseUrl: string;
      /** The Consul this node talks to (its view of the cluster's agent). */
      readonly consulUrl: string;
      readonly key: string;
      readonly ttlMs: number;
      readonly lockDelayMs: number;
      /** How long a node waits between attempts to reach or become the primary. */
      readonly reconnectDelayMs: number;
    };

export interface LiteFsNodeConfig {
  readonly mountDir: string;
  readonly dataDir: string;
  /** The node's LiteFS API, e.g. `127.0.0.1:20202`. */
  readonly httpAddr: string;
  readonly lease: LiteFsLease;
  /** The app, exec'ed once the node is ready; LiteFS forwards signals to it. */
  readonly exec: readonly string[];
  /** `exit-on-error`; LiteFS's default (true) when absent. */
  readonly exitOnError?: boolean;
  /**
   * LiteFS's built-in proxy in front of the app, for benchmarks that compare
   * against it (bench/); never in the clusters the app runs in.
   */
  readonly proxy?: LiteFsProxyConfig;
}

/** The `proxy:` section of litefs.yml (LiteFS `cmd/litefs/config.go`). */
export interface LiteFsProxyConfig {
  /** Where the proxy listens, e.g. `127.0.0.1:8090`. */
  readonly addr: string;
  /** The app it forwards to, e.g. `127.0.0.1:8080`. */
  readonly target: string;
  /** The database whose TXID its `__txid` cookie tracks. */
  readonly db: string;
  /** Path globs (`*` only) sent straight to the app. */
  readonly passthrough?: readonly string[];
}

/**
 * Renders the config as JSON, which is valid YAML: no YAML library, no quoting
 * rules to get wrong. Mount with `-no-expand-env` so a `$` in a path stays one.
 */
export function renderLiteFsConfig(node: LiteFsNodeConfig): string {
  const config = {
    fuse: { dir: node.mountDir },
    data: { dir: node.dataDir },
    http: { addr: node.httpAddr },
    lease: leaseSection(node.lease),
    // LiteFS's own proxy stays off (the app decides consistency itself), except in bench configs.
    ...(node.proxy
      ? { proxy: { addr: node.proxy.addr, target: node.proxy.target, db: node.proxy.db, passthrough: node.proxy.passthrough ?? [] } }
      : {}),
    exec: [{ cmd: node.exec.map(shellQuote).join(' ') }],
    ...(node.exitOnError !== undefined ? { 'exit-on-error': node.exitOnError } : {}),
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

function leaseSection(lease: LiteFsLease): Record<string, unknown> {
  if (lease.type === 'static') {
    return { type: 'static', candidate: lease.candidate, hostname: lease.primaryHostname, 'advertise-url': lease.primaryAdvertiseUrl };
  }
  return {
    type: 'consul',
    hostname: lease.hostname,
    'advertise-url': lease.advertiseUrl,
    candidate: lease.candidate,
    // Not on a restart: a node that comes back rejoins as a replica, and the
    // lease moves only when asked (`handoff`, LiteFS's POST /promote), or when
    // its holder dies. Production's litefs.yml promotes on deploy instead.
    promote: false,
    'reconnect-delay': duration(lease.reconnectDelayMs),
    consul: { url: lease.consulUrl, key: lease.key, ttl: duration(lease.ttlMs), 'lock-delay': duration(lease.lockDelayMs) },
  };
}

/** A Go duration (`time.ParseDuration`), e.g. `1000ms`. */
function duration(ms: number): string {
  return `${ms}ms`;
}

/** Quotes one argument for LiteFS's shellwords parser. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_\-./:=@,+]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`;
}
