/**
 * A stand-in for a running cluster behind the control API (no LiteFS): it
 * records what reached it and refuses what the real one refuses while fra-1
 * is its primary, so the CLI and the control API can be tested anywhere.
 */
import { NO_FAULT, type EnvOverrides, type Fault } from '../../tools/cluster/cluster.js';
import type { ControlStatus, ControlTarget } from '../../tools/cluster/control-api.js';
import { ControlInputError } from '../../tools/cluster/control-command.js';
import type { Edge } from '../../tools/edge/edge-router.js';

export const STAND_IN_REGIONS = ['fra', 'ewr', 'syd'];
export const STAND_IN_INSTANCES = ['fra-1', 'fra-2', 'ewr-1', 'syd-1'];

export interface StandInCluster {
  target: ControlTarget;
  /** What reached the stand-in cluster, in order. */
  calls: unknown[][];
  status(): Promise<ControlStatus>;
}

/**
 * `edge`: the edge in front of it, once started. `running`: instances
 * `start` refuses (they run already); fra-1's link is always refused a lag
 * (it is the primary: nothing streams to it).
 */
export function standInCluster(edge: () => Edge, options: { dir: () => string; running?: readonly string[] }): StandInCluster {
  const calls: unknown[][] = [];
  const running = new Set(options.running ?? []);
  const refuse = (message: string): Promise<never> => Promise.reject(new ControlInputError(message));
  const target: ControlTarget = {
    regions: STAND_IN_REGIONS,
    primaryRegion: 'fra',
    instances: STAND_IN_INSTANCES,
    lease: { type: 'consul', consulUrl: 'http://127.0.0.1:1', key: 'litefs/primary', ttlMs: 1000, lockDelayMs: 100, reconnectDelayMs: 500 },
    edgeUrl: (region?: string) => (region === undefined ? edge().mainUrl : edge().regionUrls[region]!),
    lag: async (region: string, ms: number, jitterMs?: number) =>
      region === 'fra-1' ? refuse('fra-1 is the primary now: nothing streams to it') : void calls.push(['lag', region, ms, jitterMs]),
    bandwidth: async (region: string, kbps: number | null) => void calls.push(['bandwidth', region, kbps]),
    cut: async (region: string) => void calls.push(['cut', region]),
    heal: async (region?: string) => void calls.push(['heal', region]),
    restartNode: async (region: string, env?: EnvOverrides) => void calls.push(['restart', region, env]),
    kill: async (which: string) => {
      calls.push(['kill', which]);
      return [which === 'primary' ? 'fra-1' : which];
    },
    start: async (instance: string) =>
      running.has(instance) ? refuse(`${instance} is running: kill or stop it first`) : void calls.push(['start', instance]),
    handoff: async (instance?: string) => {
      calls.push(['handoff', instance]);
      return instance ?? 'fra-2';
    },
    faults: (): Readonly<Record<string, Fault>> => Object.fromEntries(STAND_IN_REGIONS.map((r) => [r, NO_FAULT])),
  };
  const status = async (): Promise<ControlStatus> => ({
    dir: options.dir(),
    primaryRegion: 'fra',
    edge: { main: edge().mainUrl, regions: edge().regionUrls, statusPage: `${edge().mainUrl}/_cluster` },
    toxiproxyApi: 'http://127.0.0.1:1',
    nodes: [],
  });
  return { target, calls, status };
}
