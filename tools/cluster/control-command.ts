/**
 * The control verbs' arguments, checked in one place for both ways in: the
 * CLI (strings from argv, checked before it looks for a cluster) and the
 * control API (JSON from the CLI or anything else on 127.0.0.1). A value the
 * cluster could not honour (`lag ewr 800ms`, a negative jitter, a region it
 * does not have) is refused with one line naming it, never read as 0.
 */
import type { EnvOverrides } from './cluster.js';

/** The verbs that change a running cluster (`status` only reads it). */
export const CONTROL_VERBS = ['lag', 'bandwidth', 'cut', 'heal', 'restart'] as const;
export type ControlVerb = (typeof CONTROL_VERBS)[number];

/** How each verb's arguments are written on the command line. */
export const CONTROL_SYNOPSIS: Readonly<Record<ControlVerb, string>> = {
  lag: 'lag <region> <ms> [jitter-ms]',
  bandwidth: 'bandwidth <region> <KB/s|off>',
  cut: 'cut <region>',
  heal: 'heal [region]',
  restart: 'restart <region> [--env KEY=VALUE]',
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
  'LITEFS_API',
  'MIGRATE_TOKEN',
]);

/** A verb with its arguments checked: what the cluster is asked to do. */
export type ControlCommand =
  | { readonly verb: 'lag'; readonly region: string; readonly ms: number; readonly jitterMs: number }
  | { readonly verb: 'bandwidth'; readonly region: string; readonly kbps: number | null }
  | { readonly verb: 'cut'; readonly region: string }
  | { readonly verb: 'heal'; readonly region: string | undefined }
  | { readonly verb: 'restart'; readonly region: string; readonly env: EnvOverrides };

/**
 * A verb's arguments as the control API's JSON body carries them. The CLI
 * builds the same object from argv, its numbers still strings.
 */
export interface ControlRequest {
  readonly region?: unknown;
  readonly ms?: unknown;
  readonly jitter?: unknown;
  readonly kbps?: unknown;
  readonly env?: unknown;
}

/** Which regions a cluster has, to check a command's region against. */
export interface ClusterRegions {
  readonly regions: readonly string[];
  readonly primaryRegion: string;
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
}

export function isControlVerb(verb: string): verb is ControlVerb {
  return (CONTROL_VERBS as readonly string[]).includes(verb);
}

/**
 * Checks one verb's arguments; with `cluster`, also that the region is one of
 * its replicas (faults apply to replication links) or, for `restart`, any of
 * its regions. Throws a ControlInputError naming the bad value.
 */
export function parseControlCommand(verb: ControlVerb, input: ControlRequest, cluster?: ClusterRegions): ControlCommand {
  const command = parseArguments(verb, input);
  if (cluster) checkRegion(command, cluster);
  return command;
}

/** Whether `command`'s region exists in `cluster` and is one the verb can act on. */
export function checkRegion(command: ControlCommand, cluster: ClusterRegions): void {
  const { region } = command;
  if (region === undefined) return;
  if (!cluster.regions.includes(region)) {
    throw new ControlInputError(`unknown region ${region} (regions: ${cluster.regions.join(', ')})`);
  }
  if (command.verb !== 'restart' && region === cluster.primaryRegion) {
    throw new ControlInputError(`${region} is the primary's region: faults apply to replicas' links`);
  }
}

function parseArguments(verb: ControlVerb, input: ControlRequest): ControlCommand {
  switch (verb) {
    case 'lag':
      return {
        verb,
        region: region(input.region),
        ms: parseWholeNumber(input.ms, 'ms', 'milliseconds'),
        jitterMs: input.jitter === undefined ? 0 : parseWholeNumber(input.jitter, 'jitter', 'milliseconds'),
      };
    case 'bandwidth': {
      const off = input.kbps === null || input.kbps === 'off';
      // At 0 Toxiproxy's bandwidth toxic sends empty chunks forever: a cut, which `cut` says plainly.
      return { verb, region: region(input.region), kbps: off ? null : parseWholeNumber(input.kbps, 'rate', 'KB/s', 1, ', or off') };
    }
    case 'cut':
      return { verb, region: region(input.region) };
    case 'heal':
      return { verb, region: input.region === undefined ? undefined : region(input.region) };
    case 'restart':
      return { verb, region: region(input.region), env: envOf(input.env) };
  }
}

function region(value: unknown): string {
  if (value === undefined || value === '') throw new ControlInputError('missing region');
  if (typeof value !== 'string' || !REGION_CODE.test(value)) {
    throw new ControlInputError(`region must be a region code (2 to 12 lowercase letters or digits), got ${JSON.stringify(value)}`);
  }
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
      return { region: command.region, ms: command.ms, jitter: command.jitterMs };
    case 'bandwidth':
      return { region: command.region, kbps: command.kbps };
    case 'cut':
      return { region: command.region };
    case 'heal':
      return command.region === undefined ? {} : { region: command.region };
    case 'restart':
      return { region: command.region, env: envForRequest(command.env) };
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
