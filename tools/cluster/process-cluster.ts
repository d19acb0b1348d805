import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Edge } from '../edge/edge-router.js';
import { isAlive, spawnLogged, type Spawned } from './child-process.js';
import { DEFAULT_BASE_PORT, DEFAULT_CLUSTER_DIR, DEFAULT_REGIONS, type EnvOverrides } from './cluster.js';
import { clusterFacade, proxyName, waitFor } from './cluster-facade.js';
import { validateRegions } from './control-command.js';
import { controlStatus, createControlHandler } from './control-api.js';
import { unmountAllUnder } from './mounts.js';
import { ProcessNode } from './node-process.js';
import type { ProcessCluster } from './process-cluster-type.js';
import { freePorts } from './ports.js';
import { killLeftovers, readState, removeState, writeState } from './state-file.js';
import { ToxiproxyClient } from './toxiproxy.js';
import { findClusterTools, PROJECT_ROOT, type ClusterTools } from './tools.js';

/** The app as each node execs it: one Node process, TypeScript loaded by tsx. */
export const DEFAULT_APP_COMMAND: readonly string[] = [
  process.execPath,
  '--import',
  'tsx',
  join(PROJECT_ROOT, 'src', 'main.ts'),
];
/** Between rounds of `waitForSync`: reading a `-pos` file is cheap. */
const SYNC_POLL_MS = 10;

export interface ProcessClusterOptions {
  /** The first region is the primary's. */
  readonly regions?: readonly string[];
  /** Wiped at start (after cleaning up any crashed run in it). */
  readonly dir?: string;
  /** The edge's main port; region ports follow it. 0 picks free ports for all. */
  readonly basePort?: number;
  readonly appCommand?: readonly string[];
  /** Extra environment for every node's app (e.g. `RYW_WAIT_MS`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Per-region environment changes at first start. */
  readonly nodeEnv?: Readonly<Record<string, EnvOverrides>>;
  /**
   * Also runs LiteFS's built-in proxy in front of every node's app (each
   * node's `proxyUrl`), for benchmarks against it; `passthrough` globs go
   * straight to the app. Off by default: the app owns consistency.
   */
  readonly litefsProxy?: { readonly passthrough?: readonly string[] };
  readonly log?: (line: string) => void;
  /**
   * Aborting it during startup stops whatever was started so far (processes,
   * mounts, the edge) and rejects with the signal's reason; Ctrl-C in the CLI.
   * Ignored once the cluster is up: then `stop()` it.
   */
  readonly signal?: AbortSignal;
}

/**
 * Starts a real LiteFS cluster on this machine: Toxiproxy, one `litefs mount`
 * per region (the first is the static primary) each exec'ing the app, every
 * replica streaming through its own Toxiproxy proxy, and the edge router.
 */
export async function startProcessCluster(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
  const regions = [...(options.regions ?? DEFAULT_REGIONS)];
  validateRegions(regions);
  const primaryRegion = regions[0]!;
  const check = findClusterTools();
  if (!check.ok) throw new Error(`cannot start a LiteFS cluster, missing: ${check.missing.join(', ')}; run npm run setup:cluster`);
  const tools = check.tools;
  const dir = resolve(options.dir ?? DEFAULT_CLUSTER_DIR);
  const log = options.log ?? (() => {});
  const signal = options.signal ?? new AbortController().signal;
  signal.throwIfAborted();

  await cleanDir(dir, tools, log);
  const started: { toxiproxy: Spawned | null; nodes: ProcessNode[]; edge: Edge | null } = {
    toxiproxy: null,
    nodes: [],
    edge: null,
  };
  const stopAll = async (): Promise<void> => {
    await started.edge?.close();
    // Replicas first: the primary's stop would only make them reconnect.
    for (const node of [...started.nodes].reverse()) await node.stop().catch(() => {});
    await started.toxiproxy?.stop();
    await unmountAllUnder(tools.fusermount, dir).catch(() => []);
    await removeState(dir);
  };

  try {
    signal.throwIfAborted();
    // Every port at once: picked one by one, the kernel may hand out one twice.
    const replicaCount = regions.length - 1;
    const ports = await freePorts(2 + 2 * replicaCount + regions.length * (options.litefsProxy ? 2 : 1));
    const nextPort = (): number => ports.pop()!;
    const toxiproxyPort = nextPort();
    const toxiproxyApi = `http://127.0.0.1:${toxiproxyPort}`;
    started.toxiproxy = spawnLogged(tools.toxiproxy, ['-host', '127.0.0.1', '-port', String(toxiproxyPort)], {
      cwd: dir,
      env: process.env,
      logFile: join(dir, 'toxiproxy.log'),
    });
    const toxiproxy = new ToxiproxyClient(toxiproxyApi);
    await untilAborted(waitFor(() => toxiproxy.version(), 10_000, 'toxiproxy API'), signal);
    log(`toxiproxy ${toxiproxyApi}`);

    const secret = options.env?.RYW_SECRET ?? randomBytes(24).toString('hex');
    const baseEnv = { RYW_SECRET: secret, ...options.env };
    const primaryApiPort = nextPort();
    const primaryInstance = `${primaryRegion}-1`;
    const nodes: ProcessNode[] = [];
    let controlUrl = '';
    let edgeMainUrl = '';
    const pids = (): number[] =>
      [started.toxiproxy?.pid, ...nodes.map((n) => n.pid)].filter((p): p is number => typeof p === 'number');
    const saveState = (): Promise<void> =>
      writeState(dir, { ownerPid: process.pid, controlUrl, edgeUrl: edgeMainUrl, toxiproxyApi, regions, primaryRegion, pids: pids() });
    await saveState();
    for (const region of regions) {
      const isPrimary = region === primaryRegion;
      const apiPort = isPrimary ? primaryApiPort : nextPort();
      let advertiseUrl = `http://127.0.0.1:${primaryApiPort}`;
      if (!isPrimary) {
        const listen = `127.0.0.1:${nextPort()}`;
        await toxiproxy.createProxy(proxyName(region), listen, `127.0.0.1:${primaryApiPort}`);
        advertiseUrl = `http://${listen}`;
      }
      nodes.push(
        new ProcessNode(
          {
            region,
            instance: `${region}-1`,
            isPrimary,
            dir: join(dir, region),
            appPort: nextPort(),
            apiPort,
            ...(options.litefsProxy ? { proxy: { port: nextPort(), passthrough: options.litefsProxy.passthrough } } : {}),
            primaryHostname: primaryInstance,
            primaryAdvertiseUrl: advertiseUrl,
            appCommand: options.appCommand ?? DEFAULT_APP_COMMAND,
            cwd: PROJECT_ROOT,
            baseEnv,
            onSpawn: saveState,
            onUnexpectedExit: (code) => log(`${region}-1 exited unexpectedly (${code}); see ${join(dir, region, 'node.log')}`),
          },
          tools,
        ),
      );
    }

    // The primary first: it creates the database (the app migrates), and
    // replicas only become ready once they have streamed from it.
    const [primary, ...replicas] = nodes;
    started.nodes.push(primary!);
    await primary!.start(options.nodeEnv?.[primaryRegion], { signal });
    log(`${primary!.instance} primary, app ${primary!.appUrl}`);
    started.nodes.push(...replicas);
    // Settled, not all: stopping while another replica is still starting could
    // miss the LiteFS it is about to spawn.
    const replicaStarts = await Promise.allSettled(replicas.map((node) => node.start(options.nodeEnv?.[node.region], { signal })));
    const failed = replicaStarts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const node of replicas) log(`${node.instance} replica, app ${node.appUrl}`);

    // clusterFacade() returns closures, not methods that use `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const { startEdge, ...facade } = clusterFacade({
      regions,
      nodes,
      toxiproxyOf: () => toxiproxy,
      statusPositions: true,
      syncPollMs: SYNC_POLL_MS,
    });
    const cluster: ProcessCluster = {
      ...facade,
      dir,
      toxiproxyApi,
      nodes,
      get controlUrl() {
        return `${facade.edgeUrl()}/_cluster/api`;
      },
      async restartNode(region: string, env?: EnvOverrides) {
        const node = facade.node(region);
        await node.stop();
        await node.start(env ?? {});
      },
      stopNode: (region) => facade.node(region).stop(),
      startNode: (region, env) => facade.node(region).start(env ?? options.nodeEnv?.[region]),
      async restartPrimaryWithFreshData() {
        await primary!.stop();
        await primary!.wipeData();
        await primary!.start(options.nodeEnv?.[primaryRegion]);
      },
      async stop() {
        await stopAll();
      },
    };

    signal.throwIfAborted();
    const edge = await startEdge(options.basePort ?? DEFAULT_BASE_PORT, createControlHandler(cluster, () => controlStatus(cluster)));
    started.edge = edge;
    signal.throwIfAborted();
    controlUrl = cluster.controlUrl;
    edgeMainUrl = edge.mainUrl;
    await saveState();
    log(`edge ${edge.mainUrl} (${regions.map((r) => `${r} ${edge.regionUrls[r]}`).join(', ')})`);
    return cluster;
  } catch (err) {
    await stopAll();
    // Whatever failed after an abort (a node killed mid-start) failed because of it.
    throw signal.aborted ? signal.reason : err;
  }
}

/** `promise`, or a rejection with the signal's reason as soon as it is aborted. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Cleans up whatever a previous run left in `dir`: refuses if its owner is
 * still alive, else kills its leftover processes, unmounts its mounts and
 * removes the directory.
 */
async function cleanDir(dir: string, tools: ClusterTools, log: (line: string) => void): Promise<void> {
  const previous = await readState(dir);
  if (previous && previous.ownerPid !== process.pid && isAlive(previous.ownerPid)) {
    throw new Error(`a cluster is already running in ${dir} (pid ${previous.ownerPid}); stop it first`);
  }
  if (previous) {
    const killed = await killLeftovers(previous);
    if (killed.length > 0) log(`killed leftovers of a crashed run: ${killed.join(', ')}`);
  }
  const unmounted = await unmountAllUnder(tools.fusermount, dir);
  if (unmounted.length > 0) log(`unmounted leftovers: ${unmounted.join(', ')}`);
  // Only ever wipe a directory this code made: `--dir .` must not empty a project.
  const entries = await readdir(dir).catch(() => [] as string[]);
  const ours = await access(join(dir, DIR_MARKER)).then(() => true, () => false);
  if (entries.length > 0 && !ours) {
    throw new Error(`${dir} is not empty and was not made by a cluster run; pick another --dir`);
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, DIR_MARKER), 'made by tools/cluster: wiped and re-created by every cluster start\n');
}

/** Marks a directory as a cluster's own, safe to wipe on the next start. */
const DIR_MARKER = '.litefs-cluster';

export { DEFAULT_BASE_PORT, DEFAULT_CLUSTER_DIR, DEFAULT_REGIONS };
