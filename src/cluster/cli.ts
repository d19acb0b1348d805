/**
 * `npm run cluster [-- verb …]`: a real LiteFS cluster on this machine, and
 * the verbs that inject faults into it from another terminal.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { DEFAULT_BASE_PORT, DEFAULT_CLUSTER_DIR, DEFAULT_REGIONS } from './cluster.js';
import { controlStatus, type ControlStatus } from './control-api.js';
import { callControl, envForRequest, fetchControlStatus } from './control-client.js';
import { startProcessCluster, type ProcessCluster } from './process-cluster.js';
import { readState } from './state-file.js';
import { isAlive } from './child-process.js';

/** Exit code of a start interrupted by a signal (128 + SIGINT, as shells report it). */
const INTERRUPTED_EXIT_CODE = 130;

const USAGE = `usage: npm run cluster -- [verb] [options]

  start (default)          start the cluster and keep it running; Ctrl-C stops it
      --regions fra,ewr,syd  regions, the first is the primary's (default ${DEFAULT_REGIONS.join(',')})
      --base-port 8080       edge main port; region ports follow (8081, 8082, …)
      --env KEY=VALUE        extra environment for every app (repeatable), e.g. RYW_WAIT_MS=300
  lag <region> <ms> [jitter] delay what the region's replica receives (0 removes it)
  bandwidth <region> <KB/s|off>  cap what the region's replica receives
  cut <region>             partition the region's replica from the primary
  heal [region]            remove the faults of one region, or of all
  restart <region> [--env KEY=VALUE]  restart one node (keeps its data); KEY is one of
                           RYW_WAIT_MS RYW_FALLBACK RYW_TTL_S RYW_ENABLED RYW_SECRET LITEFS_API
                           MIGRATE_TOKEN (KEY= removes it)
  status [--json]          print every URL, role, position, lag and fault

  --dir .cluster           the cluster's directory (all verbs)`;

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      regions: { type: 'string' },
      'base-port': { type: 'string' },
      dir: { type: 'string', default: DEFAULT_CLUSTER_DIR },
      env: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [verb = 'start', ...args] = positionals;
  const dir = resolve(values.dir);
  const env = parseEnv(values.env ?? []);
  switch (verb) {
    case 'start':
      return start(dir, values.regions, values['base-port'], env);
    case 'lag': {
      const [region, ms, jitter] = args;
      if (!region || ms === undefined) return usage('lag <region> <ms> [jitter]');
      return control(dir, 'lag', { region, ms: Number(ms), ...(jitter !== undefined ? { jitter: Number(jitter) } : {}) });
    }
    case 'bandwidth': {
      const [region, rate] = args;
      if (!region || rate === undefined) return usage('bandwidth <region> <KB/s|off>');
      return control(dir, 'bandwidth', { region, kbps: rate === 'off' ? null : Number(rate) });
    }
    case 'cut':
      if (!args[0]) return usage('cut <region>');
      return control(dir, 'cut', { region: args[0] });
    case 'heal':
      return control(dir, 'heal', args[0] ? { region: args[0] } : {});
    case 'restart':
      if (!args[0]) return usage('restart <region>');
      return control(dir, 'restart', { region: args[0], env: envForRequest(env) });
    case 'status':
      return status(dir, values.json);
    default:
      return usage(`unknown verb ${verb}`);
  }
}

async function start(dir: string, regionsArg: string | undefined, basePortArg: string | undefined, env: Record<string, string | undefined>): Promise<number> {
  const regions = regionsArg ? regionsArg.split(',').map((r) => r.trim()).filter(Boolean) : DEFAULT_REGIONS;
  const basePort = basePortArg === undefined ? DEFAULT_BASE_PORT : Number(basePortArg);
  if (!Number.isInteger(basePort) || basePort < 0 || basePort > 65535 - regions.length) {
    return usage(`--base-port: expected a port number, got ${basePortArg}`);
  }
  const appEnv = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  // The handlers go in before anything starts: Ctrl-C while the nodes come up
  // must stop and unmount what is already running, not leave it detached.
  const startup = new AbortController();
  let cluster: ProcessCluster | null = null;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      console.log('still stopping (unmounting)…');
      return;
    }
    stopping = true;
    console.log(`\n${signal}: stopping the cluster and unmounting …`);
    if (!cluster) {
      // Still starting: startProcessCluster stops what it started, then rejects.
      startup.abort(new Error(`${signal} during startup`));
      return;
    }
    cluster.stop().then(
      () => {
        console.log('stopped.');
        process.exit(0);
      },
      (err: unknown) => {
        console.error('stop failed:', err);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));

  console.log(`starting ${regions.length} nodes in ${dir} …`);
  try {
    cluster = await startProcessCluster({
      regions,
      basePort,
      dir,
      env: appEnv,
      log: (line) => console.log(`  ${line}`),
      signal: startup.signal,
    });
  } catch (err) {
    if (!startup.signal.aborted) throw err;
    console.log('stopped.');
    return INTERRUPTED_EXIT_CODE;
  }
  if (startup.signal.aborted) {
    // The signal came after the startup's last check: the cluster is up, stop it.
    await cluster.stop();
    console.log('stopped.');
    return INTERRUPTED_EXIT_CODE;
  }
  printStatus(await controlStatus(cluster));
  console.log(`\nInject faults from another terminal: npm run cluster -- lag ewr 800 | cut syd | heal | status`);
  console.log('Ctrl-C stops everything and unmounts.');
  return new Promise<number>(() => {}); // runs until a signal
}

async function control(dir: string, verb: string, body: unknown): Promise<number> {
  const url = await controlUrl(dir);
  if (!url) return 1;
  const answer = await callControl(url, verb, body);
  if (!answer.ok) {
    console.error(`${verb}: ${answer.error ?? `HTTP ${answer.status}`}`);
    return 1;
  }
  console.log(`${verb}: ok`);
  return status(dir, false);
}

async function status(dir: string, asJson: boolean): Promise<number> {
  const url = await controlUrl(dir);
  if (!url) return 1;
  const body = await fetchControlStatus(url);
  if (asJson) console.log(JSON.stringify(body, null, 2));
  else printStatus(body);
  return 0;
}

function printStatus(s: ControlStatus): void {
  console.log(`\nedge (main, by fly-prefer-region, default ${s.primaryRegion}): ${s.edge.main}`);
  console.log(`status page: ${s.edge.statusPage}`);
  console.log(`toxiproxy API: ${s.toxiproxyApi}`);
  const rows = s.nodes.map((n) => [
    n.region,
    n.instance,
    n.role,
    s.edge.regions[n.region] ?? '',
    n.appUrl,
    n.litefsApi,
    n.position === null ? '?' : String(BigInt(`0x${n.position}`)),
    n.behindTx === null ? '?' : String(n.behindTx),
    n.lagMs === null ? '-' : `${n.lagMs} ms`,
    n.injected ?? 'none',
  ]);
  const header = ['region', 'instance', 'role', 'edge URL', 'app URL', 'LiteFS API', 'TXID', 'behind', '.lag', 'injected'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  console.log(`\n${line(header)}`);
  for (const row of rows) console.log(line(row));
  console.log(`\nlogs: ${s.nodes.map((n) => n.log).join(', ')}`);
}

async function controlUrl(dir: string): Promise<string | null> {
  const state = await readState(dir);
  if (!state || !state.controlUrl || !isAlive(state.ownerPid)) {
    console.error(`no running cluster in ${dir}: start one with npm run cluster`);
    return null;
  }
  return state.controlUrl;
}

function parseEnv(pairs: readonly string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--env: expected KEY=VALUE, got ${pair}`);
    const value = pair.slice(eq + 1);
    env[pair.slice(0, eq)] = value === '' ? undefined : value;
  }
  return env;
}

function usage(problem: string): number {
  console.error(`${problem}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
