import { createWriteStream, type WriteStream } from 'node:fs';
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer } from 'testcontainers';
import {
  DATABASE_NAME,
  nodeAppEnv,
  parseLagFile,
  parsePosFile,
  type ClusterNode,
  type EnvOverrides,
  type ReplicationPosition,
} from './cluster.js';
import { renderLiteFsConfig, shellQuote } from './litefs-config.js';
import { DEFAULT_NODE_START_TIMEOUT_MS, tail } from './node-process.js';

/** Where the app image mounts LiteFS and keeps its data (as in the project's litefs.yml). */
export const CONTAINER_MOUNT_DIR = '/litefs';
export const CONTAINER_DATA_DIR = '/var/lib/litefs';
/** The test's static-lease config and start script, copied into each node's container. */
const CONFIG_PATH = '/etc/litefs-test/litefs.yml';
const START_SCRIPT_PATH = '/etc/litefs-test/start.sh';
/** The image's entrypoint (Dockerfile), which a node's start script ends in. */
const MOUNT_SUPERVISOR = '/app/dist/mount.js';
/** The app as the image runs it (the last `exec` of the project's litefs.yml). */
export const CONTAINER_APP_COMMAND: readonly string[] = ['node', '/app/dist/main.js'];
/** Seconds `docker stop`/`restart` give LiteFS (and the app it forwards SIGTERM to) before SIGKILL. */
export const DEFAULT_CONTAINER_STOP_TIMEOUT_S = 10;
/** Between checks of `/healthz` while a node starts; the container's state is checked every tenth. */
const HEALTH_POLL_MS = 100;
/**
 * How often `waitForPosition` also reads the `-pos` file (a `docker exec`,
 * tens of ms) besides following LiteFS's `/events`, which is what makes it
 * prompt: the file read only covers an event stream that broke.
 */
const POSITION_RECHECK_MS = 250;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Labels every container of a container cluster carries, for finding a crashed run's leftovers. */
export const CLUSTER_LABEL = 'org.litefs-ryw.cluster';
export const OWNER_PID_LABEL = 'org.litefs-ryw.owner-pid';
export const OWNER_HOST_LABEL = 'org.litefs-ryw.owner-host';

export interface ContainerNodeSpec {
  readonly region: string;
  readonly instance: string;
  readonly isPrimary: boolean;
  readonly image: string;
  readonly containerName: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Host networking: these ports are on 127.0.0.1 of the machine itself. */
  readonly appPort: number;
  readonly apiPort: number;
  readonly primaryHostname: string;
  /** The primary's LiteFS API as this node reaches it (its Toxiproxy listener on a replica). */
  readonly primaryAdvertiseUrl: string;
  /** The environment every node shares (RYW_SECRET, RYW_WAIT_MS, …). */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** The container's output, appended across restarts. */
  readonly logFile: string;
}

/** A GenericContainer that can be handed `/dev/fuse`, which testcontainers has no builder method for. */
class FuseContainer extends GenericContainer {
  withFuseDevice(): this {
    // dockerode's HostConfig types Devices loosely; these are its DeviceMapping objects.
    const devices = (this.hostConfig.Devices ?? []) as { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[];
    this.hostConfig.Devices = [...devices, { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }];
    return this;
  }
}

/**
 * One node as a container of the project's image: `litefs mount` with a
 * static-lease config, exec'ing the app, on the host's network. The container
 * lives as long as the cluster: a restart is `docker stop`, a new start script,
 * `docker start`, so LiteFS's data directory (in the container) survives it.
 */
export class ContainerNode implements ClusterNode {
  readonly region: string;
  readonly instance: string;
  readonly isPrimary: boolean;
  readonly appUrl: string;
  readonly litefsApiUrl: string;
  readonly containerName: string;
  readonly logFile: string;
  private container: StartedTestContainer | null = null;
  private running = false;
  private log: WriteStream | null = null;

  /** On containers the lease is static: the primary is the one candidate. */
  get candidate(): boolean {
    return this.isPrimary;
  }

  /** Its container runs (the edge sends users only to live nodes). */
  get live(): boolean {
    return this.running;
  }

  constructor(private readonly spec: ContainerNodeSpec) {
    this.region = spec.region;
    this.instance = spec.instance;
    this.isPrimary = spec.isPrimary;
    this.appUrl = `http://127.0.0.1:${spec.appPort}`;
    this.litefsApiUrl = `http://127.0.0.1:${spec.apiPort}`;
    this.containerName = spec.containerName;
    this.logFile = spec.logFile;
  }

  /** The environment the app gets at first start: the contract of src/config.ts. */
  env(): Record<string, string> {
    return nodeAppEnv(this, this.spec.appPort, CONTAINER_MOUNT_DIR, this.spec.baseEnv);
  }

  /** Creates and starts the container; resolves once the app answers `/healthz`. */
  async start(overrides: EnvOverrides = {}): Promise<void> {
    if (this.container) throw new Error(`${this.instance} already has a container`);
    this.log = createWriteStream(this.logFile, { flags: 'a' });
    this.log.write(`--- ${new Date().toISOString()} starting ${this.instance} (${this.spec.image})\n`);
    const startedAt = Date.now();
    this.container = await new FuseContainer(this.spec.image)
      .withName(this.spec.containerName)
      .withLabels({ ...this.spec.labels })
      .withNetworkMode('host')
      .withFuseDevice()
      .withAddedCapabilities('SYS_ADMIN')
      // Docker's default AppArmor profile (Ubuntu hosts) forbids the FUSE mount.
      .withSecurityOpt('apparmor:unconfined')
      .withEnvironment(this.env())
      .withCopyContentToContainer([
        { content: this.config(), target: CONFIG_PATH },
        { content: startScript(overrides, false), target: START_SCRIPT_PATH, mode: 0o755 },
      ])
      .withEntrypoint(['/bin/sh', START_SCRIPT_PATH])
      .withCommand([])
      .start();
    this.running = true;
    await this.followLogs(startedAt);
    await this.waitHealthy(DEFAULT_NODE_START_TIMEOUT_MS);
  }

  /** `docker stop`: LiteFS and the app go down, the container (and LiteFS's data in it) stays. */
  async halt(): Promise<void> {
    const container = this.created();
    if (!this.running) return;
    this.running = false;
    this.log?.write(`--- ${new Date().toISOString()} stopping ${this.instance}\n`);
    const client = await getContainerRuntimeClient();
    await client.container.stop(client.container.getById(container.getId()), { timeout: DEFAULT_CONTAINER_STOP_TIMEOUT_S });
  }

  /**
   * Starts a halted container again with `overrides` applied to the first
   * start's environment; with `wipeData`, LiteFS's data directory is emptied
   * first, all but the cluster id.
   */
  async resume(overrides: EnvOverrides = {}, wipeData = false): Promise<void> {
    const container = this.created();
    if (this.running) throw new Error(`${this.instance} is running: halt it first`);
    // Docker copies into a stopped container's file system just as well.
    await container.copyContentToContainer([{ content: startScript(overrides, wipeData), target: START_SCRIPT_PATH, mode: 0o755 }]);
    this.log?.write(`--- ${new Date().toISOString()} starting ${this.instance}${wipeData ? ' with fresh data' : ''}\n`);
    const client = await getContainerRuntimeClient();
    const startedAt = Date.now();
    await client.container.start(client.container.getById(container.getId()));
    this.running = true;
    await this.followLogs(startedAt);
    await this.waitHealthy(DEFAULT_NODE_START_TIMEOUT_MS);
  }

  async restart(overrides: EnvOverrides = {}, wipeData = false): Promise<void> {
    await this.halt();
    await this.resume(overrides, wipeData);
  }

  /** Stops and removes the container. */
  async remove(): Promise<void> {
    const container = this.container;
    this.container = null;
    this.running = false;
    if (container) {
      const client = await getContainerRuntimeClient();
      // Force-remove: SIGKILL is fine for a cluster being thrown away.
      await client.container.dockerode.getContainer(container.getId()).remove({ force: true, v: true });
    }
    await new Promise<void>((resolve) => (this.log ? this.log.end(resolve) : resolve()));
    this.log = null;
  }

  async position(): Promise<ReplicationPosition | null> {
    const content = await this.readFile(`${CONTAINER_MOUNT_DIR}/${DATABASE_NAME}-pos`);
    return content === null ? null : parsePosFile(content);
  }

  async lagMs(): Promise<number | null> {
    const content = await this.readFile(`${CONTAINER_MOUNT_DIR}/.lag`);
    return content === null ? null : parseLagFile(content);
  }

  /**
   * Follows the node's LiteFS `/events` (each `tx` event carries the new
   * position) so that it resolves as soon as the node has applied `txid`, as
   * the app itself is woken; reading the `-pos` file in the container covers
   * a position reached before the stream was open.
   */
  async waitForPosition(txid: bigint, timeoutMs: number): Promise<ReplicationPosition> {
    const abort = new AbortController();
    const deadline = Date.now() + timeoutMs;
    let last: ReplicationPosition | null = null;
    const fromEvents = followTxEvents(this.litefsApiUrl, abort.signal, (pos) => pos.txid >= txid).catch(() => new Promise<never>(() => {}));
    const fromFile = (async (): Promise<ReplicationPosition> => {
      for (;;) {
        last = (await this.position()) ?? last;
        if (last && last.txid >= txid) return last;
        if (abort.signal.aborted) return new Promise<never>(() => {});
        if (Date.now() > deadline) {
          throw new Error(`${this.instance} did not reach TXID ${txid} within ${timeoutMs} ms (at ${last?.txid ?? 'none'})`);
        }
        await sleep(Math.min(POSITION_RECHECK_MS, Math.max(1, deadline - Date.now())));
      }
    })();
    try {
      return await Promise.race([fromEvents, fromFile]);
    } finally {
      abort.abort();
    }
  }

  private created(): StartedTestContainer {
    if (!this.container) throw new Error(`${this.instance} has no container`);
    return this.container;
  }

  private config(): string {
    return renderLiteFsConfig({
      mountDir: CONTAINER_MOUNT_DIR,
      dataDir: CONTAINER_DATA_DIR,
      httpAddr: `127.0.0.1:${this.spec.apiPort}`,
      lease: {
        type: 'static',
        candidate: this.isPrimary,
        primaryHostname: this.spec.primaryHostname,
        primaryAdvertiseUrl: this.spec.primaryAdvertiseUrl,
      },
      exec: CONTAINER_APP_COMMAND,
    });
  }

  /** A file in the container, or null when it does not exist (or the node is down). */
  private async readFile(path: string): Promise<string | null> {
    if (!this.container || !this.running) return null;
    try {
      const result = await this.container.exec(['cat', path]);
      return result.exitCode === 0 ? result.stdout : null;
    } catch {
      return null; // restarting: the container is not running for a moment
    }
  }

  /** Appends this run's output to the log file; the stream ends when the container stops. */
  private async followLogs(sinceMs: number): Promise<void> {
    const log = this.log;
    if (!log) return;
    const stream = await this.created().logs({ since: Math.floor(sinceMs / 1000) });
    stream.on('data', (chunk: string | Buffer) => log.writable && log.write(chunk));
    stream.on('error', () => {});
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const container = this.created();
    const client = await getContainerRuntimeClient();
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`${this.appUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
      } catch {
        // Not listening yet.
      }
      if (i % 10 === 9) {
        const state = (await client.container.inspect(client.container.getById(container.getId()))).State;
        if (!state.Running) {
          throw new Error(
            `${this.instance}: container exited (${state.ExitCode}) before the app was healthy:\n${await tail(this.logFile)}`,
          );
        }
      }
      if (Date.now() > deadline) {
        throw new Error(`${this.instance}: app not healthy within ${timeoutMs} ms:\n${await tail(this.logFile)}`);
      }
      await sleep(HEALTH_POLL_MS);
    }
  }
}

/**
 * The container's entrypoint for one start: the environment changes, an
 * optional wipe of LiteFS's data (all but the cluster id, so replicas still
 * accept this node), then the image's own entrypoint as PID 1: the mount
 * supervisor (src/mount.ts) running `litefs mount`, which forwards SIGTERM to
 * the app and unmounts.
 */
export function startScript(overrides: EnvOverrides, wipeData: boolean): string {
  const lines = ['#!/bin/sh', '# Written by tools/cluster/container-node.ts for this start of the node.', 'set -e'];
  for (const [name, value] of Object.entries(overrides)) {
    if (!ENV_NAME.test(name)) throw new Error(`not an environment variable name: ${JSON.stringify(name)}`);
    lines.push(value === undefined ? `unset ${name}` : `export ${name}=${shellQuote(value)}`);
  }
  if (wipeData) {
    lines.push(`find ${CONTAINER_DATA_DIR} -mindepth 1 -maxdepth 1 ! -name clusterid -exec rm -rf {} +`);
  }
  lines.push(`exec node ${MOUNT_SUPERVISOR} -- litefs mount -config ${CONFIG_PATH} -no-expand-env`);
  return `${lines.join('\n')}\n`;
}

/**
 * Reads LiteFS's `/events` until a `tx` event of the app's database passes
 * `accept`; rejects when the stream ends or `signal` aborts.
 */
export async function followTxEvents(
  apiUrl: string,
  signal: AbortSignal,
  accept: (pos: ReplicationPosition) => boolean,
): Promise<ReplicationPosition> {
  const res = await fetch(`${apiUrl}/events`, { signal });
  if (!res.ok || !res.body) throw new Error(`${apiUrl}/events answered ${res.status}`);
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of res.body) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const pos = txEventPosition(line);
      if (pos && accept(pos)) return pos;
    }
  }
  throw new Error(`${apiUrl}/events ended`);
}

function txEventPosition(line: string): ReplicationPosition | null {
  try {
    const event = JSON.parse(line) as { type?: unknown; db?: unknown; data?: { txID?: unknown; postApplyChecksum?: unknown } };
    if (event.type !== 'tx' || event.db !== DATABASE_NAME) return null;
    const { txID, postApplyChecksum } = event.data ?? {};
    if (typeof txID !== 'string' || typeof postApplyChecksum !== 'string') return null;
    return parsePosFile(`${txID}/${postApplyChecksum}`);
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
