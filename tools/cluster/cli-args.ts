/**
 * The cluster CLI's command line, parsed without touching a cluster: what
 * `npm run cluster -- …` asks for, or a ControlInputError naming what is wrong
 * (the CLI prints it on one line and exits 2). The fault verbs' arguments go
 * through `parseControlCommand`, the control API's own check.
 */
import { resolve } from 'node:path';
import {
  DEFAULT_BASE_PORT,
  DEFAULT_CANDIDATES,
  DEFAULT_CLUSTER_DIR,
  DEFAULT_LEASE,
  DEFAULT_REGIONS,
  LEASE_TYPES,
  type LeaseType,
} from './cluster.js';
import {
  CONTROL_SYNOPSIS,
  CONTROL_VERBS,
  ControlInputError,
  envForRequest,
  isControlVerb,
  parseControlCommand,
  validateCandidates,
  validateRegions,
  type ControlCommand,
  type ControlRequest,
  type ControlVerb,
} from './control-command.js';

export type CliInvocation =
  | { readonly verb: 'help' }
  | {
      readonly verb: 'start';
      readonly dir: string;
      readonly regions: readonly string[];
      readonly basePort: number;
      readonly env: Readonly<Record<string, string>>;
      readonly lease: LeaseType;
      readonly candidates: number;
    }
  | { readonly verb: 'status'; readonly dir: string; readonly json: boolean }
  | { readonly verb: 'control'; readonly dir: string; readonly command: ControlCommand };

/** Every verb, in the order `--help` lists them. */
export const CLI_VERBS: readonly string[] = ['start', ...CONTROL_VERBS.filter((v) => v !== 'start'), 'status'];

/** Each option, and the verbs it means something to (`dir` and `help`: all). */
const OPTIONS = {
  regions: { kind: 'string', verbs: ['start'] },
  'base-port': { kind: 'string', verbs: ['start'] },
  lease: { kind: 'string', verbs: ['start'] },
  candidates: { kind: 'string', verbs: ['start'] },
  env: { kind: 'list', verbs: ['start', 'restart'] },
  json: { kind: 'boolean', verbs: ['status'] },
  dir: { kind: 'string', verbs: CLI_VERBS },
  help: { kind: 'boolean', verbs: CLI_VERBS },
} as const satisfies Record<string, { kind: 'string' | 'list' | 'boolean'; verbs: readonly string[] }>;
type OptionName = keyof typeof OPTIONS;

/** Positional arguments of each fault verb, in order, as request fields. */
const POSITIONALS: Readonly<Record<ControlVerb, readonly (keyof ControlRequest)[]>> = {
  lag: ['target', 'ms', 'jitter'],
  bandwidth: ['target', 'kbps'],
  cut: ['target'],
  heal: ['target'],
  restart: ['target'],
  kill: ['target'],
  start: ['target'],
  handoff: ['target'],
};

/** The options only starting the cluster reads: `start <instance>` takes none of them. */
const CLUSTER_START_OPTIONS: readonly OptionName[] = ['regions', 'base-port', 'lease', 'candidates', 'env'];

/**
 * A negative number (`lag ewr -5`) is a value for the verb to refuse by name,
 * not an unknown option `-5`.
 */
const NEGATIVE_NUMBER = /^-\d/;

export function parseCliArgs(argv: readonly string[]): CliInvocation {
  const { options, positionals } = tokenize(argv);
  if (options.help) return { verb: 'help' };
  const [verb = 'start', ...args] = positionals;
  if (verb !== 'status' && !isControlVerb(verb)) {
    throw new ControlInputError(`unknown verb ${verb} (verbs: ${CLI_VERBS.join(', ')})`);
  }
  for (const name of Object.keys(options) as OptionName[]) {
    if (!(OPTIONS[name].verbs as readonly string[]).includes(verb))
      throw new ControlInputError(`--${name} does not apply to ${verb} (see --help)`);
  }
  const dir = resolve(typeof options.dir === 'string' ? options.dir : DEFAULT_CLUSTER_DIR);
  const env = parseEnv(Array.isArray(options.env) ? options.env : []);
  // `start` alone starts the cluster; `start <instance>` brings one node back.
  const clusterStart = verb === 'start' && args.length === 0;
  if (verb === 'start' && !clusterStart) {
    const given = CLUSTER_START_OPTIONS.find((name) => options[name] !== undefined);
    if (given) throw new ControlInputError(`--${given} applies to starting the cluster, not to start <instance> (see --help)`);
  }
  if (clusterStart || verb === 'status') {
    if (args.length > 0) throw new ControlInputError(`${verb} takes no arguments, got ${args.join(' ')}`);
    if (verb === 'status') return { verb, dir, json: options.json === true };
    return {
      verb: 'start',
      dir,
      ...startOptions(options.regions, options['base-port']),
      ...leaseOptions(options.lease, options.candidates),
      env: definedOnly(env),
    };
  }
  if (!isControlVerb(verb)) throw new ControlInputError(`unknown verb ${String(verb)}`);
  try {
    const fields = POSITIONALS[verb];
    if (args.length > fields.length) throw new ControlInputError(`too many arguments: ${args.join(' ')}`);
    const input: Record<string, unknown> = Object.fromEntries(args.map((arg, i) => [fields[i]!, arg]));
    if (verb === 'restart') input.env = envForRequest(env);
    return { verb: 'control', dir, command: parseControlCommand(verb, input) };
  } catch (err) {
    if (!(err instanceof ControlInputError)) throw err;
    throw new ControlInputError(`${verb}: ${err.message} (usage: ${CONTROL_SYNOPSIS[verb]})`);
  }
}

function startOptions(regionsArg: unknown, basePortArg: unknown): { regions: readonly string[]; basePort: number } {
  const regions =
    typeof regionsArg === 'string'
      ? regionsArg
          .split(',')
          .map((r) => r.trim())
          .filter(Boolean)
      : DEFAULT_REGIONS;
  validateRegions(regions);
  if (basePortArg === undefined) return { regions, basePort: DEFAULT_BASE_PORT };
  // The region ports follow the main port: all of them must be ports (0: free ports for all).
  const highest = 65535 - regions.length;
  const basePort = typeof basePortArg === 'string' && /^\d{1,5}$/.test(basePortArg) ? Number(basePortArg) : NaN;
  if (!(basePort <= highest))
    throw new ControlInputError(`--base-port: expected a port number from 0 to ${highest}, got ${JSON.stringify(basePortArg)}`);
  return { regions, basePort };
}

function leaseOptions(leaseArg: unknown, candidatesArg: unknown): { lease: LeaseType; candidates: number } {
  if (leaseArg !== undefined && !(LEASE_TYPES as readonly unknown[]).includes(leaseArg)) {
    throw new ControlInputError(`--lease: expected ${LEASE_TYPES.join(' or ')}, got ${JSON.stringify(leaseArg)}`);
  }
  const lease = (leaseArg as LeaseType | undefined) ?? DEFAULT_LEASE;
  if (candidatesArg === undefined) return { lease, candidates: lease === 'consul' ? DEFAULT_CANDIDATES : 1 };
  const candidates = typeof candidatesArg === 'string' && /^\d{1,2}$/.test(candidatesArg) ? Number(candidatesArg) : NaN;
  if (Number.isNaN(candidates)) throw new ControlInputError(`--candidates: expected a whole number, got ${JSON.stringify(candidatesArg)}`);
  validateCandidates(candidates, lease);
  return { lease, candidates };
}

type OptionValues = Partial<Record<OptionName, string | true | string[]>>;

function tokenize(argv: readonly string[]): { options: OptionValues; positionals: string[] } {
  const options: OptionValues = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-' || NEGATIVE_NUMBER.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const given = eq < 0 ? arg : arg.slice(0, eq);
    const name = given === '-h' ? 'help' : given.startsWith('--') ? given.slice(2) : '';
    if (!Object.hasOwn(OPTIONS, name)) throw new ControlInputError(`unknown option ${given} (see --help)`);
    const option = name as OptionName;
    const { kind } = OPTIONS[option];
    if (kind === 'boolean') {
      if (eq >= 0) throw new ControlInputError(`${given} takes no value`);
      options[option] = true;
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ControlInputError(`${given} needs a value`);
    if (kind === 'list') options[option] = [...((options[option] as string[] | undefined) ?? []), value];
    else options[option] = value;
  }
  return { options, positionals };
}

/** `--env KEY=VALUE` pairs; `KEY=` removes the variable (on `restart`). */
function parseEnv(pairs: readonly string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ControlInputError(`--env: expected KEY=VALUE, got ${pair}`);
    const value = pair.slice(eq + 1);
    env[pair.slice(0, eq)] = value === '' ? undefined : value;
  }
  return env;
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}
