/**
 * `npm run cluster [-- verb …]`: a real LiteFS cluster on this machine, and
 * the verbs that inject faults into it from another terminal.
 */
import { parseCliArgs, type CliInvocation } from './cli-args.js';
import { DEFAULT_CANDIDATES, DEFAULT_REGIONS, type LeaseType } from './cluster.js';
import { controlStatus, type ControlStatus } from './control-api.js';
import { callControl, fetchControlStatus } from './control-client.js';
import {
  checkTarget,
  CONTROL_ENV_ALLOWED,
  CONTROL_SYNOPSIS,
  ControlInputError,
  requestOf,
  type ControlCommand,
} from './control-command.js';
import { startProcessCluster } from './process-cluster.js';
import type { ProcessCluster } from './process-cluster-type.js';
import { readState, type ClusterState } from './state-file.js';
import { isAlive } from './child-process.js';

/** Exit code of a start interrupted by a signal (128 + SIGINT, as shells report it). */
const INTERRUPTED_EXIT_CODE = 130;

const USAGE = `usage: npm run cluster -- [verb] [options]

  start (default)          start the cluster and keep it running; Ctrl-C stops it
      --regions fra,ewr,syd  regions, the first is the primary's (default ${DEFAULT_REGIONS.join(',')})
      --lease consul         consul (default): a Consul lease elects the primary, which moves on a
                             crash or a handoff; static: the primary is fixed, as before
      --candidates ${DEFAULT_CANDIDATES}         lease candidates in the primary region (fra-1, fra-2, …; 1 on static)
      --base-port 8080       edge main port; region ports follow (8081, 8082, …)
      --env KEY=VALUE        extra environment for every app (repeatable), e.g. RYW_WAIT_MS=300
  ${CONTROL_SYNOPSIS.lag.padEnd(40)} delay what the node receives from the primary (0 removes it)
  ${CONTROL_SYNOPSIS.bandwidth.padEnd(40)} cap what the node receives from the primary
  ${CONTROL_SYNOPSIS.cut.padEnd(40)} partition the node from the primary
  ${CONTROL_SYNOPSIS.heal.padEnd(40)} remove the faults of one node or region, or of all
  ${CONTROL_SYNOPSIS.restart.padEnd(40)} restart one node (keeps its data); KEY is one of
  ${''.padEnd(40)} ${[...CONTROL_ENV_ALLOWED].join(' ')} (KEY= removes it)
  ${CONTROL_SYNOPSIS.kill.padEnd(40)} crash: SIGKILL LiteFS and the app (a region: all its nodes)
  ${CONTROL_SYNOPSIS.start.padEnd(40)} bring a killed or stopped node back; it rejoins as a replica
  ${CONTROL_SYNOPSIS.handoff.padEnd(40)} pass the primary's lease to a caught-up candidate, as a deploy
  status [--json]          print every URL, the lease, each node's role, position, lag and fault

  A region (ewr) in a fault verb means its nodes but the primary. A verb that makes no sense
  right now (start a running node, lag the primary, hand off with no caught-up candidate) is
  refused with one line and exit code 2, and changes nothing.

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
      return start(invocation.dir, invocation.regions, invocation.basePort, invocation.env, invocation.lease, invocation.candidates);
    case 'status':
      return status(invocation.dir, invocation.json);
    case 'control':
      return control(invocation.dir, invocation.command);
  }
}

async function start(
  dir: string,
  regions: readonly string[],
  basePort: number,
  appEnv: Readonly<Record<string, string>>,
  lease: LeaseType,
  candidates: number,
): Promise<number> {
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

  console.log(`starting ${regions.length - 1 + candidates} nodes on a ${lease} lease in ${dir} …`);
  try {
    cluster = await startProcessCluster({
      regions,
      basePort,
      dir,
      lease,
      candidates,
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
  console.log(`\nFrom another terminal: npm run cluster -- lag ewr 800 | cut syd | heal | kill primary | start fra-1 | handoff | status`);
  console.log('Ctrl-C stops everything and unmounts.');
  return new Promise<number>(() => {}); // runs until a signal
}

async function control(dir: string, command: ControlCommand): Promise<number> {
  const state = await runningCluster(dir);
  if (!state) return 1;
  try {
    checkTarget(command, state);
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
  console.log(`${command.verb}: ${answer.message ?? 'ok'}`);
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
  if (s.lease) console.log(describeLease(s.lease));
  const rows = s.nodes.map((n) => [
    n.region,
    n.instance,
    n.role,
    n.leaseHolder ? 'holder' : n.candidate ? 'candidate' : '-',
    s.edge.regions[n.region] ?? '',
    n.appUrl,
    n.litefsApi,
    n.position === null ? '?' : String(BigInt(`0x${n.position}`)),
    n.behindTx === null ? '?' : String(n.behindTx),
    n.lagMs === null ? '-' : `${n.lagMs} ms`,
    n.injected ?? 'none',
  ]);
  const header = ['region', 'instance', 'role', 'lease', 'edge URL', 'app URL', 'LiteFS API', 'TXID', 'behind', '.lag', 'injected'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log(`\n${line(header)}`);
  for (const row of rows) console.log(line(row));
  const changes = s.primaryChanges ?? [];
  if (s.lease?.type === 'consul') {
    console.log(`\nprimary changes (${changes.length}):${changes.length === 0 ? ' none' : ''}`);
    for (const c of changes) console.log(`  ${c.at}  ${c.from ?? '(nobody)'} -> ${c.to ?? '(nobody)'}`);
  }
  console.log(`\nlogs: ${s.nodes.map((n) => n.log).join(', ')}`);
}

/** One line: who holds the lease, and its timing. */
function describeLease(lease: NonNullable<ControlStatus['lease']>): string {
  if (lease.type === 'static') return `lease: static, primary ${lease.holder ?? '?'} (fixed: no failover)`;
  return (
    `lease: consul (${lease.consulUrl}, key ${lease.key}), held by ${lease.holder ?? 'nobody'}; ` +
    `TTL ${lease.ttlMs} ms, lock delay ${lease.lockDelayMs} ms, reconnect delay ${lease.reconnectDelayMs} ms`
  );
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
