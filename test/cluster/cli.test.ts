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
import { NO_FAULT, type EnvOverrides, type Fault } from '../../tools/cluster/cluster.js';
import { createControlHandler, type ControlStatus, type ControlTarget } from '../../tools/cluster/control-api.js';
import { ControlInputError, parseControlCommand, requestOf, type ControlCommand } from '../../tools/cluster/control-command.js';
import { STATE_FILE, type ClusterState } from '../../tools/cluster/state-file.js';
import { startEdge, type Edge } from '../../tools/edge/edge-router.js';

const CLI = resolve('tools/cluster/cli.ts');
const REGIONS = ['fra', 'ewr', 'syd'];
const CLUSTER = { regions: REGIONS, primaryRegion: 'fra' };

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
    expect(parseCliArgs(['lag', 'ewr', '800'])).toMatchObject({ verb: 'control', command: { verb: 'lag', region: 'ewr', ms: 800, jitterMs: 0 } });
    expect(parseCliArgs(['lag', 'ewr', '800', '100'])).toMatchObject({ command: { verb: 'lag', ms: 800, jitterMs: 100 } });
    expect(parseCliArgs(['lag', 'ewr', '0'])).toMatchObject({ command: { verb: 'lag', ms: 0 } });
    expect(parseCliArgs(['bandwidth', 'syd', '64'])).toMatchObject({ command: { verb: 'bandwidth', region: 'syd', kbps: 64 } });
    expect(parseCliArgs(['bandwidth', 'syd', 'off'])).toMatchObject({ command: { verb: 'bandwidth', kbps: null } });
    expect(parseCliArgs(['cut', 'syd'])).toMatchObject({ command: { verb: 'cut', region: 'syd' } });
    expect(parseCliArgs(['heal'])).toMatchObject({ command: { verb: 'heal', region: undefined } });
    expect(parseCliArgs(['restart', 'ewr', '--env', 'RYW_FALLBACK=stale', '--env=LITEFS_API='])).toMatchObject({
      command: { verb: 'restart', region: 'ewr', env: { RYW_FALLBACK: 'stale', LITEFS_API: undefined } },
    });
  });

  it('reads start and status, with their options', () => {
    expect(parseCliArgs([])).toMatchObject({ verb: 'start', regions: ['fra', 'ewr', 'syd'], basePort: 8080, env: {} });
    expect(parseCliArgs(['start', '--regions', 'ams,lhr', '--base-port=9000', '--env', 'RYW_WAIT_MS=300', '--dir', '/tmp/c'])).toEqual({
      verb: 'start',
      dir: '/tmp/c',
      regions: ['ams', 'lhr'],
      basePort: 9000,
      env: { RYW_WAIT_MS: '300' },
    });
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
    [['lag'], 'lag: missing region'],
    [['lag', 'EWR', '800'], 'lag: region must be a region code'],
    [['lag', 'ewr', '800', '10', '10'], 'lag: too many arguments'],
    [['bandwidth', 'syd', '0'], 'bandwidth: rate must be a whole number of KB/s, 1 or more, or off; got "0"'],
    [['bandwidth', 'syd', 'fast'], 'got "fast"'],
    [['cut'], 'cut: missing region'],
    [['cut', 'syd', 'ewr'], 'cut: too many arguments'],
    [['restart', 'ewr', '--env', 'NODE_OPTIONS=--import=x'], 'restart: env: NODE_OPTIONS cannot be set here'],
    [['frobnicate'], 'unknown verb frobnicate (verbs: start, lag, bandwidth, cut, heal, restart, status)'],
    [['lag', 'ewr', '800', '--bogus'], 'unknown option --bogus'],
    [['status', '--regions', 'fra'], '--regions does not apply to status'],
    [['status', 'now'], 'status takes no arguments'],
    [['start', '--base-port', '99999'], '--base-port: expected a port number from 0 to 65532, got 99999'],
    [['start', '--base-port', '80x'], 'got 80x'],
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
    ['lag', { region: 7, ms: 5 }, 'region must be a region code'],
    ['lag', { region: 'xyz', ms: 5 }, 'unknown region xyz (regions: fra, ewr, syd)'],
    ['cut', { region: 'fra' }, "fra is the primary's region"],
    ['heal', { region: 'fra' }, "fra is the primary's region"],
    ['restart', { region: 'xyz' }, 'unknown region xyz'],
    ['restart', { region: 'ewr', env: { PATH: '/tmp' } }, 'env: PATH cannot be set here'],
  ] as const)('%s %j: %s', (verb, input, message) => {
    expect(() => parseControlCommand(verb, input, CLUSTER)).toThrow(ControlInputError);
    expect(() => parseControlCommand(verb, input, CLUSTER)).toThrow(message);
  });

  it("reads back what the CLI sends (requestOf), and restarts the primary's node", () => {
    const commands: ControlCommand[] = [
      { verb: 'lag', region: 'ewr', ms: 800, jitterMs: 100 },
      { verb: 'bandwidth', region: 'syd', kbps: null },
      { verb: 'bandwidth', region: 'syd', kbps: 64 },
      { verb: 'cut', region: 'syd' },
      { verb: 'heal', region: undefined },
      { verb: 'restart', region: 'fra', env: { RYW_FALLBACK: 'stale', LITEFS_API: undefined } },
    ];
    for (const command of commands) {
      const overJson: unknown = JSON.parse(JSON.stringify(requestOf(command)));
      expect(parseControlCommand(command.verb, overJson as object, CLUSTER)).toEqual(command);
    }
  });
});

describe('npm run cluster, as a process', () => {
  /** What reached the stand-in cluster, in order. */
  const calls: unknown[][] = [];
  let edge: Edge;
  let dir: string;

  const target: ControlTarget = {
    ...CLUSTER,
    edgeUrl: (region?: string) => (region === undefined ? edge.mainUrl : edge.regionUrls[region]!),
    lag: async (region: string, ms: number, jitterMs?: number) => void calls.push(['lag', region, ms, jitterMs]),
    bandwidth: async (region: string, kbps: number | null) => void calls.push(['bandwidth', region, kbps]),
    cut: async (region: string) => void calls.push(['cut', region]),
    heal: async (region?: string) => void calls.push(['heal', region]),
    restartNode: async (region: string, env?: EnvOverrides) => void calls.push(['restart', region, env]),
    faults: (): Readonly<Record<string, Fault>> => Object.fromEntries(REGIONS.map((r) => [r, NO_FAULT])),
  };
  const status = async (): Promise<ControlStatus> => ({
    dir,
    primaryRegion: 'fra',
    edge: { main: edge.mainUrl, regions: edge.regionUrls, statusPage: `${edge.mainUrl}/_cluster` },
    toxiproxyApi: 'http://127.0.0.1:1',
    nodes: [],
  });

  /** Runs the CLI with `--dir` on the stand-in's directory, or on `otherDir`. */
  const cli = (args: string[], otherDir?: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((done, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args, '--dir', otherDir ?? dir], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    [['lag', 'ewr', 'abc'], 'lag: ms must be a whole number of milliseconds, 0 or more; got "abc" (usage: lag <region> <ms> [jitter-ms])'],
    [['lag', 'ewr', '800ms'], 'lag: ms must be a whole number of milliseconds, 0 or more; got "800ms" (usage: lag <region> <ms> [jitter-ms])'],
    [['lag', 'ewr', '-5'], 'lag: ms must be a whole number of milliseconds, 0 or more; got "-5" (usage: lag <region> <ms> [jitter-ms])'],
    [['lag', 'xyz', '800'], 'lag: unknown region xyz (regions: fra, ewr, syd)'],
    [['cut', 'fra'], "cut: fra is the primary's region: faults apply to replicas' links"],
    [['frobnicate'], 'unknown verb frobnicate (verbs: start, lag, bandwidth, cut, heal, restart, status)'],
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
});
