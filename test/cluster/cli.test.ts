/**
 * The cluster CLI's command line (no LiteFS needed, so this always runs): a
 * fault verb with a value the cluster cannot honour (`lag ewr 800ms`) must be
 * refused with exit code 2 and one line naming it, not sent as 0 and
 * answered "ok". The CLI and the control API share one check; the process
 * tests drive the real CLI against a stand-in cluster behind the real control
 * API, so what reaches the cluster is observed, not assumed.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseCliArgs } from '../../tools/cluster/cli-args.js';
import { createControlHandler } from '../../tools/cluster/control-api.js';
import { ControlInputError, parseControlCommand, requestOf, type ControlCommand } from '../../tools/cluster/control-command.js';
import { STATE_FILE, type ClusterState } from '../../tools/cluster/state-file.js';
import { startEdge, type Edge } from '../../tools/edge/edge-router.js';
import { STAND_IN_INSTANCES, STAND_IN_REGIONS, standInCluster } from './stand-in-cluster.js';

const CLI = resolve('tools/cluster/cli.ts');
const REGIONS = STAND_IN_REGIONS;
/** The default cluster's shape: a Consul lease, two candidates in fra. */
const INSTANCES = STAND_IN_INSTANCES;
const CLUSTER = {
  regions: REGIONS,
  primaryRegion: 'fra',
  instances: INSTANCES.map((instance) => ({ instance, region: instance.split('-')[0]! })),
  lease: 'consul' as const,
};
/** A static-lease cluster: fra-1 is the primary for good. */
const STATIC_CLUSTER = { regions: REGIONS, primaryRegion: 'fra', lease: 'static' as const };

function refusal(argv: string[]): string {
  try {
    parseCliArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(ControlInputError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('parseCliArgs', () => {
  it('reads the fault verbs, their numbers as numbers', () => {
    expect(parseCliArgs(['lag', 'ewr', '800'])).toMatchObject({
      verb: 'control',
      command: { verb: 'lag', target: 'ewr', ms: 800, jitterMs: 0 },
    });
    expect(parseCliArgs(['lag', 'fra-2', '300'])).toMatchObject({ command: { verb: 'lag', target: 'fra-2', ms: 300 } });
    expect(parseCliArgs(['lag', 'ewr', '800', '100'])).toMatchObject({ command: { verb: 'lag', ms: 800, jitterMs: 100 } });
    expect(parseCliArgs(['lag', 'ewr', '0'])).toMatchObject({ command: { verb: 'lag', ms: 0 } });
    expect(parseCliArgs(['bandwidth', 'syd', '64'])).toMatchObject({ command: { verb: 'bandwidth', target: 'syd', kbps: 64 } });
    expect(parseCliArgs(['bandwidth', 'syd', 'off'])).toMatchObject({ command: { verb: 'bandwidth', kbps: null } });
    expect(parseCliArgs(['cut', 'syd-1'])).toMatchObject({ command: { verb: 'cut', target: 'syd-1' } });
    expect(parseCliArgs(['heal'])).toMatchObject({ command: { verb: 'heal', target: undefined } });
    expect(parseCliArgs(['restart', 'ewr', '--env', 'RYW_FALLBACK=stale', '--env=LITEFS_API='])).toMatchObject({
      command: { verb: 'restart', target: 'ewr', env: { RYW_FALLBACK: 'stale', LITEFS_API: undefined } },
    });
  });

  it('reads the failover verbs: kill, start <instance>, handoff', () => {
    expect(parseCliArgs(['kill', 'primary'])).toMatchObject({ verb: 'control', command: { verb: 'kill', target: 'primary' } });
    expect(parseCliArgs(['kill', 'fra-1'])).toMatchObject({ command: { verb: 'kill', target: 'fra-1' } });
    expect(parseCliArgs(['kill', 'ewr'])).toMatchObject({ command: { verb: 'kill', target: 'ewr' } });
    // `start` alone starts the cluster; with an instance it brings that node back.
    expect(parseCliArgs(['start', 'fra-1'])).toMatchObject({ verb: 'control', command: { verb: 'start', target: 'fra-1' } });
    expect(parseCliArgs(['handoff'])).toMatchObject({ command: { verb: 'handoff', target: undefined } });
    expect(parseCliArgs(['handoff', 'fra-2'])).toMatchObject({ command: { verb: 'handoff', target: 'fra-2' } });
  });

  it('reads start and status, with their options', () => {
    expect(parseCliArgs([])).toMatchObject({
      verb: 'start',
      regions: ['fra', 'ewr', 'syd'],
      basePort: 8080,
      env: {},
      lease: 'consul',
      candidates: 2,
    });
    expect(parseCliArgs(['start', '--regions', 'ams,lhr', '--base-port=9000', '--env', 'RYW_WAIT_MS=300', '--dir', '/tmp/c'])).toEqual({
      verb: 'start',
      dir: '/tmp/c',
      regions: ['ams', 'lhr'],
      basePort: 9000,
      env: { RYW_WAIT_MS: '300' },
      lease: 'consul',
      candidates: 2,
    });
    expect(parseCliArgs(['--lease', 'static'])).toMatchObject({ verb: 'start', lease: 'static', candidates: 1 });
    expect(parseCliArgs(['start', '--candidates', '3'])).toMatchObject({ verb: 'start', lease: 'consul', candidates: 3 });
    expect(parseCliArgs(['--env', 'RYW_DURABILITY=standby'])).toMatchObject({ verb: 'start', env: { RYW_DURABILITY: 'standby' } });
    expect(parseCliArgs(['status', '--json'])).toMatchObject({ verb: 'status', json: true });
    expect(parseCliArgs(['lag', '--help'])).toEqual({ verb: 'help' });
  });

  it.each([
    [['lag', 'ewr', 'abc'], 'lag: ms must be a whole number of milliseconds, 0 or more; got "abc"'],
    [['lag', 'ewr', '800ms'], 'got "800ms"'],
    [['lag', 'ewr', '-5'], 'lag: ms must be a whole number of milliseconds, 0 or more; got "-5"'],
    [['lag', 'ewr', '1.5'], 'got "1.5"'],
    [['lag', 'ewr', ''], 'got ""'],
    [['lag', 'ewr', '800', '-1'], 'lag: jitter must be a whole number'],
    [['lag', 'ewr'], 'lag: missing ms'],
    [['lag'], 'lag: missing instance or region'],
    [['lag', 'EWR', '800'], 'lag: instance or region must be an instance (fra-2) or a region code'],
    [['lag', 'ewr', '800', '10', '10'], 'lag: too many arguments'],
    [['bandwidth', 'syd', '0'], 'bandwidth: rate must be a whole number of KB/s, 1 or more, or off; got "0"'],
    [['bandwidth', 'syd', 'fast'], 'got "fast"'],
    [['cut'], 'cut: missing instance or region'],
    [['cut', 'syd', 'ewr'], 'cut: too many arguments'],
    [['restart', 'ewr', '--env', 'NODE_OPTIONS=--import=x'], 'restart: env: NODE_OPTIONS cannot be set here'],
    [['frobnicate'], 'unknown verb frobnicate (verbs: start, lag, bandwidth, cut, heal, restart, kill, handoff, status)'],
    [['kill'], 'kill: missing instance, region or primary'],
    [['kill', 'fra-1', 'fra-2'], 'kill: too many arguments'],
    [['handoff', 'fra 2'], 'handoff: instance must be an instance name such as fra-2, got "fra 2"'],
    [['start', 'fra-1', '--regions', 'fra'], '--regions applies to starting the cluster, not to start <instance>'],
    [['start', 'fra-1', '--env', 'RYW_WAIT_MS=1'], '--env applies to starting the cluster'],
    [['start', '--lease', 'etcd'], '--lease: expected consul or static, got "etcd"'],
    [['start', '--lease', 'static', '--candidates', '2'], '--candidates: a static lease has exactly one candidate'],
    [['start', '--candidates', '0'], '--candidates: expected a whole number from 1 to 5, got 0'],
    [['start', '--candidates', 'two'], '--candidates: expected a whole number, got "two"'],
    [['start', '--regions', 'fra,primary'], '--regions: "primary" names the lease holder in kill, not a region'],
    [['lag', 'ewr', '800', '--bogus'], 'unknown option --bogus'],
    [['status', '--regions', 'fra'], '--regions does not apply to status'],
    [['status', 'now'], 'status takes no arguments'],
    [['start', '--base-port', '99999'], '--base-port: expected a port number from 0 to 65532, got "99999"'],
    [['start', '--base-port', '80x'], 'got "80x"'],
    [['start', '--regions', 'fra,fra'], '--regions: a region is listed twice'],
    [['start', '--env', 'RYW_WAIT_MS'], '--env: expected KEY=VALUE, got RYW_WAIT_MS'],
    [['start', '--dir'], '--dir needs a value'],
  ])('refuses %j: %s', (argv, message) => {
    const problem = refusal(argv);
    expect(problem).toContain(message);
    expect(problem).not.toContain('\n');
  });
});

describe('parseControlCommand: the one check for the CLI and the control API', () => {
  it.each([
    ['lag', { region: 'ewr', ms: null }, 'ms must be a whole number of milliseconds, 0 or more; got null'],
    ['lag', { region: 'ewr', ms: -1 }, 'got -1'],
    ['lag', { region: 'ewr', ms: '800ms' }, 'got "800ms"'],
    ['lag', { region: 'ewr', ms: true }, 'got true'],
    ['lag', { region: 'ewr', ms: 0.5 }, 'got 0.5'],
    ['lag', { region: 7, ms: 5 }, 'instance or region must be an instance'],
    ['lag', { target: 'xyz', ms: 5 }, 'unknown instance or region xyz (instances: fra-1, fra-2, ewr-1, syd-1)'],
    ['lag', { target: 'fra-3', ms: 5 }, 'unknown instance or region fra-3'],
    ['restart', { region: 'xyz' }, 'unknown instance or region xyz'],
    ['restart', { region: 'ewr', env: { PATH: '/tmp' } }, 'env: PATH cannot be set here'],
    ['kill', { target: 'mars-1' }, 'unknown instance or region mars-1'],
    ['kill', {}, 'missing instance, region or primary'],
    ['start', { target: 'ewr' }, 'start takes an instance, not a region (ewr: ewr-1)'],
    ['start', {}, 'missing instance'],
    ['handoff', { target: 'fra' }, 'handoff takes an instance, not a region (fra: fra-1, fra-2)'],
    ['handoff', { target: 'ewr-1' }, 'ewr-1 is not a lease candidate (candidates: fra-1, fra-2)'],
  ] as const)('%s %j: %s', (verb, input, message) => {
    expect(() => parseControlCommand(verb, input, CLUSTER)).toThrow(ControlInputError);
    expect(() => parseControlCommand(verb, input, CLUSTER)).toThrow(message);
  });

  it.each([
    ['cut', { region: 'fra' }, "fra is the primary's region: faults apply to replicas' links"],
    ['heal', { region: 'fra' }, "fra is the primary's region"],
    ['lag', { target: 'fra-1', ms: 5 }, "fra-1 is the primary's instance"],
    ['handoff', {}, 'the lease is static: the primary cannot move (start the cluster with --lease consul)'],
  ] as const)('on a static lease, %s %j: %s', (verb, input, message) => {
    expect(() => parseControlCommand(verb, input, STATIC_CLUSTER)).toThrow(ControlInputError);
    expect(() => parseControlCommand(verb, input, STATIC_CLUSTER)).toThrow(message);
  });

  it('lets the running cluster judge what only it knows: a region of candidates, the standbys variable', () => {
    // On a Consul lease fra means "fra's nodes but the primary": whether that is anyone, the cluster says.
    expect(parseControlCommand('lag', { target: 'fra', ms: 5 }, CLUSTER)).toEqual({ verb: 'lag', target: 'fra', ms: 5, jitterMs: 0 });
    expect(parseControlCommand('kill', { target: 'primary' }, CLUSTER)).toEqual({ verb: 'kill', target: 'primary' });
    const env = { RYW_DURABILITY: 'standby', RYW_STANDBYS: 'http://127.0.0.1:1', RYW_DURABILITY_WAIT_MS: '1000' };
    expect(parseControlCommand('restart', { target: 'fra-1', env }, CLUSTER)).toEqual({ verb: 'restart', target: 'fra-1', env });
  });

  it("reads back what the CLI sends (requestOf), and restarts the primary's node", () => {
    const commands: ControlCommand[] = [
      { verb: 'lag', target: 'ewr', ms: 800, jitterMs: 100 },
      { verb: 'lag', target: 'fra-2', ms: 300, jitterMs: 0 },
      { verb: 'bandwidth', target: 'syd', kbps: null },
      { verb: 'bandwidth', target: 'syd-1', kbps: 64 },
      { verb: 'cut', target: 'syd' },
      { verb: 'heal', target: undefined },
      { verb: 'restart', target: 'fra', env: { RYW_FALLBACK: 'stale', LITEFS_API: undefined } },
      { verb: 'kill', target: 'primary' },
      { verb: 'kill', target: 'ewr' },
      { verb: 'start', target: 'fra-1' },
      { verb: 'handoff', target: undefined },
      { verb: 'handoff', target: 'fra-2' },
    ];
    for (const command of commands) {
      const overJson: unknown = JSON.parse(JSON.stringify(requestOf(command)));
      expect(parseControlCommand(command.verb, overJson as object, CLUSTER)).toEqual(command);
    }
  });
});

describe('npm run cluster, as a process', () => {
  let edge: Edge;
  let dir: string;
  // fra-1 is the stand-in's primary, and running.
  const { target, calls, status } = standInCluster(() => edge, { dir: () => dir, running: ['fra-1'] });

  /** Runs the CLI with `--dir` on the stand-in's directory, or on `otherDir`. */
  const cli = (args: string[], otherDir?: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((done, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args, '--dir', otherDir ?? dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('error', fail);
      child.on('exit', (code) => done({ code, stdout, stderr }));
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cluster-cli-'));
    edge = await startEdge({
      nodes: () => [],
      primaryRegion: 'fra',
      mainPort: 0,
      regionPorts: { fra: 0, ewr: 0, syd: 0 },
      control: createControlHandler(target, status),
    });
    // What a running cluster leaves for the CLI in another terminal; this process is its owner.
    const state: ClusterState = {
      ownerPid: process.pid,
      controlUrl: `${edge.mainUrl}/_cluster/api`,
      edgeUrl: edge.mainUrl,
      toxiproxyApi: 'http://127.0.0.1:1',
      ...CLUSTER,
      pids: [],
    };
    await writeFile(join(dir, STATE_FILE), JSON.stringify(state));
  });
  afterAll(async () => {
    await edge?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    calls.length = 0;
  });

  it.each([
    [
      ['lag', 'ewr', 'abc'],
      'lag: ms must be a whole number of milliseconds, 0 or more; got "abc" (usage: lag <instance|region> <ms> [jitter-ms])',
    ],
    [
      ['lag', 'ewr', '800ms'],
      'lag: ms must be a whole number of milliseconds, 0 or more; got "800ms" (usage: lag <instance|region> <ms> [jitter-ms])',
    ],
    [
      ['lag', 'ewr', '-5'],
      'lag: ms must be a whole number of milliseconds, 0 or more; got "-5" (usage: lag <instance|region> <ms> [jitter-ms])',
    ],
    [['lag', 'xyz', '800'], 'lag: unknown instance or region xyz (instances: fra-1, fra-2, ewr-1, syd-1)'],
    [['start', 'syd'], 'start: start takes an instance, not a region (syd: syd-1)'],
    [['handoff', 'ewr-1'], 'handoff: ewr-1 is not a lease candidate (candidates: fra-1, fra-2)'],
    [['frobnicate'], 'unknown verb frobnicate (verbs: start, lag, bandwidth, cut, heal, restart, kill, handoff, status)'],
    // What only the running cluster knows, refused by it (400) and said the same way.
    [['lag', 'fra-1', '300'], 'lag: fra-1 is the primary now: nothing streams to it'],
    [['start', 'fra-1'], 'start: fra-1 is running: kill or stop it first'],
  ])('%j exits 2 with one line, and the cluster is not touched', async (args, line) => {
    const { code, stdout, stderr } = await cli(args);
    expect({ code, stderr, stdout }).toEqual({ code: 2, stderr: `${line}\n`, stdout: '' });
    expect(calls).toEqual([]);
  });

  it('refuses a bad value before looking for a cluster: none needs to run', async () => {
    const { code, stderr } = await cli(['lag', 'ewr', '800ms'], join(dir, 'no-cluster-here'));
    expect(code).toBe(2);
    expect(stderr).toContain('got "800ms"');
  });

  it('sends a good command, and says ok', async () => {
    const { code, stdout } = await cli(['lag', 'ewr', '800', '100']);
    expect(code).toBe(0);
    expect(stdout).toContain('lag: ok');
    expect(calls).toEqual([['lag', 'ewr', 800, 100]]);
  });

  it('says what a failover verb did', async () => {
    const handoff = await cli(['handoff', 'fra-2']);
    expect(handoff.code).toBe(0);
    expect(handoff.stdout).toContain('handoff: fra-2 holds the lease now');
    const kill = await cli(['kill', 'primary']);
    expect(kill.stdout).toContain('kill: killed fra-1');
    expect(calls).toEqual([
      ['handoff', 'fra-2'],
      ['kill', 'primary'],
    ]);
  });
});
