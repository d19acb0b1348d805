/**
 * The part of a `Cluster` that does not depend on how its nodes run: finding
 * a target's nodes, the faults on each node's incoming Toxiproxy links,
 * waiting for the replicas, the status page and the edge in front of it all.
 * The process and the container backends build theirs here and add their own
 * node lifecycle (restart, stop, start, kill, handoff, fresh data).
 */
import { startEdge, type Edge, type EdgeOptions } from '../edge/edge-router.js';
import type { EdgeNode } from '../edge/edge-node.js';
import { basicStatus, type EdgeStatus } from '../edge/status.js';
import {
  describeFault,
  NO_FAULT,
  type Cluster,
  type ClusterNode,
  type Fault,
  type LeaseSettings,
  type PrimaryChange,
  type ReplicationPosition,
} from './cluster.js';
import { ControlInputError } from './control-command.js';
import { formatTxid } from '../../src/ryw/position.js';
import type { ToxiproxyClient } from './toxiproxy.js';

/** The Toxiproxy proxies that carry what one node receives: one per node it may stream from. */
export interface NodeLinks {
  readonly toxiproxy: ToxiproxyClient;
  readonly proxies: readonly string[];
}

export interface ClusterFacadeOptions<N extends ClusterNode> {
  /** The first region is the primary's. */
  readonly regions: readonly string[];
  /** Every node, the primary region's candidates first. */
  readonly nodes: readonly N[];
  /** The links into `node`; undefined for a node nothing streams to (a static primary). */
  readonly linksOf: (node: N) => NodeLinks | undefined;
  /**
   * Whether `status()` reads each node's position itself, besides what its
   * `/healthz` says: cheap from a file, a `docker exec` per node otherwise.
   */
  readonly statusPositions: boolean;
  /** Between rounds of `waitForSync`. */
  readonly syncPollMs: number;
  readonly lease: LeaseSettings;
  /** The instance holding the lease now, or null. */
  readonly holder: () => string | null;
  readonly primaryChanges: () => readonly PrimaryChange[];
}

/** The shared members of a `Cluster`, plus its status page and its edge. */
export type ClusterFacade<N extends ClusterNode> = Pick<
  Cluster,
  | 'regions'
  | 'primaryRegion'
  | 'instances'
  | 'lease'
  | 'edgeUrl'
  | 'appUrl'
  | 'lag'
  | 'bandwidth'
  | 'cut'
  | 'heal'
  | 'faults'
  | 'waitForSync'
  | 'primaryChanges'
> & {
  node(target: string): N;
  /** The nodes a target names: an instance, or a region's instances. */
  nodesOf(target: string): N[];
  /** The node holding the lease now, or null. */
  primary(): N | null;
  status(): Promise<EdgeStatus>;
  /**
   * Starts the edge router in front of the nodes; `edgeUrl()` answers from
   * then on. `basePort` 0 picks free ports, else region ports follow it.
   */
  startEdge(basePort: number, control?: EdgeOptions['control']): Promise<Edge>;
};

/** A static cluster's replica link: one Toxiproxy proxy per replica region (containers). */
export function proxyName(region: string): string {
  return `litefs-${region}`;
}

/** A process cluster's link: what `receiver` gets from `source` while `source` is primary. */
export function linkName(receiver: string, source: string): string {
  return `litefs-${receiver}-from-${source}`;
}

export function clusterFacade<N extends ClusterNode>(options: ClusterFacadeOptions<N>): ClusterFacade<N> {
  const { nodes } = options;
  const regions = [...options.regions];
  const primaryRegion = regions[0]!;
  const instances = nodes.map((n) => n.instance);
  const faults = new Map<string, Fault>(nodes.map((n) => [n.instance, NO_FAULT]));
  let mainUrl = '';
  let edgeUrls: Record<string, string> = {};

  const primary = (): N | null => {
    const holder = options.holder();
    return nodes.find((n) => n.instance === holder) ?? null;
  };
  const nodesOf = (target: string): N[] => {
    const byInstance = nodes.find((n) => n.instance === target);
    if (byInstance) return [byInstance];
    const inRegion = nodes.filter((n) => n.region === target);
    if (inRegion.length === 0) {
      throw new ControlInputError(
        `unknown instance or region ${target} (instances: ${instances.join(', ')}; regions: ${regions.join(', ')})`,
      );
    }
    return inRegion;
  };
  const nodeOf = (target: string): N => {
    const found = nodesOf(target);
    const current = primary();
    return found.find((n) => n === current) ?? found[0]!;
  };
  /** The nodes a fault verb acts on: the target's, except the primary (nothing streams to it). */
  const faultNodes = (target: string): N[] => {
    const found = nodesOf(target);
    const current = primary();
    const receivers = found.filter((n) => n !== current && options.linksOf(n) !== undefined);
    if (receivers.length === 0) {
      const replicas = nodes.filter((n) => n !== current).map((n) => n.instance);
      const what =
        found.length === 1 ? `${found[0]!.instance} is the primary now` : `${target} has only the primary (${current?.instance ?? 'none'})`;
      throw new ControlInputError(`${what}: nothing streams to it; faults apply to replicas' links (${replicas.join(', ')})`);
    }
    return receivers;
  };
  const applyFault = async (node: N, change: Partial<Fault>): Promise<void> => {
    const links = options.linksOf(node);
    if (!links) throw new ControlInputError(`${node.instance} is the primary: nothing streams to it`);
    const before = faults.get(node.instance) ?? NO_FAULT;
    const next = { ...before, ...change };
    for (const proxy of links.proxies) await applyToxics(links.toxiproxy, proxy, before, next);
    faults.set(node.instance, next);
  };
  const faultAll = async (target: string, change: Partial<Fault>): Promise<void> => {
    for (const node of faultNodes(target)) await applyFault(node, change);
  };
  const edgeNodes = (): EdgeNode[] => nodes.map((n) => ({ instance: n.instance, region: n.region, url: n.appUrl, live: n.live }));

  const status = async (): Promise<EdgeStatus> => {
    const basic = await basicStatus(edgeNodes(), primaryRegion, mainUrl, edgeUrls);
    const holder = primary();
    const primaryPos = options.statusPositions && holder?.live ? await holder.position() : null;
    return {
      ...basic,
      lease: { ...options.lease, holder: holder?.instance ?? null },
      primaryChanges: options.primaryChanges(),
      nodes: await Promise.all(
        basic.nodes.map(async (s, i) => {
          const node = nodes[i]!;
          const positions =
            options.statusPositions && node.live
              ? await node.position().then((pos) => ({
                  position: s.position ?? (pos ? formatTxid(pos.txid) : null),
                  behindTx: pos && primaryPos ? Math.max(0, Number(primaryPos.txid - pos.txid)) : s.behindTx,
                }))
              : {};
          return {
            ...s,
            ...positions,
            candidate: node.candidate,
            leaseHolder: node === holder,
            lagMs: node === holder || !node.live ? null : await node.lagMs(),
            injected: describeFault(faults.get(node.instance) ?? NO_FAULT),
          };
        }),
      ),
    };
  };

  return {
    regions,
    primaryRegion,
    instances,
    lease: options.lease,
    edgeUrl(region?: string) {
      if (region === undefined) return mainUrl;
      const url = edgeUrls[region];
      if (!url) throw new Error(`no edge port for region ${region}`);
      return url;
    },
    appUrl: (target) => nodeOf(target).appUrl,
    node: nodeOf,
    nodesOf,
    primary,
    lag: (target, ms, jitterMs = 0) => faultAll(target, { latencyMs: ms, jitterMs }),
    bandwidth: (target, kbps) => faultAll(target, { bandwidthKBps: kbps }),
    cut: (target) => faultAll(target, { cut: true }),
    async heal(target?: string) {
      // Any node, the primary too: it may carry a fault from when it was a replica.
      const targets = (target === undefined ? nodes : nodesOf(target)).filter((n) => options.linksOf(n) !== undefined);
      for (const node of targets) await applyFault(node, NO_FAULT);
    },
    faults() {
      const byInstance = Object.fromEntries(faults);
      const byRegion: Record<string, Fault> = {};
      for (const region of regions) {
        const own = nodes.filter((n) => n.region === region).map((n) => faults.get(n.instance) ?? NO_FAULT);
        if (own.length > 0 && own.every((f) => sameFault(f, own[0]!))) byRegion[region] = own[0]!;
      }
      return { ...byRegion, ...byInstance };
    },
    primaryChanges: options.primaryChanges,
    async waitForSync(timeoutMs: number): Promise<ReplicationPosition> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const holder = primary();
        const replicas = nodes.filter((n) => n !== holder && n.live);
        // All at once: in a container each read is a `docker exec`, so one round stays short.
        const [target, ...positions] = await Promise.all([
          holder?.live ? holder.position() : Promise.resolve(null),
          ...replicas.map((n) => n.position()),
        ]);
        if (target && positions.every((p) => p?.txid === target.txid && p.checksum === target.checksum)) return target;
        if (Date.now() > deadline) {
          const seen = replicas.map((n, i) => `${n.instance}=${positions[i]?.txid ?? 'none'}`).join(' ');
          throw new Error(
            `replicas not in sync within ${timeoutMs} ms: primary ${holder?.instance ?? 'none'}=${target?.txid ?? 'none'} ${seen}`,
          );
        }
        await new Promise((r) => setTimeout(r, options.syncPollMs));
      }
    },
    status,
    async startEdge(basePort: number, control?: EdgeOptions['control']): Promise<Edge> {
      const edge = await startEdge({
        nodes: edgeNodes,
        primaryRegion,
        mainPort: basePort,
        regionPorts: Object.fromEntries(regions.map((r, i) => [r, basePort === 0 ? 0 : basePort + 1 + i])),
        status,
        ...(control ? { control } : {}),
      });
      mainUrl = edge.mainUrl;
      edgeUrls = { ...edge.regionUrls };
      return edge;
    },
  };
}

function sameFault(a: Fault, b: Fault): boolean {
  return a.latencyMs === b.latencyMs && a.jitterMs === b.jitterMs && a.bandwidthKBps === b.bandwidthKBps && a.cut === b.cut;
}

/**
 * Brings a link's toxics from `before` to `next`. A heal from a cut also
 * resets the link's connections: LiteFS has no read deadline on its stream,
 * so it would otherwise keep waiting on a connection the partition left
 * half-dead.
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

/** Retries `probe` until it resolves, every 50 ms; rejects after `timeoutMs` naming `what`. */
export async function waitFor<T>(probe: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what} not up within ${timeoutMs} ms: ${String(err)}`, { cause: err });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
