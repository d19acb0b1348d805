/**
 * `npm run cluster [-- verb …]`: a real LiteFS cluster on this machine, and
 * the verbs that inject faults into it from another terminal.
 */
import { parseCliArgs, type CliInvocation } from './cli-args.js';
import { DEFAULT_REGIONS } from './cluster.js';
import { controlStatus, type ControlStatus } from './control-api.js';
import { callControl, fetchControlStatus } from './control-client.js';
import { checkRegion, CONTROL_ENV_ALLOWED, CONTROL_SYNOPSIS, ControlInputError, requestOf, type ControlCommand } from './control-command.js';
import { startProcessCluster } from './process-cluster.js';
import type { ProcessCluster } from './process-cluster-type.js';
import { readState, type ClusterState } from './state-file.js';
import { isAlive } from './child-process.js';

/** Exit code of a start interrupted by a signal (128 + SIGINT, as shells report it). */
const INTERRUPTED_EXIT_CODE = 130;

const USAGE = `usage: npm run cluster -- [verb] [options]

  start (default)          start the cluster and keep it running; Ctrl-C stops it
      --regions fra,ewr,syd  regions, the first is the primary's (default ${DEFAULT_REGIONS.join(',')})
      --base-port 8080       edge main port; region ports follow (8081, 8082, …)
      --env KEY=VALUE        extra environment for every app (repeatable), e.g. RYW_WAIT_MS=300
  ${CONTROL_SYNOPSIS.lag.padEnd(24)} delay what the region's replica receives (0 removes it)
  ${CONTROL_SYNOPSIS.bandwidth.padEnd(24)} cap what the region's replica receives
  ${CONTROL_SYNOPSIS.cut.padEnd(24)} partition the region's replica from the primary
  ${CONTROL_SYNOPSIS.heal.padEnd(24)} remove the faults of one region, or of all
  ${CONTROL_SYNOPSIS.restart}  restart one node (keeps its data); KEY is one of
                           ${[...CONTROL_ENV_ALLOWED].join(' ')} (KEY= removes it)
  status [--json]          print every URL, role, position, lag and fault

  --dir .cluster           the cluster's directory (all verbs)`;

/** Exit code of a command line that is wrong (as for a shell builtin's misuse). */
const USAGE_EXIT_CODE = 2;

async function main(argv: readonly string[]): Promise<number> {
  let invocation: CliInvocation;
  try {
    invocation = parseCliArgs(argv);
  } catch (err) {
    if (!(err instanceof ControlInputError)) throw err;
    return usageError(err.message);
  }
  switch (invocation.verb) {
    case 'help':
      console.log(USAGE);
      return 0;
    case 'start':
      return start(invocation.dir, invocation.regions, invocation.basePort, invocation.env);
    case 'status':
      return status(invocation.dir, invocation.json);
    case 'control':
      return control(invocation.dir, invocation.command);
  }
}

async function start(dir: string, regions: readonly string[], basePort: number, appEnv: Readonly<Record<string, string>>): Promise<number> {
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

async function control(dir: string, command: ControlCommand): Promise<number> {
  const state = await runningCluster(dir);
  if (!state) return 1;
  try {
    checkRegion(command, state);
  } catch (err) {
    if (!(err instanceof ControlInputError)) throw err;
    return usageError(`${command.verb}: ${err.message}`);
  }
  const answer = await callControl(state.controlUrl, command.verb, requestOf(command));
  if (!answer.ok) {
    console.error(`${command.verb}: ${answer.error ?? `HTTP ${answer.status}`}`);
    // 400: the API refused the request itself (the same check as above), not the cluster failing it.
    return answer.status === 400 ? USAGE_EXIT_CODE : 1;
  }
  console.log(`${command.verb}: ok`);
  return status(dir, false);
}

async function status(dir: string, asJson: boolean): Promise<number> {
  const state = await runningCluster(dir);
  if (!state) return 1;
  const body = await fetchControlStatus(state.controlUrl);
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

async function runningCluster(dir: string): Promise<ClusterState | null> {
  const state = await readState(dir);
  if (!state || !state.controlUrl || !isAlive(state.ownerPid)) {
    console.error(`no running cluster in ${dir}: start one with npm run cluster`);
    return null;
  }
  return state;
}

/** One line on stderr saying what is wrong (parseCliArgs names the usage to follow). */
function usageError(problem: string): number {
  console.error(problem);
  return USAGE_EXIT_CODE;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
