/**
 * LiteFS configuration for one node of a static-lease cluster. With a static
 * lease there is no election: the primary is fixed, and replicas are told its
 * hostname and where to stream from. Each replica streams through its own
 * Toxiproxy listener, which is where lag and cuts are injected.
 */

export interface LiteFsNodeConfig {
  readonly mountDir: string;
  readonly dataDir: string;
  /** The node's LiteFS API, e.g. `127.0.0.1:20202`. */
  readonly httpAddr: string;
  readonly isPrimary: boolean;
  /** The primary's lease hostname: what replicas write into `.primary`. */
  readonly primaryHostname: string;
  /** Where this node reaches the primary: its own Toxiproxy listener on a replica. */
  readonly primaryAdvertiseUrl: string;
  /** The app, exec'ed once the node is ready; LiteFS forwards signals to it. */
  readonly exec: readonly string[];
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
    lease: {
      type: 'static',
      candidate: node.isPrimary,
      hostname: node.primaryHostname,
      'advertise-url': node.primaryAdvertiseUrl,
    },
    // LiteFS's own proxy stays off (the app decides consistency itself), except in bench configs.
    ...(node.proxy ? { proxy: { addr: node.proxy.addr, target: node.proxy.target, db: node.proxy.db, passthrough: node.proxy.passthrough ?? [] } } : {}),
    exec: [{ cmd: node.exec.map(shellQuote).join(' ') }],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** Quotes one argument for LiteFS's shellwords parser. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_\-./:=@,+]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`;
}
