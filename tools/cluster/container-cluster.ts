/**
 * The container backend of `Cluster`: the project's own image (the app under
 * `litefs mount`) for the primary and each replica, a Toxiproxy container on
 * each replica's replication link, all on the host's network so that every
 * byte stays on 127.0.0.1, and the edge router in this process.
 *
 * The edge runs here rather than in a container because it stands for Fly.io's
 * proxy, which is not part of the image that ships: in-process it is the very
 * code the process backend runs, and a test's requests go through it the same
 * way. Everything that ships (LiteFS, the app) and everything that injects the
 * faults (Toxiproxy) is a container.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer } from 'testcontainers';
import type { Edge } from '../edge/edge-router.js';
import type { EdgeStatus } from '../edge/status.js';
import { isAlive } from './child-process.js';
import { DEFAULT_REGIONS, type Cluster, type EnvOverrides } from './cluster.js';
import { clusterFacade, proxyName, waitFor } from './cluster-facade.js';
import { validateRegions } from './control-command.js';
import { CLUSTER_LABEL, ContainerNode, OWNER_HOST_LABEL, OWNER_PID_LABEL } from './container-node.js';
import { freePorts } from './ports.js';
import { ToxiproxyClient } from './toxiproxy.js';

/** What `npm run setup:docker` builds from the project's Dockerfile. */
export const DEFAULT_APP_IMAGE = 'litefs-ryw:test';
/** What `npm run setup:docker` builds from `.tools/bin/toxiproxy-server` (the cluster tier's pin). */
export const DEFAULT_TOXIPROXY_IMAGE = 'local/toxiproxy:2.12.0';
/** How long a Toxiproxy container gets to answer its API. */
const TOXIPROXY_START_TIMEOUT_MS = 15_000;
/** Between rounds of `waitForSync`: each round is a `docker exec` per node. */
const SYNC_POLL_MS = 20;

export interface ContainerClusterOptions {
  /** The first region is the primary's. */
  readonly regions?: readonly string[];
  readonly appImage?: string;
  readonly toxiproxyImage?: string;
  /** Where node logs go (`<region>.log`); created if missing. */
  readonly logDir: string;
  /** The edge's main port; region ports follow it. 0 (the default) picks free ports. */
  readonly basePort?: number;
  /** Extra environment for every node's app (e.g. `RYW_WAIT_MS`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Per-region environment changes at first start (and at `startNode` without env). */
  readonly nodeEnv?: Readonly<Record<string, EnvOverrides>>;
  readonly log?: (line: string) => void;
}

export interface ContainerCluster extends Cluster {
  /** Labels every container of this cluster carries (`CLUSTER_LABEL`). */
  readonly id: string;
  readonly nodes: readonly ContainerNode[];
  /** Each replica region's Toxiproxy API. */
  readonly toxiproxyApis: Readonly<Record<string, string>>;
  readonly logDir: string;
  status(): Promise<EdgeStatus>;
}

/**
 * Starts the cluster: a Toxiproxy container per replica, the primary's
 * container, then the replicas' (each streaming through its Toxiproxy), then
 * the edge. Everything started is removed again if a later step fails.
 */
export async function startContainerCluster(options: ContainerClusterOptions): Promise<ContainerCluster> {
  const regions = [...(options.regions ?? DEFAULT_REGIONS)];
  validateRegions(regions);
  const primaryRegion = regions[0]!;
  const appImage = options.appImage ?? DEFAULT_APP_IMAGE;
  const toxiproxyImage = options.toxiproxyImage ?? DEFAULT_TOXIPROXY_IMAGE;
  const log = options.log ?? (() => {});
  const logDir = resolve(options.logDir);
  await mkdir(logDir, { recursive: true });

  const removed = await removeAbandonedContainers();
  if (removed.length > 0) log(`removed containers of a crashed run: ${removed.join(', ')}`);

  const id = randomBytes(4).toString('hex');
  const labels = { [CLUSTER_LABEL]: id, [OWNER_PID_LABEL]: String(process.pid), [OWNER_HOST_LABEL]: hostname() };
  const started: { proxies: StartedTestContainer[]; nodes: ContainerNode[]; edge: Edge | null } = { proxies: [], nodes: [], edge: null };
  const stopAll = async (): Promise<void> => {
    await started.edge?.close();
    // Replicas first: the primary going away would only make them reconnect.
    await Promise.all([...started.nodes].reverse().map((node) => node.remove().catch(() => {})));
    await Promise.all(started.proxies.map((proxy) => proxy.stop({ timeout: 0, remove: true }).catch(() => {})));
  };

  try {
    const replicaRegions = regions.filter((r) => r !== primaryRegion);
    // All at once, so the kernel hands out no port twice: the primary's API,
    // each replica's Toxiproxy API, listener and LiteFS API, each node's app.
    const ports = await freePorts(1 + 3 * replicaRegions.length + regions.length);
    const nextPort = (): number => ports.pop()!;
    const primaryApiPort = nextPort();
    const toxiproxies = new Map<string, ToxiproxyClient>();
    const advertiseUrls = new Map<string, string>([[primaryRegion, `http://127.0.0.1:${primaryApiPort}`]]);
    await Promise.all(
      replicaRegions.map(async (region) => {
        const apiPort = nextPort();
        const container = await new GenericContainer(toxiproxyImage)
          .withName(`litefs-ryw-${id}-toxiproxy-${region}`)
          .withLabels(labels)
          .withNetworkMode('host')
          // The public image's entrypoint takes the same flags as the local one's.
          .withCommand(['-host', '127.0.0.1', '-port', String(apiPort)])
          .start();
        started.proxies.push(container);
        const client = new ToxiproxyClient(`http://127.0.0.1:${apiPort}`);
        await waitFor(() => client.version(), TOXIPROXY_START_TIMEOUT_MS, `toxiproxy of ${region}`);
        const listen = `127.0.0.1:${nextPort()}`;
        await client.createProxy(proxyName(region), listen, `127.0.0.1:${primaryApiPort}`);
        toxiproxies.set(region, client);
        advertiseUrls.set(region, `http://${listen}`);
        log(`toxiproxy for ${region}: ${client.apiUrl}, ${listen} -> primary's LiteFS`);
      }),
    );

    const secret = options.env?.RYW_SECRET ?? randomBytes(24).toString('hex');
    const baseEnv = { RYW_SECRET: secret, ...options.env };
    const nodes: ContainerNode[] = [];
    for (const region of regions) {
      const isPrimary = region === primaryRegion;
      nodes.push(
        new ContainerNode({
          region,
          instance: `${region}-1`,
          isPrimary,
          image: appImage,
          containerName: `litefs-ryw-${id}-${region}`,
          labels,
          appPort: nextPort(),
          apiPort: isPrimary ? primaryApiPort : nextPort(),
          primaryHostname: `${primaryRegion}-1`,
          primaryAdvertiseUrl: advertiseUrls.get(region)!,
          baseEnv,
          logFile: join(logDir, `${region}.log`),
        }),
      );
    }

    // The primary first: it creates the database (the app migrates), and
    // replicas only become ready once they have streamed from it.
    const [primary, ...replicas] = nodes;
    started.nodes.push(primary!);
    await primary!.start(options.nodeEnv?.[primaryRegion]);
    log(`${primary!.instance} primary: app ${primary!.appUrl}, container ${primary!.containerName}`);
    started.nodes.push(...replicas);
    await Promise.all(replicas.map((node) => node.start(options.nodeEnv?.[node.region])));
    for (const node of replicas) log(`${node.instance} replica: app ${node.appUrl}, container ${node.containerName}`);

    const primaryInstance = primary!.instance;
    // clusterFacade() returns closures, not methods that use `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const { startEdge, ...facade } = clusterFacade({
      regions,
      nodes,
      linksOf: (node) => {
        const toxiproxy = toxiproxies.get(node.region);
        return toxiproxy ? { toxiproxy, proxies: [proxyName(node.region)] } : undefined;
      },
      statusPositions: false,
      syncPollMs: SYNC_POLL_MS,
      lease: { type: 'static' },
      holder: () => primaryInstance,
      primaryChanges: () => [],
    });
    const cluster: ContainerCluster = {
      ...facade,
      id,
      nodes,
      toxiproxyApis: Object.fromEntries([...toxiproxies].map(([region, client]) => [region, client.apiUrl])),
      logDir,
      restartNode: (region, env) => facade.node(region).restart(env ?? {}),
      stopNode: (region) => facade.node(region).halt(),
      startNode: (region, env) => facade.node(region).resume(env ?? options.nodeEnv?.[region]),
      restartPrimaryWithFreshData: () => primary!.restart(options.nodeEnv?.[primaryRegion], true),
      kill: () => notOnContainers('kill'),
      start: () => notOnContainers('start'),
      handoff: () => notOnContainers('handoff'),
      waitForPrimary() {
        // A static lease: the one candidate is the primary whenever it runs.
        if (!primary!.live)
          return Promise.reject(new Error(`${primaryInstance} is not running (a static lease: no failover on containers)`));
        return Promise.resolve(primaryInstance);
      },
      stop: stopAll,
    };

    const edge = await startEdge(options.basePort ?? 0);
    started.edge = edge;
    log(`edge ${edge.mainUrl} (${regions.map((r) => `${r} ${edge.regionUrls[r]}`).join(', ')})`);
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * The failover verbs need a Consul lease, which the container backend does
 * not run yet (its nodes are on a static lease): say so plainly.
 */
function notOnContainers(verb: string): Promise<never> {
  return Promise.reject(new Error(`${verb}: not supported on containers yet (they run on a static lease); use the process cluster`));
}

/**
 * Removes the containers of container clusters whose owning process (on this
 * host) is gone: what a test run killed mid-way (Ctrl-C, a CI timeout) leaves,
 * since there is no Ryuk reaper where no registry can be reached.
 */
export async function removeAbandonedContainers(): Promise<string[]> {
  const client = await getContainerRuntimeClient();
  const containers = await client.container.dockerode.listContainers({ all: true, filters: { label: [CLUSTER_LABEL] } });
  const removed: string[] = [];
  for (const info of containers) {
    const pid = Number(info.Labels[OWNER_PID_LABEL]);
    if (info.Labels[OWNER_HOST_LABEL] !== hostname() || !Number.isInteger(pid) || isAlive(pid)) continue;
    await client.container.dockerode
      .getContainer(info.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
    removed.push(info.Names[0]?.replace(/^\//, '') ?? info.Id.slice(0, 12));
  }
  return removed;
}
