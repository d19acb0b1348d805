import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Edge } from '../edge/edge-router.js';
import { isAlive, spawnLogged, type Spawned } from './child-process.js';
import {
  DEFAULT_BASE_PORT,
  DEFAULT_CANDIDATES,
  DEFAULT_CLUSTER_DIR,
  DEFAULT_LEASE,
  DEFAULT_REGIONS,
  type EnvOverrides,
  type LeaseSettings,
  type LeaseType,
} from './cluster.js';
import { clusterFacade, linkName, waitFor, type ClusterFacade } from './cluster-facade.js';
import {
  CONSUL_PORT_COUNT,
  consulPorts,
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_LOCK_DELAY_MS,
  DEFAULT_RECONNECT_DELAY_MS,
  LEASE_KEY,
  LeaseWatch,
  startConsul,
  type ConsulAgent,
} from './consul.js';
import type { ConsulViewsConfig } from './consul-views-main.js';
import { ControlInputError, PRIMARY_TARGET, validateCandidates, validateRegions } from './control-command.js';
import { controlStatus, createControlHandler } from './control-api.js';
import type { LiteFsLease } from './litefs-config.js';
import { unmountAllUnder } from './mounts.js';
import { ProcessNode } from './node-process.js';
import type { ProcessCluster } from './process-cluster-type.js';
import { freePorts } from './ports.js';
import { killLeftovers, readState, removeState, writeState } from './state-file.js';
import { ToxiproxyClient } from './toxiproxy.js';
import { findClusterTools, PROJECT_ROOT, type ClusterTools } from './tools.js';

/** The app as each node execs it: one Node process, TypeScript loaded by tsx. */
export const DEFAULT_APP_COMMAND: readonly string[] = [process.execPath, '--import', 'tsx', join(PROJECT_ROOT, 'src', 'main.ts')];
/** Between rounds of `waitForSync`: reading a `-pos` file is cheap. */
const SYNC_POLL_MS = 10;
/** Between looks at the lease holder's `/info` while waiting for a primary. */
const PRIMARY_POLL_MS = 20;
/** How long `handoff` gives a candidate to reach the primary's position before calling it not caught up. */
export const HANDOFF_CATCH_UP_MS = 1000;
/** How long `handoff` waits for the lease to arrive (LiteFS itself gives up after 5 s). */
const HANDOFF_TIMEOUT_MS = 10_000;
const VIEWS_START_TIMEOUT_MS = 20_000;

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
  /** Environment changes at first start, by region (all its instances) or by instance (over its region's). */
  readonly nodeEnv?: Readonly<Record<string, EnvOverrides>>;
  /** `consul` (default): the primary is elected and moves; `static`: it is fixed. */
  readonly lease?: LeaseType;
  /** Lease candidates in the primary region: 2 by default on Consul; a static lease has exactly 1. */
  readonly candidates?: number;
  /** The Consul lease's timing; defaults short enough for tests (consul.ts). */
  readonly leaseTiming?: { readonly ttlMs?: number; readonly lockDelayMs?: number; readonly reconnectDelayMs?: number };
  /**
   * Also runs LiteFS's built-in proxy in front of every node's app (each
   * node's `proxyUrl`), for benchmarks against it; `passthrough` globs go
   * straight to the app. Off by default: the app owns consistency.
   */
  readonly litefsProxy?: { readonly passthrough?: readonly string[] };
  /**
   * LiteFS's `exit-on-error`. Unset: LiteFS's default (true), so that a node
   * that cannot start fails its start at once. `false` is the project's
   * litefs.yml: LiteFS then prints a startup error and waits for a signal.
   */
  readonly litefsExitOnError?: boolean;
  readonly log?: (line: string) => void;
  /**
   * Aborting it during startup stops whatever was started so far (processes,
   * mounts, the edge) and rejects with the signal's reason; Ctrl-C in the CLI.
   * Ignored once the cluster is up: then `stop()` it.
   */
  readonly signal?: AbortSignal;
}

/** One node of the plan, before anything runs. */
interface PlannedNode {
  readonly region: string;
  readonly instance: string;
  readonly candidate: boolean;
  readonly apiPort: number;
  readonly appPort: number;
}

/**
 * Starts a real LiteFS cluster on this machine: Toxiproxy, on a Consul lease
 * one Consul agent and every node's view of it, one `litefs mount` per
 * instance (the primary region's candidates first) each exec'ing the app,
 * every node streaming from the primary through its own Toxiproxy link, and
 * the edge router.
 */
export async function startProcessCluster(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
  const regions = [...(options.regions ?? DEFAULT_REGIONS)];
  validateRegions(regions);
  const lease = options.lease ?? DEFAULT_LEASE;
  const candidateCount = options.candidates ?? (lease === 'consul' ? DEFAULT_CANDIDATES : 1);
  validateCandidates(candidateCount, lease);
  const primaryRegion = regions[0]!;
  const check = findClusterTools(lease);
  if (!check.ok) throw new Error(`cannot start a LiteFS cluster, missing: ${check.missing.join(', ')}; run npm run setup:cluster`);
  const tools = check.tools;
  const dir = resolve(options.dir ?? DEFAULT_CLUSTER_DIR);
  const log = options.log ?? (() => {});
  const signal = options.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  const timing = {
    ttlMs: options.leaseTiming?.ttlMs ?? DEFAULT_LEASE_TTL_MS,
    lockDelayMs: options.leaseTiming?.lockDelayMs ?? DEFAULT_LOCK_DELAY_MS,
    reconnectDelayMs: options.leaseTiming?.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS,
  };

  await cleanDir(dir, tools, log);
  const started: {
    toxiproxy: Spawned | null;
    consul: ConsulAgent | null;
    views: Spawned | null;
    watch: LeaseWatch | null;
    nodes: ProcessNode[];
    edge: Edge | null;
  } = { toxiproxy: null, consul: null, views: null, watch: null, nodes: [], edge: null };
  let holderNow: () => string | null = () => null;
  let consulStarting: Promise<unknown> | null = null;
  const stopAll = async (): Promise<void> => {
    await started.edge?.close();
    // The lease holder last: stopping it first would only hand the lease on.
    const holder = started.nodes.find((n) => n.instance === holderNow());
    await Promise.all(started.nodes.filter((n) => n !== holder).map((node) => node.stop().catch(() => {})));
    await holder?.stop().catch(() => {});
    await started.watch?.stop();
    await started.views?.stop();
    await started.consul?.stop();
    await started.toxiproxy?.stop();
    await unmountAllUnder(tools.fusermount, dir).catch(() => []);
    await removeState(dir);
  };

  try {
    signal.throwIfAborted();
    const planned = planNodes(regions, candidateCount);
    const candidates = planned.filter((n) => n.candidate);
    const staticPrimary = candidates[0]!;
    /** Who each node streams from: every other candidate on Consul, the static primary otherwise. */
    const sourcesOf = (n: PlannedNode): PlannedNode[] =>
      lease === 'consul'
        ? candidates.filter((c) => c.instance !== n.instance)
        : n.instance === staticPrimary.instance
          ? []
          : [staticPrimary];
    const linkCount = planned.reduce((sum, n) => sum + sourcesOf(n).length, 0);
    // Every port at once: picked one by one, the kernel may hand out one twice.
    const perNode = options.litefsProxy ? 3 : 2;
    const consulCount = lease === 'consul' ? CONSUL_PORT_COUNT + planned.length : 0;
    const ports = await freePorts(1 + consulCount + linkCount + planned.length * perNode);
    const nextPort = (): number => ports.pop()!;
    const nodePorts = new Map(planned.map((n) => [n.instance, { api: nextPort(), app: nextPort() }]));
    const plan = planned.map((n) => ({ ...n, apiPort: nodePorts.get(n.instance)!.api, appPort: nodePorts.get(n.instance)!.app }));
    const planOf = (instance: string): PlannedNode => plan.find((p) => p.instance === instance)!;

    const toxiproxyPort = nextPort();
    const toxiproxyApi = `http://127.0.0.1:${toxiproxyPort}`;
    started.toxiproxy = spawnLogged(tools.toxiproxy, ['-host', '127.0.0.1', '-port', String(toxiproxyPort)], {
      cwd: dir,
      env: process.env,
      logFile: join(dir, 'toxiproxy.log'),
    });
    const toxiproxy = new ToxiproxyClient(toxiproxyApi);
    const consulStart =
      lease === 'consul' ? startConsul(tools.consul!, consulPorts(nextPort), dir, signal).then((agent) => (started.consul = agent)) : null;
    consulStarting = consulStart;
    await untilAborted(
      waitFor(() => toxiproxy.version(), 10_000, 'toxiproxy API'),
      signal,
    );
    log(`toxiproxy ${toxiproxyApi}`);

    // Each node's links: one Toxiproxy listener per node it may stream from.
    const listenOf = new Map<string, string>();
    for (const receiver of plan) {
      for (const source of sourcesOf(receiver)) {
        const listen = `127.0.0.1:${nextPort()}`;
        await toxiproxy.createProxy(linkName(receiver.instance, source.instance), listen, `127.0.0.1:${planOf(source.instance).apiPort}`);
        listenOf.set(linkName(receiver.instance, source.instance), listen);
      }
    }

    let consulUrl: string | null = null;
    const viewUrls = new Map<string, string>();
    if (consulStart) {
      const agent = await untilAborted(consulStart, signal);
      consulUrl = agent.url;
      log(`consul ${agent.url} (lease key ${LEASE_KEY}, TTL ${timing.ttlMs} ms, lock delay ${timing.lockDelayMs} ms)`);
      const config: ConsulViewsConfig = {
        upstream: agent.url,
        key: LEASE_KEY,
        views: plan.map((receiver) => {
          const port = nextPort();
          viewUrls.set(receiver.instance, `http://127.0.0.1:${port}`);
          return {
            name: receiver.instance,
            port,
            rewrites: Object.fromEntries(
              sourcesOf(receiver).map((source) => [
                `http://127.0.0.1:${planOf(source.instance).apiPort}`,
                `http://${listenOf.get(linkName(receiver.instance, source.instance))!}`,
              ]),
            ),
          };
        }),
      };
      started.views = spawnLogged(
        process.execPath,
        ['--import', 'tsx', join(PROJECT_ROOT, 'tools', 'cluster', 'consul-views-main.ts'), JSON.stringify(config)],
        {
          cwd: PROJECT_ROOT,
          env: process.env,
          logFile: join(dir, 'consul-views.log'),
        },
      );
      for (const url of viewUrls.values()) {
        await untilAborted(
          waitFor(() => fetch(`${url}/v1/status/leader`).then(okOrThrow), VIEWS_START_TIMEOUT_MS, `consul view ${url}`),
          signal,
        );
      }
      started.watch = new LeaseWatch(agent.url);
      await untilAborted(started.watch.start(), signal);
    }
    const watch = started.watch;
    holderNow = watch ? () => watch.holder() : () => staticPrimary.instance;

    const secret = options.env?.RYW_SECRET ?? randomBytes(24).toString('hex');
    const baseEnv = { RYW_SECRET: secret, ...options.env };
    const nodes: ProcessNode[] = [];
    let controlUrl = '';
    let edgeMainUrl = '';
    const pids = (): number[] =>
      [started.toxiproxy?.pid, started.consul?.process.pid, started.views?.pid, ...nodes.map((n) => n.pid)].filter(
        (p): p is number => typeof p === 'number',
      );
    const instances = plan.map((n) => ({ instance: n.instance, region: n.region }));
    const saveState = (): Promise<void> =>
      writeState(dir, {
        ownerPid: process.pid,
        controlUrl,
        edgeUrl: edgeMainUrl,
        toxiproxyApi,
        regions,
        primaryRegion,
        instances,
        lease,
        pids: pids(),
      });
    await saveState();
    const firstEnv = (n: PlannedNode): EnvOverrides => ({ ...options.nodeEnv?.[n.region], ...options.nodeEnv?.[n.instance] });
    for (const n of plan) {
      const apiUrl = `http://127.0.0.1:${n.apiPort}`;
      const nodeLease: LiteFsLease =
        lease === 'consul'
          ? {
              type: 'consul',
              candidate: n.candidate,
              hostname: n.instance,
              advertiseUrl: apiUrl,
              consulUrl: viewUrls.get(n.instance)!,
              key: LEASE_KEY,
              ...timing,
            }
          : {
              type: 'static',
              candidate: n.instance === staticPrimary.instance,
              primaryHostname: staticPrimary.instance,
              primaryAdvertiseUrl:
                n.instance === staticPrimary.instance ? apiUrl : `http://${listenOf.get(linkName(n.instance, staticPrimary.instance))!}`,
            };
      // Where a candidate, once primary, finds the other candidates (RYW_DURABILITY=standby).
      const standbys = lease === 'consul' && n.candidate ? candidates.filter((c) => c.instance !== n.instance) : [];
      const standbyEnv: Record<string, string> =
        standbys.length > 0 ? { RYW_STANDBYS: standbys.map((c) => `http://127.0.0.1:${planOf(c.instance).apiPort}`).join(',') } : {};
      nodes.push(
        new ProcessNode(
          {
            region: n.region,
            instance: n.instance,
            candidate: n.candidate,
            isPrimary: () => holderNow() === n.instance,
            dir: join(dir, n.instance),
            appPort: n.appPort,
            apiPort: n.apiPort,
            ...(options.litefsProxy ? { proxy: { port: nextPort(), passthrough: options.litefsProxy.passthrough } } : {}),
            ...(options.litefsExitOnError !== undefined ? { exitOnError: options.litefsExitOnError } : {}),
            lease: nodeLease,
            appCommand: options.appCommand ?? DEFAULT_APP_COMMAND,
            cwd: PROJECT_ROOT,
            baseEnv: { ...baseEnv, ...standbyEnv },
            onSpawn: saveState,
            onUnexpectedExit: (code) => log(`${n.instance} exited unexpectedly (${code}); see ${join(dir, n.instance, 'node.log')}`),
          },
          tools,
        ),
      );
    }

    // The first candidate first: it takes the lease (or is the static
    // primary) and creates the database (the app migrates); the others only
    // become ready once they have streamed from it.
    const [first, ...rest] = nodes;
    started.nodes.push(first!);
    await first!.start(firstEnv(plan[0]!), { signal });
    log(`${first!.instance} primary, app ${first!.appUrl}`);
    started.nodes.push(...rest);
    // Settled, not all: stopping while another node is still starting could
    // miss the LiteFS it is about to spawn.
    const starts = await Promise.allSettled(rest.map((node, i) => node.start(firstEnv(plan[i + 1]!), { signal })));
    const failed = starts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const node of rest) log(`${node.instance} ${node.candidate ? 'replica (lease candidate)' : 'replica'}, app ${node.appUrl}`);

    const leaseSettings: LeaseSettings =
      lease === 'consul' ? { type: 'consul', consulUrl: consulUrl!, key: LEASE_KEY, ...timing } : { type: 'static' };
    // clusterFacade() returns closures, not methods that use `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const { startEdge, ...facade } = clusterFacade({
      regions,
      nodes,
      linksOf: (node) => {
        const sources = sourcesOf(planOf(node.instance));
        return sources.length === 0 ? undefined : { toxiproxy, proxies: sources.map((s) => linkName(node.instance, s.instance)) };
      },
      statusPositions: true,
      syncPollMs: SYNC_POLL_MS,
      lease: leaseSettings,
      holder: holderNow,
      primaryChanges: () => watch?.changes() ?? [],
    });
    const lifecycle = nodeLifecycle(facade, nodes, {
      lease,
      timing,
      watch,
      firstEnv: (node) => firstEnv(planOf(node.instance)),
      log,
    });
    const cluster: ProcessCluster = {
      ...facade,
      ...lifecycle,
      dir,
      toxiproxyApi,
      consulUrl,
      nodes,
      get controlUrl() {
        return `${facade.edgeUrl()}/_cluster/api`;
      },
      async stop() {
        await stopAll();
      },
    };

    signal.throwIfAborted();
    const edge = await startEdge(
      options.basePort ?? DEFAULT_BASE_PORT,
      createControlHandler(cluster, () => controlStatus(cluster)),
    );
    started.edge = edge;
    signal.throwIfAborted();
    controlUrl = cluster.controlUrl;
    edgeMainUrl = edge.mainUrl;
    await saveState();
    log(`edge ${edge.mainUrl} (${regions.map((r) => `${r} ${edge.regionUrls[r]}`).join(', ')})`);
    return cluster;
  } catch (err) {
    // A Consul still starting would otherwise come up after everything was stopped.
    await consulStarting?.catch(() => {});
    await stopAll();
    // Whatever failed after an abort (a node killed mid-start) failed because of it.
    throw signal.aborted ? signal.reason : err;
  }
}

type Lifecycle = Pick<
  ProcessCluster,
  'restartNode' | 'stopNode' | 'startNode' | 'kill' | 'start' | 'handoff' | 'waitForPrimary' | 'restartPrimaryWithFreshData'
>;

/** What makes nodes come and go, crash, and pass the lease on. */
function nodeLifecycle(
  facade: Omit<ClusterFacade<ProcessNode>, 'startEdge'>,
  nodes: readonly ProcessNode[],
  context: {
    readonly lease: LeaseType;
    readonly timing: { readonly ttlMs: number; readonly lockDelayMs: number };
    readonly watch: LeaseWatch | null;
    readonly firstEnv: (node: ProcessNode) => EnvOverrides;
    readonly log: (line: string) => void;
  },
): Lifecycle {
  const { watch, log } = context;
  /** How long a crashed holder's lease may outlive it: Consul expires a session after twice its TTL. */
  const leaseExpiryMs = 2 * context.timing.ttlMs + context.timing.lockDelayMs;
  const instanceNode = (instance: string): ProcessNode => {
    const node = nodes.find((n) => n.instance === instance);
    if (!node) {
      facade.nodesOf(instance); // names the instances when it is unknown
      throw new ControlInputError(
        `${instance} is a region: name one of its instances (${facade
          .nodesOf(instance)
          .map((n) => n.instance)
          .join(', ')})`,
      );
    }
    return node;
  };

  const waitForPrimary = async (timeoutMs: number): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const holder = facade.primary();
      if (holder?.live && (context.lease === 'static' || (await holder.info())?.isPrimary)) return holder.instance;
      if (Date.now() > deadline) throw new Error(`no primary within ${timeoutMs} ms (lease held by ${holder?.instance ?? 'nobody'})`);
      await sleep(PRIMARY_POLL_MS);
    }
  };

  /** Whether `candidate` follows `primary` and has its position (at most HANDOFF_CATCH_UP_MS from now). */
  const catchesUp = async (candidate: ProcessNode, primary: ProcessNode): Promise<string | null> => {
    const target = await primary.position();
    const deadline = Date.now() + HANDOFF_CATCH_UP_MS;
    for (;;) {
      const [info, pos] = await Promise.all([candidate.info(), candidate.position()]);
      const follows = info !== null && info.primary === primary.instance;
      if (follows && target && pos && pos.txid >= target.txid) return null;
      if (Date.now() > deadline) {
        if (!follows) return `${candidate.instance} is not connected to ${primary.instance}`;
        const behind = target && pos ? Number(target.txid - pos.txid) : '?';
        return `${candidate.instance} is ${behind} transactions behind ${primary.instance}`;
      }
      await sleep(PRIMARY_POLL_MS);
    }
  };

  return {
    async restartNode(target: string, env?: EnvOverrides) {
      const node = facade.node(target);
      await node.stop();
      await node.start(env ?? {});
    },
    stopNode: (target) => facade.node(target).stop(),
    startNode: (target, env) => {
      const node = facade.node(target);
      return node.start(env ?? context.firstEnv(node));
    },

    async kill(target: string) {
      const named = target === PRIMARY_TARGET ? facade.primary() : null;
      if (target === PRIMARY_TARGET && !named?.running) {
        throw new ControlInputError(`no primary runs now (lease held by ${named?.instance ?? 'nobody'}): nothing to kill as primary`);
      }
      const victims = (named ? [named] : facade.nodesOf(target)).filter((n) => n.running);
      if (victims.length === 0) throw new ControlInputError(`${target} is not running: start it first`);
      await Promise.all(victims.map((n) => n.kill()));
      log(`killed ${victims.map((n) => n.instance).join(', ')} (SIGKILL)`);
      return victims.map((n) => n.instance);
    },

    async start(instance: string) {
      const node = instanceNode(instance);
      if (node.running) throw new ControlInputError(`${instance} is running: kill or stop it first`);
      // A crashed holder's session outlives it for up to twice its TTL; back
      // before that, its new LiteFS would find itself named primary.
      if (watch && watch.holder() === instance) {
        const deadline = Date.now() + leaseExpiryMs + 2000;
        while (watch.holder() === instance && Date.now() < deadline) await sleep(PRIMARY_POLL_MS);
      }
      try {
        await node.start(node.lastOverrides);
      } catch (err) {
        // Not healthy in time: no half-started node is left running.
        await node.stop().catch(() => {});
        throw err;
      }
      log(`started ${instance}: ${node.isPrimary ? 'primary' : 'replica'}`);
    },

    async handoff(instance?: string) {
      if (context.lease === 'static')
        throw new ControlInputError('the lease is static: the primary cannot move (start the cluster with --lease consul)');
      const current = facade.primary();
      if (!current?.live)
        throw new ControlInputError(`no primary runs now (lease held by ${current?.instance ?? 'nobody'}): nothing to hand off`);
      let choices: ProcessNode[];
      if (instance !== undefined) {
        const node = instanceNode(instance);
        if (!node.candidate)
          throw new ControlInputError(
            `${instance} is not a lease candidate (candidates: ${nodes
              .filter((n) => n.candidate)
              .map((n) => n.instance)
              .join(', ')})`,
          );
        if (node === current) throw new ControlInputError(`${instance} holds the lease already`);
        if (!node.live) throw new ControlInputError(`${instance} is not running: start it first`);
        choices = [node];
      } else {
        choices = nodes.filter((n) => n.candidate && n !== current && n.live);
        if (choices.length === 0)
          throw new ControlInputError(`no other lease candidate runs: nothing to hand ${current.instance}'s lease to`);
      }
      const reasons: string[] = [];
      let target: ProcessNode | null = null;
      for (const choice of choices) {
        const why = await catchesUp(choice, current);
        if (why === null) {
          target = choice;
          break;
        }
        reasons.push(why);
      }
      if (!target) throw new ControlInputError(`no caught-up candidate: ${reasons.join('; ')}`);
      // LiteFS's own way, as a deploy does it: the target asks the primary to hand over.
      const res = await fetch(`${target.litefsApiUrl}/promote`, { method: 'POST', signal: AbortSignal.timeout(HANDOFF_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`handoff to ${target.instance}: LiteFS answered ${res.status}: ${(await res.text()).trim()}`);
      const deadline = Date.now() + HANDOFF_TIMEOUT_MS;
      while (!(facade.primary() === target && (await target.info())?.isPrimary)) {
        if (Date.now() > deadline) throw new Error(`handoff to ${target.instance}: not primary within ${HANDOFF_TIMEOUT_MS} ms`);
        await sleep(PRIMARY_POLL_MS);
      }
      log(`handed the lease from ${current.instance} to ${target.instance}`);
      return target.instance;
    },

    waitForPrimary,

    async restartPrimaryWithFreshData() {
      const primary = facade.primary() ?? nodes.find((n) => n.candidate)!;
      // No other candidate may take the lease while the primary is away.
      const others = nodes.filter((n) => n.candidate && n !== primary && n.running);
      for (const node of others) await node.stop();
      await primary.stop();
      await primary.wipeData();
      await primary.start(context.firstEnv(primary));
      for (const node of others) await node.start(node.lastOverrides);
    },
  };
}

/** The instances of a cluster: `candidates` in the first region, one in every other. */
function planNodes(regions: readonly string[], candidates: number): PlannedNode[] {
  return regions.flatMap((region, r) =>
    Array.from({ length: r === 0 ? candidates : 1 }, (_, i) => ({
      region,
      instance: `${region}-${i + 1}`,
      candidate: r === 0,
      apiPort: 0,
      appPort: 0,
    })),
  );
}

async function okOrThrow(res: Response): Promise<void> {
  await res.body?.cancel();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
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
  const ours = await access(join(dir, DIR_MARKER)).then(
    () => true,
    () => false,
  );
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
