import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROJECT_ROOT } from '../../tools/cluster/tools.js';

/** The parts of V8's `.cpuprofile` (what `node --cpu-prof` writes) that the summary reads. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileShare {
  readonly name: string;
  /** Of the busy samples (idle left out), 0..1. */
  readonly share: number;
}

export interface ProfileSummary {
  /** Samples in the window, and the share of them the process was idle. */
  readonly samples: number;
  readonly idle: number;
  /** Time the process was busy in the window (ms), by the samples' intervals. */
  readonly busyMs: number;
  /** Self time by function (the frame on top of the stack). */
  readonly topSelf: readonly ProfileShare[];
  /** Self time by where the code lives: a package, Node's internals, a file of ours (the 40 largest). */
  readonly byModule: readonly ProfileShare[];
  /** Self time of the app's own functions (src/): what its middleware and routes cost themselves. */
  readonly ownSelf: readonly ProfileShare[];
}

const SPECIAL = new Set(['(program)', '(garbage collector)', '(root)']);

/** Where a frame's code lives: `express`, `node:internal`, `src/http/server.ts`, `(garbage collector)`… */
export function moduleOf(url: string, functionName: string): string {
  if (!url) return SPECIAL.has(functionName) || functionName === '(idle)' ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const path = url.startsWith('file:') ? fileURLToPath(url) : url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1]!;
  return relative(PROJECT_ROOT, path);
}

function frameName(frame: CpuProfile['nodes'][number]['callFrame']): string {
  const where = moduleOf(frame.url, frame.functionName);
  const name = frame.functionName || '(anonymous)';
  return where === name ? name : `${name} (${where})`;
}

/**
 * Summarizes the samples taken between `fromUs` and `toUs` (the profile's
 * clock is the monotonic one `process.hrtime()` reads, in µs), so that the
 * process's start (tsx compiling every module) and its exit are left out.
 */
export function summarizeProfile(profile: CpuProfile, fromUs: number, toUs: number, top = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const modules = new Map<string, number>();
  const own = new Map<string, number>();
  let t = profile.startTime;
  let samples = 0;
  let idle = 0;
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < fromUs || t > toUs) continue;
    samples++;
    const node = byId.get(profile.samples[i]!)!;
    if (node.callFrame.functionName === '(idle)') {
      idle++;
      continue;
    }
    busyUs += delta;
    const name = frameName(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + 1);
    const mod = moduleOf(node.callFrame.url, node.callFrame.functionName);
    modules.set(mod, (modules.get(mod) ?? 0) + 1);
    if (mod.startsWith('src/')) own.set(name, (own.get(name) ?? 0) + 1);
  }
  const busy = Math.max(1, samples - idle);
  const rank = (m: Map<string, number>, n: number): ProfileShare[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, count]) => ({ name, share: count / busy }));
  return {
    samples,
    idle: samples === 0 ? 0 : idle / samples,
    busyMs: busyUs / 1000,
    topSelf: rank(self, top),
    byModule: rank(modules, 40),
    ownSelf: rank(own, 12),
  };
}
