import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { killGroup, spawnLogged, type Spawned } from './child-process.js';
import {
  DATABASE_NAME,
  nodeAppEnv,
  parseLagFile,
  parsePosFile,
  type ClusterNode,
  type EnvOverrides,
  type ReplicationPosition,
} from './cluster.js';
import { renderLiteFsConfig, type LiteFsLease } from './litefs-config.js';
import { unmount } from './mounts.js';
import { PROJECT_ROOT } from './tools.js';

/** The image's entrypoint (src/mount.ts) as a node runs it here: Node's arguments before `-- litefs mount …`. */
export const MOUNT_SUPERVISOR: readonly string[] = ['--import', 'tsx', join(PROJECT_ROOT, 'src', 'mount.ts')];
/** How long a node gets from `litefs mount` to an app answering `/healthz`. */
export const DEFAULT_NODE_START_TIMEOUT_MS = 60_000;
/** How long a SIGKILLed LiteFS gets to be reaped (it takes milliseconds; more means a process stuck in the kernel). */
export const DEFAULT_KILL_TIMEOUT_MS = 10_000;
/** How often positions are polled from the `-pos` file while waiting. */
export const POSITION_POLL_MS = 5;

export interface NodeSpec {
  readonly region: string;
  readonly instance: string;
  /** Whether it may hold the primary's lease. */
  readonly candidate: boolean;
  /** Whether it holds the lease now (the cluster follows the lease; static: fixed). */
  readonly isPrimary: () => boolean;
  /** This node's directory: config, log, `mnt/`, `data/`. */
  readonly dir: string;
  readonly appPort: number;
  readonly apiPort: number;
  /** LiteFS's own proxy in front of the app on this port (benchmarks only); none when absent. */
  readonly proxy?: { readonly port: number; readonly passthrough?: readonly string[] };
  /** LiteFS's `exit-on-error`; LiteFS's default (true) when absent. */
  readonly exitOnError?: boolean;
  /** The lease section of its litefs.yml: static (where the primary is) or Consul (its view). */
  readonly lease: LiteFsLease;
  /** The app's command line; LiteFS execs it once the node is ready. */
  readonly appCommand: readonly string[];
  readonly cwd: string;
  /** The environment every node shares (RYW_SECRET, …), with this node's own additions (RYW_STANDBYS). */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** Called as soon as LiteFS has a pid: a crash from here on must be cleanable. */
  readonly onSpawn?: () => Promise<void>;
  /** Called when LiteFS (and so the app: LiteFS exits with it) exits without being asked to. */
  readonly onUnexpectedExit?: (code: number | string) => void;
}

/** What a node's LiteFS says of itself (`GET /info`). */
export interface LiteFsInfo {
  readonly isPrimary: boolean;
  readonly candidate: boolean;
  /** The primary it follows (connecting or connected), by lease hostname; null on the primary. */
  readonly primary: string | null;
}

export interface NodeTools {
  readonly litefs: string;
  readonly fusermount: string;
}

/** One `litefs mount` process and the app it execs. */
export class ProcessNode implements ClusterNode {
  readonly region: string;
  readonly instance: string;
  readonly candidate: boolean;
  readonly appUrl: string;
  readonly litefsApiUrl: string;
  /** LiteFS's built-in proxy in front of the app, when the spec asked for one (benchmarks). */
  readonly proxyUrl: string | null;
  readonly mountDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  private process: Spawned | null = null;
  /** Set once the app answered `/healthz` after a start, cleared when it stops, is killed or exits. */
  private healthy = false;
  private overrides: EnvOverrides = {};

  constructor(
    private readonly spec: NodeSpec,
    private readonly tools: NodeTools,
  ) {
    this.region = spec.region;
    this.instance = spec.instance;
    this.candidate = spec.candidate;
    this.appUrl = `http://127.0.0.1:${spec.appPort}`;
    this.litefsApiUrl = `http://127.0.0.1:${spec.apiPort}`;
    this.proxyUrl = spec.proxy ? `http://127.0.0.1:${spec.proxy.port}` : null;
    this.mountDir = join(spec.dir, 'mnt');
    this.dataDir = join(spec.dir, 'data');
    this.logFile = join(spec.dir, 'node.log');
  }

  get pid(): number | null {
    return this.process?.pid ?? null;
  }

  get isPrimary(): boolean {
    return this.spec.isPrimary();
  }

  /** Running and healthy: started, and not stopped, killed or exited since. */
  get live(): boolean {
    return this.process !== null && this.healthy;
  }

  /** LiteFS runs (maybe still starting). */
  get running(): boolean {
    return this.process !== null;
  }

  /** The environment changes of its last start: what a crashed machine comes back with. */
  get lastOverrides(): EnvOverrides {
    return this.overrides;
  }

  /** The environment the app gets: the contract of src/config.ts. */
  env(): Record<string, string> {
    const env = nodeAppEnv(this, this.spec.appPort, this.mountDir, this.spec.baseEnv);
    for (const [name, value] of Object.entries(this.overrides)) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    return env;
  }

  /**
   * Mounts, execs the app and resolves once the app answers `/healthz`. An
   * aborted `signal` stops the node (if it got as far as spawning LiteFS)
   * and rejects with the signal's reason.
   */
  async start(
    overrides: EnvOverrides = {},
    { timeoutMs = DEFAULT_NODE_START_TIMEOUT_MS, signal }: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (this.process) throw new Error(`${this.instance} is already running`);
    this.overrides = overrides;
    // A killed node leaves its FUSE mount behind ("Transport endpoint is not
    // connected"): `litefs mount` cleans it up itself, as after a real crash.
    await mkdir(this.mountDir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTCONN' && err.code !== 'EEXIST') throw err;
    });
    await mkdir(this.dataDir, { recursive: true });
    const configFile = join(this.spec.dir, 'litefs.yml');
    await writeFile(
      configFile,
      renderLiteFsConfig({
        mountDir: this.mountDir,
        dataDir: this.dataDir,
        httpAddr: `127.0.0.1:${this.spec.apiPort}`,
        lease: this.spec.lease,
        exec: this.spec.appCommand,
        ...(this.spec.exitOnError !== undefined ? { exitOnError: this.spec.exitOnError } : {}),
        ...(this.spec.proxy
          ? {
              proxy: {
                addr: `127.0.0.1:${this.spec.proxy.port}`,
                target: `127.0.0.1:${this.spec.appPort}`,
                db: DATABASE_NAME,
                passthrough: this.spec.proxy.passthrough,
              },
            }
          : {}),
      }),
    );
    await appendLog(this.logFile, `--- ${new Date().toISOString()} starting ${this.instance}\n`);
    // LiteFS hands its whole environment to the app it execs.
    const env: NodeJS.ProcessEnv = { ...cleanParentEnv(), ...this.env() };
    // Checked right before the spawn, with no await between: an abort either
    // comes first (nothing to stop) or finds the process to stop.
    signal?.throwIfAborted();
    // As the image runs it (Dockerfile): LiteFS under the mount supervisor, which
    // lets a node whose LiteFS refuses its database after a crash rejoin.
    this.process = spawnLogged(
      process.execPath,
      [...MOUNT_SUPERVISOR, '--', this.tools.litefs, 'mount', '-config', configFile, '-no-expand-env'],
      {
        cwd: this.spec.cwd,
        env,
        logFile: this.logFile,
      },
    );
    const spawned = this.process;
    void spawned.exited.then((code) => {
      if (this.process !== spawned) return;
      // Nobody asked: the node is down, and whatever LiteFS left in its group goes too.
      this.process = null;
      this.healthy = false;
      killGroup(spawned.pid, 'SIGKILL');
      this.spec.onUnexpectedExit?.(code);
    });
    try {
      await this.spec.onSpawn?.();
      await this.waitHealthy(spawned, timeoutMs, signal);
      if (this.process === spawned) this.healthy = true;
    } catch (err) {
      if (signal?.aborted && this.process === spawned) await this.stop();
      throw signal?.aborted ? signal.reason : err;
    }
  }

  /** Stops the app and LiteFS (which unmounts), and makes sure the mount is gone. */
  async stop(): Promise<void> {
    const running = this.process;
    this.process = null;
    this.healthy = false;
    if (running) await running.stop();
    await unmount(this.tools.fusermount, this.mountDir);
  }

  /**
   * A crash: SIGKILL to the node's process group (the mount supervisor,
   * LiteFS and the app it exec'd), nothing released, the mount left dead.
   * Resolves once the group's leader, the supervisor, is gone.
   */
  async kill(timeoutMs = DEFAULT_KILL_TIMEOUT_MS): Promise<void> {
    const running = this.process;
    if (!running) throw new Error(`${this.instance} is not running`);
    this.process = null;
    this.healthy = false;
    killGroup(running.pid, 'SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.instance}: the mount supervisor (pid ${running.pid}) still there ${timeoutMs} ms after SIGKILL`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([running.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** LiteFS's `/info` (`isPrimary`, `candidate`, the primary it follows), or null when it does not answer. */
  async info(): Promise<LiteFsInfo | null> {
    if (!this.process) return null;
    try {
      const res = await fetch(`${this.litefsApiUrl}/info`, { signal: AbortSignal.timeout(1000) });
      if (!res.ok) return null;
      const body = (await res.json()) as { isPrimary?: unknown; candidate?: unknown; primary?: { hostname?: unknown } };
      return {
        isPrimary: body.isPrimary === true,
        candidate: body.candidate === true,
        primary: typeof body.primary?.hostname === 'string' && body.primary.hostname !== '' ? body.primary.hostname : null,
      };
    } catch {
      return null;
    }
  }

  /** Removes the database but keeps the cluster id, so replicas still accept this node. */
  async wipeData(): Promise<void> {
    if (this.process) throw new Error(`stop ${this.instance} before wiping its data`);
    for (const entry of await readdir(this.dataDir).catch(() => [] as string[])) {
      if (entry === 'clusterid') continue;
      await rm(join(this.dataDir, entry), { recursive: true, force: true });
    }
  }

  async position(): Promise<ReplicationPosition | null> {
    const content = await readFile(join(this.mountDir, `${DATABASE_NAME}-pos`), 'utf8').catch(() => null);
    return content === null ? null : parsePosFile(content);
  }

  async lagMs(): Promise<number | null> {
    const content = await readFile(join(this.mountDir, '.lag'), 'utf8').catch(() => null);
    return content === null ? null : parseLagFile(content);
  }

  async waitForPosition(txid: bigint, timeoutMs: number): Promise<ReplicationPosition> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const pos = await this.position();
      if (pos && pos.txid >= txid) return pos;
      if (Date.now() > deadline) {
        throw new Error(`${this.instance} did not reach TXID ${txid} within ${timeoutMs} ms (at ${pos?.txid ?? 'none'})`);
      }
      await sleep(POSITION_POLL_MS);
    }
  }

  private async waitHealthy(process: Spawned, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // An object, not a `let`: set from the callback, which the compiler's narrowing cannot see.
    const exit: { code: number | string | null } = { code: null };
    void process.exited.then((code) => {
      exit.code = code;
    });
    for (;;) {
      signal?.throwIfAborted();
      if (exit.code !== null) {
        throw new Error(`${this.instance}: litefs exited (${exit.code}) before the app was healthy:\n${await tail(this.logFile)}`);
      }
      try {
        const timeout = AbortSignal.timeout(1000);
        const res = await fetch(`${this.appUrl}/healthz`, { signal: signal ? AbortSignal.any([timeout, signal]) : timeout });
        if (res.ok) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.instance}: app not healthy within ${timeoutMs} ms:\n${await tail(this.logFile)}`);
      }
      await sleep(100);
    }
  }
}

/**
 * The parent's environment without what would change the app's behaviour
 * behind the cluster's back (a test runner's variables, a developer's own
 * DATABASE_URL and friends).
 */
function cleanParentEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(VITEST|NODE_ENV$|PORT$|DATABASE_URL$|FLY_|LITEFS_|RYW_|MIGRATE_TOKEN$|TEST$)/.test(name)) continue;
    env[name] = value;
  }
  return env;
}

async function appendLog(file: string, line: string): Promise<void> {
  await writeFile(file, line, { flag: 'a' });
}

/** The end of a node's log, for error messages that say why it failed. */
export async function tail(file: string, lines = 30): Promise<string> {
  const content = await readFile(file, 'utf8').catch(() => '');
  return content.split('\n').slice(-lines).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
