/**
 * The control verbs' arguments, checked in one place for both ways in: the
 * CLI (strings from argv, checked before it looks for a cluster) and the
 * control API (JSON from the CLI or anything else on 127.0.0.1). A value the
 * cluster could not honour (`lag ewr 800ms`, a negative jitter, an instance
 * it does not have) is refused with one line naming it, never read as 0.
 * What only the running cluster knows (who is primary, what runs: `start` of
 * a running instance, `lag` of the primary) it refuses with the same error,
 * ControlInputError: exit 2 in the CLI, 400 from the API, nothing changed.
 */
import type { EnvOverrides, LeaseType } from './cluster.js';

/** The verbs that change a running cluster (`status` only reads it). */
export const CONTROL_VERBS = ['lag', 'bandwidth', 'cut', 'heal', 'restart', 'kill', 'start', 'handoff'] as const;
export type ControlVerb = (typeof CONTROL_VERBS)[number];

/** How each verb's arguments are written on the command line. */
export const CONTROL_SYNOPSIS: Readonly<Record<ControlVerb, string>> = {
  lag: 'lag <instance|region> <ms> [jitter-ms]',
  bandwidth: 'bandwidth <instance|region> <KB/s|off>',
  cut: 'cut <instance|region>',
  heal: 'heal [instance|region]',
  restart: 'restart <instance|region> [--env KEY=VALUE]',
  kill: 'kill <instance|region|primary>',
  start: 'start <instance>',
  handoff: 'handoff [instance]',
};

/**
 * The only variables `restart` may set or remove: the app's own settings
 * (src/config.ts). Anything else (NODE_OPTIONS, PATH, LD_PRELOAD, …) would
 * let a request run code; PORT, DATABASE_URL and FLY_* are the cluster's.
 */
export const CONTROL_ENV_ALLOWED: ReadonlySet<string> = new Set([
  'RYW_WAIT_MS',
  'RYW_FALLBACK',
  'RYW_TTL_S',
  'RYW_ENABLED',
  'RYW_SECRET',
  'RYW_DURABILITY',
  'RYW_DURABILITY_WAIT_MS',
  'RYW_STANDBYS',
  'LITEFS_API',
  'MIGRATE_TOKEN',
]);

/** `kill primary`: whichever node holds the lease when the kill arrives. */
export const PRIMARY_TARGET = 'primary';

/** A verb with its arguments checked: what the cluster is asked to do. */
export type ControlCommand =
  | { readonly verb: 'lag'; readonly target: string; readonly ms: number; readonly jitterMs: number }
  | { readonly verb: 'bandwidth'; readonly target: string; readonly kbps: number | null }
  | { readonly verb: 'cut'; readonly target: string }
  | { readonly verb: 'heal'; readonly target: string | undefined }
  | { readonly verb: 'restart'; readonly target: string; readonly env: EnvOverrides }
  | { readonly verb: 'kill'; readonly target: string }
  | { readonly verb: 'start'; readonly target: string }
  | { readonly verb: 'handoff'; readonly target: string | undefined };

/**
 * A verb's arguments as the control API's JSON body carries them. The CLI
 * builds the same object from argv, its numbers still strings. `region` is
 * the older name of `target`, still read.
 */
export interface ControlRequest {
  readonly target?: unknown;
  readonly region?: unknown;
  readonly ms?: unknown;
  readonly jitter?: unknown;
  readonly kbps?: unknown;
  readonly env?: unknown;
}

/** What a cluster has, to check a command's target against. */
export interface ClusterRegions {
  readonly regions: readonly string[];
  readonly primaryRegion: string;
  /** Every node; without it, one `<region>-1` per region. */
  readonly instances?: readonly { readonly instance: string; readonly region: string }[];
  /** Without it, static (what a cluster without a lease setting was). */
  readonly lease?: 'static' | 'consul';
}

/** Input the caller got wrong: the CLI exits 2 on it, the control API answers 400. */
export class ControlInputError extends Error {
  override readonly name = 'ControlInputError';
}

/** The region codes a cluster accepts (`--regions`), e.g. `fra`, `syd`. */
export const REGION_CODE = /^[a-z0-9]{2,12}$/;

/** `--regions`: codes, at least one, none twice (the first is the primary's). */
export function validateRegions(regions: readonly string[]): void {
  if (regions.length === 0) throw new ControlInputError('--regions: give at least one region');
  for (const r of regions) {
    if (!REGION_CODE.test(r)) throw new ControlInputError(`--regions: "${r}" is not a region code (2 to 12 lowercase letters or digits)`);
  }
  if (new Set(regions).size !== regions.length) throw new ControlInputError('--regions: a region is listed twice');
  if (regions.includes(PRIMARY_TARGET))
    throw new ControlInputError(`--regions: "${PRIMARY_TARGET}" names the lease holder in kill, not a region`);
}

/** The most lease candidates `--candidates` accepts: enough for any failover drill. */
export const MAX_CANDIDATES = 5;

/** `--candidates`: a whole number from 1 to MAX_CANDIDATES; a static lease has one. */
export function validateCandidates(count: number, lease: LeaseType): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_CANDIDATES) {
    throw new ControlInputError(`--candidates: expected a whole number from 1 to ${MAX_CANDIDATES}, got ${count}`);
  }
  if (lease === 'static' && count !== 1) {
    throw new ControlInputError('--candidates: a static lease has exactly one candidate, the primary (use --lease consul)');
  }
}

export function isControlVerb(verb: string): verb is ControlVerb {
  return (CONTROL_VERBS as readonly string[]).includes(verb);
}

/** An instance (`fra-2`) or a region (`fra`). */
export const TARGET = /^[a-z0-9]{2,12}(-[0-9]{1,3})?$/;

/**
 * Checks one verb's arguments; with `cluster`, also that its target exists
 * there and is one the verb can act on as far as the cluster's shape tells
 * (the running cluster checks the rest: who is primary, what runs). Throws a
 * ControlInputError naming the bad value.
 */
export function parseControlCommand(verb: ControlVerb, input: ControlRequest, cluster?: ClusterRegions): ControlCommand {
  const command = parseArguments(verb, input);
  if (cluster) checkTarget(command, cluster);
  return command;
}

/** The instances of `cluster`, by region. */
export function instancesOf(cluster: ClusterRegions): readonly { readonly instance: string; readonly region: string }[] {
  return cluster.instances ?? cluster.regions.map((region) => ({ instance: `${region}-1`, region }));
}

/** Whether `command`'s target exists in `cluster` and is one the verb can act on. */
export function checkTarget(command: ControlCommand, cluster: ClusterRegions): void {
  const { target } = command;
  const lease = cluster.lease ?? 'static';
  if (command.verb === 'handoff' && lease === 'static') {
    throw new ControlInputError('the lease is static: the primary cannot move (start the cluster with --lease consul)');
  }
  if (target === undefined) return;
  if (command.verb === 'kill' && target === PRIMARY_TARGET) return;
  const instances = instancesOf(cluster);
  const isInstance = instances.some((i) => i.instance === target);
  if (!isInstance && !cluster.regions.includes(target)) {
    throw new ControlInputError(`unknown instance or region ${target} (instances: ${instances.map((i) => i.instance).join(', ')})`);
  }
  if ((command.verb === 'start' || command.verb === 'handoff') && !isInstance) {
    const own = instances.filter((i) => i.region === target).map((i) => i.instance);
    throw new ControlInputError(`${command.verb} takes an instance, not a region (${target}: ${own.join(', ')})`);
  }
  if (command.verb === 'handoff' && !instances.some((i) => i.instance === target && i.region === cluster.primaryRegion)) {
    const candidates = instances.filter((i) => i.region === cluster.primaryRegion).map((i) => i.instance);
    throw new ControlInputError(`${target} is not a lease candidate (candidates: ${candidates.join(', ')})`);
  }
  // On a static lease the primary never moves: its region's links carry nothing to it.
  const faultVerb = command.verb === 'lag' || command.verb === 'bandwidth' || command.verb === 'cut' || command.verb === 'heal';
  if (faultVerb && lease === 'static' && (target === cluster.primaryRegion || target === `${cluster.primaryRegion}-1`)) {
    throw new ControlInputError(`${target} is the primary's ${isInstance ? 'instance' : 'region'}: faults apply to replicas' links`);
  }
}

function parseArguments(verb: ControlVerb, input: ControlRequest): ControlCommand {
  const given = input.target ?? input.region;
  switch (verb) {
    case 'lag':
      return {
        verb,
        target: targetOf(given),
        ms: parseWholeNumber(input.ms, 'ms', 'milliseconds'),
        jitterMs: input.jitter === undefined ? 0 : parseWholeNumber(input.jitter, 'jitter', 'milliseconds'),
      };
    case 'bandwidth': {
      const off = input.kbps === null || input.kbps === 'off';
      // At 0 Toxiproxy's bandwidth toxic sends empty chunks forever: a cut, which `cut` says plainly.
      return { verb, target: targetOf(given), kbps: off ? null : parseWholeNumber(input.kbps, 'rate', 'KB/s', 1, ', or off') };
    }
    case 'cut':
      return { verb, target: targetOf(given) };
    case 'heal':
      return { verb, target: given === undefined ? undefined : targetOf(given) };
    case 'restart':
      return { verb, target: targetOf(given), env: envOf(input.env) };
    case 'kill':
      return { verb, target: given === PRIMARY_TARGET ? PRIMARY_TARGET : targetOf(given, 'instance, region or primary') };
    case 'start':
      return { verb, target: instanceOf(given) };
    case 'handoff':
      return { verb, target: given === undefined ? undefined : instanceOf(given) };
  }
}

function targetOf(value: unknown, what = 'instance or region'): string {
  if (value === undefined || value === '') throw new ControlInputError(`missing ${what}`);
  if (typeof value !== 'string' || !TARGET.test(value)) {
    throw new ControlInputError(
      `${what} must be an instance (fra-2) or a region code (2 to 12 lowercase letters or digits), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function instanceOf(value: unknown): string {
  if (value === undefined || value === '') throw new ControlInputError('missing instance');
  if (typeof value !== 'string' || !TARGET.test(value)) {
    throw new ControlInputError(`instance must be an instance name such as fra-2, got ${JSON.stringify(value)}`);
  }
  // A region here is named as such by checkTarget, which knows its instances.
  return value;
}

/**
 * A whole number from JSON (a number) or from argv (its digits): anything
 * else, `800ms`, `-5`, `1.5`, `""`, null, is refused rather than coerced
 * (`Number` would read `""` and null as 0, and JSON sends NaN as null).
 */
function parseWholeNumber(value: unknown, name: string, unit: string, min = 0, orElse = ''): number {
  if (value === undefined) throw new ControlInputError(`missing ${name}`);
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ControlInputError(`${name} must be a whole number of ${unit}, ${min} or more${orElse}; got ${JSON.stringify(value)}`);
  }
  return n;
}

/** The JSON body that carries `command` to the control API (what `parseControlCommand` reads back). */
export function requestOf(command: ControlCommand): ControlRequest {
  switch (command.verb) {
    case 'lag':
      return { target: command.target, ms: command.ms, jitter: command.jitterMs };
    case 'bandwidth':
      return { target: command.target, kbps: command.kbps };
    case 'cut':
    case 'kill':
    case 'start':
      return { target: command.target };
    case 'heal':
    case 'handoff':
      return command.target === undefined ? {} : { target: command.target };
    case 'restart':
      return { target: command.target, env: envForRequest(command.env) };
  }
}

/**
 * Environment changes as JSON can carry them: a variable to remove
 * (undefined) becomes null, which JSON.stringify would otherwise drop.
 */
export function envForRequest(env: EnvOverrides): Record<string, string | null> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v ?? null]));
}

/** `{NAME: value}` (null removes the variable), names from CONTROL_ENV_ALLOWED only. */
function envOf(value: unknown): EnvOverrides {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ControlInputError('env must be an object');
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!CONTROL_ENV_ALLOWED.has(k)) {
      throw new ControlInputError(`env: ${k} cannot be set here (allowed: ${[...CONTROL_ENV_ALLOWED].join(', ')})`);
    }
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new ControlInputError(`env: ${k} must be a string, or null to remove it`);
    }
    env[k] = v === null ? undefined : String(v);
  }
  return env;
}
