/**
 * `npm run bench [-- --quick] [--only a,b [--update]] [--out FILE] [--json FILE]`:
 * every benchmark of docs/benchmarks.md in one run, on this machine. The full
 * run writes docs/benchmarks.md and docs/benchmarks.svg; `--only … --update`
 * writes the sections it measured into docs/benchmarks.md, keeping the others
 * (merge-doc.ts); `--quick` runs each in seconds as a smoke test and writes
 * nothing unless `--out` is given.
 * `--json FILE` also saves the raw results; `--render FILE` rewrites the docs
 * from such a file without measuring again.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT, TOOLS_BIN } from '../tools/cluster/tools.js';
import { benchAppQueries } from './app-queries.js';
import { benchFailover } from './failover.js';
import { benchLiteFSProxy } from './litefs-proxy.js';
import { benchManyWaiters } from './many-waiters.js';
import { mergeDoc } from './merge-doc.js';
import { benchOverhead } from './overhead.js';
import { benchPageCache } from './page-cache.js';
import { benchProfile } from './profile.js';
import { renderMarkdown, renderSvg, type BenchResults } from './report.js';
import { benchSearchCache } from './search-cache.js';
import { benchServedWhere } from './served-where.js';
import { clusterAvailable, startBenchCluster, type BenchCluster } from './support/bench-cluster.js';
import type { BenchMode } from './types.js';
import { benchWakeUp } from './wake-up.js';

const BENCHMARKS = [
  'overhead',
  'litefs-proxy',
  'wake-up',
  'many-waiters',
  'served-where',
  'app',
  'page-cache',
  'search-cache',
  'profile',
  'failover',
] as const;
type Benchmark = (typeof BENCHMARKS)[number];
const NEEDS_CLUSTER: readonly Benchmark[] = ['litefs-proxy', 'wake-up', 'served-where'];
export const DOC_PATH = join(PROJECT_ROOT, 'docs', 'benchmarks.md');
export const SVG_PATH = join(PROJECT_ROOT, 'docs', 'benchmarks.svg');

async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'string' },
      render: { type: 'string' },
      update: { type: 'boolean', default: false },
    },
  });
  if (values.render) {
    // Re-renders docs/benchmarks.{md,svg} from a results file saved with --json (prose changes only: the figures are that run's).
    const saved = JSON.parse(readFileSync(values.render, 'utf8')) as BenchResults;
    writeFileSync(DOC_PATH, renderMarkdown(saved));
    writeFileSync(SVG_PATH, renderSvg(saved));
    console.error(`bench: re-rendered ${DOC_PATH} and ${SVG_PATH} from ${values.render}`);
    return 0;
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : [...BENCHMARKS];
  for (const name of only)
    if (!BENCHMARKS.includes(name as Benchmark)) throw new Error(`--only: unknown benchmark ${name} (known: ${BENCHMARKS.join(', ')})`);
  const selected = BENCHMARKS.filter((b) => only.includes(b));
  const quick = values.quick;
  const started = performance.now();
  const log = (line: string) => console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  const mode: BenchMode = { quick, log };
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  const skipped: string[] = [];
  const results: { -readonly [K in keyof BenchResults]?: BenchResults[K] } = {};
  log(`bench ${quick ? '(quick) ' : ''}${selected.join(', ')}; load average ${machine['load average at start']}`);

  const wanted = (b: Benchmark) => selected.includes(b);
  const failed: string[] = [];
  /** A benchmark that fails costs only its own figures: the others are still reported (and written), and the run exits 1. */
  const attempt = async <T>(name: Benchmark, run: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await run();
    } catch (err) {
      failed.push(name);
      console.error(`bench: ${name} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return undefined;
    }
  };
  if (wanted('app')) results.appQueries = await attempt('app', () => benchAppQueries(mode));
  if (wanted('overhead')) results.overhead = await attempt('overhead', () => benchOverhead(mode));
  if (wanted('many-waiters')) results.manyWaiters = await attempt('many-waiters', () => benchManyWaiters(mode));
  if (wanted('page-cache')) results.pageCache = await attempt('page-cache', () => benchPageCache(mode));
  if (wanted('search-cache')) results.searchCache = await attempt('search-cache', () => benchSearchCache(mode));
  if (wanted('profile')) results.profile = await attempt('profile', () => benchProfile(mode));

  if (selected.some((b) => NEEDS_CLUSTER.includes(b))) {
    const tools = clusterAvailable();
    if (!tools.ok) {
      const why = `missing ${tools.missing.join(', ')}; run npm run setup:cluster`;
      if (process.env.CI === 'true') throw new Error(`the cluster benchmarks cannot run in CI: ${why}`);
      console.error(`\n${'!'.repeat(8)} SKIPPED the real-LiteFS benchmarks (${NEEDS_CLUSTER.join(', ')}): ${why} ${'!'.repeat(8)}\n`);
      skipped.push(`${NEEDS_CLUSTER.join(', ')} (${why})`);
    } else {
      let bench: BenchCluster | null = null;
      try {
        bench = await startBenchCluster(log);
        const cluster = bench;
        if (wanted('litefs-proxy')) results.litefsProxy = await attempt('litefs-proxy', () => benchLiteFSProxy(cluster, mode));
        if (wanted('wake-up')) results.wakeUp = await benchWakeUp(bench, mode);
        if (wanted('served-where')) results.servedWhere = await attempt('served-where', () => benchServedWhere(cluster, mode));
      } finally {
        await bench?.stop();
      }
    }
  }
  // Its own cluster (it kills and restarts nodes), started only once the shared one is stopped.
  if (wanted('failover')) {
    const tools = clusterAvailable();
    if (tools.ok) results.failover = await benchFailover(mode);
    else if (process.env.CI === 'true') throw new Error(`the failover benchmark cannot run in CI: missing ${tools.missing.join(', ')}`);
    else skipped.push(`failover (missing ${tools.missing.join(', ')}; run npm run setup:cluster)`);
  }

  if (failed.length > 0) skipped.push(`FAILED, kept as before: ${failed.join(', ')} (see the run's log)`);
  const full: BenchResults = {
    ...results,
    quick,
    machine: {
      ...machine,
      'load average at end': loadavg()
        .map((l) => l.toFixed(2))
        .join(', '),
    },
    commands: [`npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`, ...parameters(quick)],
    startedAt,
    finishedAt: new Date().toISOString(),
    skipped,
    ...(selected.length < BENCHMARKS.length ? { only: selected } : {}),
  };
  const markdown = renderMarkdown(full);
  if (values.json)
    writeFileSync(values.json, `${JSON.stringify(full, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  if (values.out) {
    const svgOut = values.out.replace(/\.md$/, '') + '.svg';
    writeFileSync(values.out, markdown.replace('](benchmarks.svg)', `](${basename(svgOut)})`));
    writeFileSync(svgOut, renderSvg(full));
    log(`wrote ${values.out} and ${svgOut}`);
  } else if (values.update && !quick) {
    writeFileSync(DOC_PATH, mergeDoc(readFileSync(DOC_PATH, 'utf8'), markdown));
    writeFileSync(SVG_PATH, renderSvg(full));
    log(`wrote this run's sections into ${DOC_PATH}, and ${SVG_PATH}`);
  } else if (!quick && selected.length === BENCHMARKS.length) {
    writeFileSync(DOC_PATH, markdown);
    writeFileSync(SVG_PATH, renderSvg(full));
    log(`wrote ${DOC_PATH} and ${SVG_PATH}`);
  }
  console.log(markdown);
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s${failed.length > 0 ? `; FAILED: ${failed.join(', ')}` : ''}`);
  return failed.length > 0 ? 1 : 0;
}

/** What each benchmark was run with, spelled out as in the code. */
function parameters(quick: boolean): string[] {
  return [
    `# overhead: autocannon, 10 connections, ${quick ? '1 round × 1 s' : '8 rounds × 3 s'} per configuration`,
    `# litefs-proxy: autocannon, 10 connections, ${quick ? '1 round × 1 s' : '4 rounds × 3 s'} per configuration`,
    `# wake-up: lags 100 and 20 ms, ${quick ? 3 : 40} writes per mechanism and lag`,
    `# many-waiters: 1, 100, 1000 waiters, ${quick ? '0.5 s' : '3 s'} window`,
    `# served-where: lags ${quick ? '0, 500, 2000' : '0–2000'} ms, ${quick ? 2 : 20} writes per region and lag`,
    `# app: 10,000 articles, ${quick ? 200 : 5000} runs per query`,
    `# page-cache: autocannon, 10 connections, ${quick ? '1 round × 1 s' : '4 rounds × 3 s'} per server and request`,
    `# search-cache: 10,000 articles, ${quick ? 300 : '10,000'} distinct searches (4 at a time), ${quick ? 3 : 20} cold searches`,
    `# failover: ${quick ? 'a kill and a handoff' : '3 kills and 3 handoffs'} under a writer; durable writes ${quick ? '1 round × 5' : '4 rounds × 30'} each way, standby link lag ${quick ? '0' : '0 and 20'} ms`,
    `# profile: node --cpu-prof, autocannon, 10 connections, ${quick ? 1 : 10} s per configuration`,
  ];
}

function describeMachine(): Record<string, string> {
  const cpu = cpus();
  const version = (pkg: string) => {
    try {
      return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'not installed';
    }
  };
  const tool = (name: string) => {
    try {
      return readFileSync(join(TOOLS_BIN, `.${name}.version`), 'utf8').trim();
    } catch {
      return 'not installed';
    }
  };
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    // not a git checkout
  }
  return {
    CPU: `${cpu[0]?.model ?? 'unknown'} × ${cpu.length}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB (${(freemem() / 2 ** 30).toFixed(1)} GiB free at start)`,
    OS: `Linux ${release()}`,
    Node: process.version,
    'load average at start': loadavg()
      .map((l) => l.toFixed(2))
      .join(', '),
    LiteFS: tool('litefs'),
    Toxiproxy: tool('toxiproxy-server'),
    'better-sqlite3': version('better-sqlite3'),
    autocannon: version('autocannon'),
    'litefs-js': version('litefs-js'),
    commit: `${commit} (plus uncommitted changes, if any)`,
  };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
