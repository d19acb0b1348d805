/**
 * The part of a `Cluster` that does not depend on how its nodes run: finding
 * a region's node, the faults on the replicas' Toxiproxy links, waiting for
 * the replicas, the status page and the edge in front of it all. The process
 * and the container backends build theirs here and add their own node
 * lifecycle (restart, stop, start, fresh data).
 */
import { startEdge, type Edge, type EdgeOptions } from '../edge/edge-router.js';
import { basicStatus, type EdgeStatus } from '../edge/status.js';
import { describeFault, NO_FAULT, type Cluster, type ClusterNode, type Fault, type ReplicationPosition } from './cluster.js';
import { formatTxid } from '../../src/ryw/position.js';
import type { ToxiproxyClient } from './toxiproxy.js';

export interface ClusterFacadeOptions<N extends ClusterNode> {
  /** The first region is the primary's. */
  readonly regions: readonly string[];
  /** One per region, in the regions' order. */
  readonly nodes: readonly N[];
  /** The Toxiproxy that carries `region`'s replication link (asked only for replicas). */
  readonly toxiproxyOf: (region: string) => ToxiproxyClient | undefined;
  /**
   * Whether `status()` reads each node's position itself, besides what its
   * `/healthz` says: cheap from a file, a `docker exec` per node otherwise.
   */
  readonly statusPositions: boolean;
  /** Between rounds of `waitForSync`. */
  readonly syncPollMs: number;
}

/** The shared members of a `Cluster`, plus its status page and its edge. */
export type ClusterFacade<N extends ClusterNode> = Pick<
  Cluster,
  'regions' | 'primaryRegion' | 'edgeUrl' | 'appUrl' | 'lag' | 'bandwidth' | 'cut' | 'heal' | 'faults' | 'waitForSync'
> & {
  node(region: string): N;
  status(): Promise<EdgeStatus>;
  /**
   * Starts the edge router in front of the nodes; `edgeUrl()` answers from
   * then on. `basePort` 0 picks free ports, else region ports follow it.
   */
  startEdge(basePort: number, control?: EdgeOptions['control']): Promise<Edge>;
};

/** Every replica's link is a Toxiproxy proxy of this name. */
export function proxyName(region: string): string {
  return `litefs-${region}`;
}

export function clusterFacade<N extends ClusterNode>(options: ClusterFacadeOptions<N>): ClusterFacade<N> {
  const { nodes } = options;
  const regions = [...options.regions];
  const primaryRegion = regions[0]!;
  const faults = new Map<string, Fault>(regions.map((r) => [r, NO_FAULT]));
  let mainUrl = '';
  let edgeUrls: Record<string, string> = {};

  const nodeOf = (region: string): N => {
    const node = nodes.find((n) => n.region === region);
    if (!node) throw new Error(`no node in region ${region} (regions: ${regions.join(', ')})`);
    return node;
  };
  const primary = nodeOf(primaryRegion);
  const replicas = nodes.filter((n) => n !== primary);
  const applyFault = async (region: string, change: Partial<Fault>): Promise<void> => {
    const node = nodeOf(region); // names the regions when it does not exist
    const toxiproxy = node.isPrimary ? undefined : options.toxiproxyOf(region);
    if (!toxiproxy) throw new Error(`${region} is the primary's region: faults apply to replicas' links`);
    const before = faults.get(region) ?? NO_FAULT;
    const next = { ...before, ...change };
    await applyToxics(toxiproxy, proxyName(region), before, next);
    faults.set(region, next);
  };
  const edgeNodes = () => nodes.map((n) => ({ instance: n.instance, region: n.region, url: n.appUrl }));

  const status = async (): Promise<EdgeStatus> => {
    const basic = await basicStatus(edgeNodes(), primaryRegion, mainUrl, edgeUrls);
    const primaryPos = options.statusPositions ? await primary.position() : null;
    return {
      ...basic,
      nodes: await Promise.all(
        basic.nodes.map(async (s, i) => {
          const node = nodes[i]!;
          const positions = options.statusPositions
            ? await node.position().then((pos) => ({
                position: s.position ?? (pos ? formatTxid(pos.txid) : null),
                behindTx: pos && primaryPos ? Math.max(0, Number(primaryPos.txid - pos.txid)) : s.behindTx,
              }))
            : {};
          return {
            ...s,
            ...positions,
            lagMs: node.isPrimary ? null : await node.lagMs(),
            injected: describeFault(faults.get(node.region) ?? NO_FAULT),
          };
        }),
      ),
    };
  };

  return {
    regions,
    primaryRegion,
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
      const targets = region === undefined ? replicas.map((n) => n.region) : [region];
      for (const r of targets) await applyFault(r, NO_FAULT);
    },
    faults: () => Object.fromEntries(faults),
    async waitForSync(timeoutMs: number): Promise<ReplicationPosition> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // All at once: in a container each read is a `docker exec`, so one round stays short.
        const [target, ...positions] = await Promise.all([primary.position(), ...replicas.map((n) => n.position())]);
        if (target && positions.every((p) => p?.txid === target.txid && p.checksum === target.checksum)) return target;
        if (Date.now() > deadline) {
          const seen = replicas.map((n, i) => `${n.region}=${positions[i]?.txid ?? 'none'}`).join(' ');
          throw new Error(`replicas not in sync within ${timeoutMs} ms: primary=${target?.txid ?? 'none'} ${seen}`);
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
