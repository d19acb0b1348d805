import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startEdge, type Edge } from '../edge/edge-router.js';
import { basicStatus, type EdgeStatus } from '../edge/status.js';
import { isAlive, spawnLogged, type Spawned } from './child-process.js';
import {
  DEFAULT_BASE_PORT,
  DEFAULT_CLUSTER_DIR,
  DEFAULT_REGIONS,
  describeFault,
  NO_FAULT,
  type Cluster,
  type EnvOverrides,
  type Fault,
  type ReplicationPosition,
} from './cluster.js';
import { createControlHandler } from './control-api.js';
import { unmountAllUnder } from './mounts.js';
import { ProcessNode } from './node-process.js';
import { freePort } from './ports.js';
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
const REGION_CODE = /^[a-z0-9]{2,12}$/;

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
}

/** What the CLI and the control API show besides the Cluster interface. */
export interface ProcessCluster extends Cluster {
  readonly dir: string;
  readonly toxiproxyApi: string;
  readonly controlUrl: string;
  readonly nodes: readonly ProcessNode[];
  status(): Promise<EdgeStatus>;
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
    const toxiproxyPort = await freePort();
    const toxiproxyApi = `http://127.0.0.1:${toxiproxyPort}`;
    started.toxiproxy = spawnLogged(tools.toxiproxy, ['-host', '127.0.0.1', '-port', String(toxiproxyPort)], {
      cwd: dir,
      env: process.env,
      logFile: join(dir, 'toxiproxy.log'),
    });
    const toxiproxy = new ToxiproxyClient(toxiproxyApi);
    await waitFor(() => toxiproxy.version(), 10_000, 'toxiproxy API');
    log(`toxiproxy ${toxiproxyApi}`);

    const secret = options.env?.RYW_SECRET ?? randomBytes(24).toString('hex');
    const baseEnv = { RYW_SECRET: secret, ...options.env };
    const primaryApiPort = await freePort();
    const primaryInstance = `${primaryRegion}-1`;
    const nodes: ProcessNode[] = [];
    let controlUrl = '';
    let edgeMainUrl = '';
    const pids = (): number[] =>
      [started.toxiproxy?.pid, ...nodes.map((n) => n.pid)].filter((p): p is number => typeof p === 'number');
    const saveState = (): Promise<void> =>
      writeState(dir, { ownerPid: process.pid, controlUrl, edgeUrl: edgeMainUrl, toxiproxyApi, pids: pids() });
    await saveState();
    for (const region of regions) {
      const isPrimary = region === primaryRegion;
      const apiPort = isPrimary ? primaryApiPort : await freePort();
      let advertiseUrl = `http://127.0.0.1:${primaryApiPort}`;
      if (!isPrimary) {
        const listen = `127.0.0.1:${await freePort()}`;
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
            appPort: await freePort(),
            apiPort,
            ...(options.litefsProxy ? { proxy: { port: await freePort(), passthrough: options.litefsProxy.passthrough } } : {}),
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
    await primary!.start(options.nodeEnv?.[primaryRegion]);
    log(`${primary!.instance} primary, app ${primary!.appUrl}`);
    started.nodes.push(...replicas);
    await Promise.all(replicas.map((node) => node.start(options.nodeEnv?.[node.region])));
    for (const node of replicas) log(`${node.instance} replica, app ${node.appUrl}`);

    const faults = new Map<string, Fault>(regions.map((r) => [r, NO_FAULT]));
    const basePort = options.basePort ?? DEFAULT_BASE_PORT;
    const regionPorts = Object.fromEntries(regions.map((r, i) => [r, basePort === 0 ? 0 : basePort + 1 + i]));
    const nodeOf = (region: string): ProcessNode => {
      const node = nodes.find((n) => n.region === region);
      if (!node) throw new Error(`no node in region ${region} (regions: ${regions.join(', ')})`);
      return node;
    };
    const replicaOf = (region: string): ProcessNode => {
      const node = nodeOf(region);
      if (node.isPrimary) throw new Error(`${region} is the primary's region: faults apply to replicas' links`);
      return node;
    };
    const applyFault = async (region: string, change: Partial<Fault>): Promise<void> => {
      replicaOf(region);
      const before = faults.get(region) ?? NO_FAULT;
      const next = { ...before, ...change };
      await applyToxics(toxiproxy, proxyName(region), before, next);
      faults.set(region, next);
    };

    let edgeUrls: Record<string, string> = {};
    let mainUrl = '';
    const status = async (): Promise<EdgeStatus> => {
      const basic = await basicStatus(nodes.map(edgeNodeOf), primaryRegion, mainUrl, edgeUrls);
      const primaryPos = await primary!.position();
      return {
        ...basic,
        nodes: await Promise.all(
          basic.nodes.map(async (s, i) => {
            const node = nodes[i]!;
            const pos = await node.position();
            const fault = faults.get(node.region) ?? NO_FAULT;
            return {
              ...s,
              position: s.position ?? (pos ? pos.txid.toString(16).padStart(16, '0') : null),
              behindTx: pos && primaryPos ? Math.max(0, Number(primaryPos.txid - pos.txid)) : s.behindTx,
              lagMs: node.isPrimary ? null : await node.lagMs(),
              injected: describeFault(fault),
            };
          }),
        ),
      };
    };

    const cluster: ProcessCluster = {
      regions,
      primaryRegion,
      dir,
      toxiproxyApi,
      nodes,
      get controlUrl() {
        return `${mainUrl}/_cluster/api`;
      },
      edgeUrl(region?: string) {
        if (region === undefined) return mainUrl;
        const url = edgeUrls[region];
        if (!url) throw new Error(`no edge port for region ${region}`);
        return url;
      },
      appUrl: (region) => nodeOf(region).appUrl,
      node: (region) => nodeOf(region),
      lag: (region, ms, jitterMs = 0) => applyFault(region, { latencyMs: ms, jitterMs }),
      bandwidth: (region, kbps) => applyFault(region, { bandwidthKBps: kbps }),
      cut: (region) => applyFault(region, { cut: true }),
      async heal(region?: string) {
        const targets = region === undefined ? regions.filter((r) => r !== primaryRegion) : [region];
        for (const r of targets) await applyFault(r, NO_FAULT);
      },
      faults: () => Object.fromEntries(faults),
      async waitForSync(timeoutMs: number): Promise<ReplicationPosition> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const target = await primary!.position();
          const positions = await Promise.all(replicas.map((n) => n.position()));
          if (target && positions.every((p) => p?.txid === target.txid && p.checksum === target.checksum)) return target;
          if (Date.now() > deadline) {
            const seen = replicas.map((n, i) => `${n.region}=${positions[i]?.txid ?? 'none'}`).join(' ');
            throw new Error(`replicas not in sync within ${timeoutMs} ms: primary=${target?.txid ?? 'none'} ${seen}`);
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      },
      async restartNode(region: string, env?: EnvOverrides) {
        const node = nodeOf(region);
        await node.stop();
        await node.start(env ?? {});
      },
      stopNode: (region) => nodeOf(region).stop(),
      startNode: (region, env) => nodeOf(region).start(env ?? options.nodeEnv?.[region]),
      async restartPrimaryWithFreshData() {
        await primary!.stop();
        await primary!.wipeData();
        await primary!.start(options.nodeEnv?.[primaryRegion]);
      },
      status,
      async stop() {
        await stopAll();
      },
    };

    started.edge = await startEdge({
      nodes: () => nodes.map(edgeNodeOf),
      primaryRegion,
      mainPort: basePort,
      regionPorts,
      status,
      control: createControlHandler(cluster),
    });
    mainUrl = started.edge.mainUrl;
    edgeUrls = { ...started.edge.regionUrls };
    controlUrl = cluster.controlUrl;
    edgeMainUrl = mainUrl;
    await saveState();
    log(`edge ${mainUrl} (${regions.map((r) => `${r} ${edgeUrls[r]}`).join(', ')})`);
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function edgeNodeOf(node: ProcessNode): { instance: string; region: string; url: string } {
  return { instance: node.instance, region: node.region, url: node.appUrl };
}

function proxyName(region: string): string {
  return `litefs-${region}`;
}

export function validateRegions(regions: readonly string[]): void {
  if (regions.length === 0) throw new Error('--regions: give at least one region');
  for (const r of regions) {
    if (!REGION_CODE.test(r)) throw new Error(`--regions: "${r}" is not a region code (2 to 12 lowercase letters or digits)`);
  }
  if (new Set(regions).size !== regions.length) throw new Error('--regions: a region is listed twice');
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
  await writeFile(join(dir, DIR_MARKER), 'made by src/cluster: wiped and re-created by every cluster start\n');
}

/** Marks a directory as a cluster's own, safe to wipe on the next start. */
const DIR_MARKER = '.litefs-cluster';

/**
 * Brings a replica link's toxics from `before` to `next`. A heal from a cut
 * also resets the link's connections: LiteFS has no read deadline on its
 * stream, so it would otherwise keep waiting on a connection the partition
 * left half-dead.
 */
export async function applyToxics(toxiproxy: ToxiproxyClient, proxy: string, before: Fault, next: Fault): Promise<void> {
  if (next.latencyMs > 0) {
    await toxiproxy.upsertToxic(proxy, {
      name: 'lag',
      type: 'latency',
      stream: 'downstream',
      attributes: { latency: next.latencyMs, jitter: next.jitterMs },
    });
  } else {
    await toxiproxy.removeToxic(proxy, 'lag');
  }
  if (next.bandwidthKBps !== null) {
    await toxiproxy.upsertToxic(proxy, {
      name: 'bandwidth',
      type: 'bandwidth',
      stream: 'downstream',
      attributes: { rate: next.bandwidthKBps },
    });
  } else {
    await toxiproxy.removeToxic(proxy, 'bandwidth');
  }
  if (next.cut) {
    // timeout 0: data is dropped and the connection is held open, as in a partition.
    for (const stream of ['downstream', 'upstream'] as const) {
      await toxiproxy.upsertToxic(proxy, { name: `cut-${stream}`, type: 'timeout', stream, attributes: { timeout: 0 } });
    }
  } else {
    await toxiproxy.removeToxic(proxy, 'cut-downstream');
    await toxiproxy.removeToxic(proxy, 'cut-upstream');
    if (before.cut) {
      await toxiproxy.setEnabled(proxy, false);
      await toxiproxy.setEnabled(proxy, true);
    }
  }
}

async function waitFor<T>(probe: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what} not up within ${timeoutMs} ms: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export { DEFAULT_BASE_PORT, DEFAULT_CLUSTER_DIR, DEFAULT_REGIONS };
