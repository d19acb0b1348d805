/**
 * `npm run check:ryw [-- options]`: starts a real LiteFS cluster, runs client
 * sessions against it under a nemesis, records the history and checks it.
 * Exits 0 when no violation was found, 1 on any violation, 2 when the run
 * itself could not be made.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_REGIONS } from '../cluster/cluster.js';
import { startProcessCluster } from '../cluster/process-cluster.js';
import { DEFAULT_WAIT_MS } from '../../src/config.js';
import { DEFAULT_MARGIN_MS, formatSummary } from './check.js';
import { checkerFallbacks, DEFAULT_LAG_MAX_MS, runCheck } from './runner.js';

export const DEFAULT_DURATION_S = 30;
export const DEFAULT_SESSIONS = 6;
/** Where histories go unless --history says otherwise (git-ignored by the `.`). */
export const DEFAULT_HISTORY_DIR = '.checker';

const USAGE = `usage: npm run check:ryw -- [options]

  --duration 30        seconds of sessions under the nemesis (then heal, sync, read back)
  --sessions 6         client sessions, pinned round robin to the regions
  --seed N             replay a run's choices (printed at the start of every run)
  --regions fra,ewr,syd  the first is the primary's
  --budget-ms ${DEFAULT_WAIT_MS}      RYW_WAIT_MS of the apps
  --margin-ms ${DEFAULT_MARGIN_MS}     slack on top of the budget before a request counts as over budget
  --lag-max-ms ${DEFAULT_LAG_MAX_MS}   the nemesis's largest lag
  --no-cuts            never partition a replica
  --ryw off            run the apps with RYW_ENABLED=false (the control: expect violations)
  --history FILE       where to write the history (default ${DEFAULT_HISTORY_DIR}/history-<time>.jsonl)
  --keep-logs          keep the cluster's directory (node logs, LiteFS data) when violations were found`;

async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string', default: String(DEFAULT_DURATION_S) },
      sessions: { type: 'string', default: String(DEFAULT_SESSIONS) },
      seed: { type: 'string' },
      regions: { type: 'string' },
      'budget-ms': { type: 'string', default: String(DEFAULT_WAIT_MS) },
      'margin-ms': { type: 'string', default: String(DEFAULT_MARGIN_MS) },
      'lag-max-ms': { type: 'string', default: String(DEFAULT_LAG_MAX_MS) },
      'no-cuts': { type: 'boolean', default: false },
      ryw: { type: 'string', default: 'on' },
      history: { type: 'string' },
      'keep-logs': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const number = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name}: expected a number >= ${min}, got ${text}`);
    return n;
  };
  const durationS = number('duration', values.duration, 1);
  const sessions = Math.floor(number('sessions', values.sessions, 1));
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Math.floor(number('seed', values.seed, 0));
  const budgetMs = Math.floor(number('budget-ms', values['budget-ms'], 0));
  const marginMs = number('margin-ms', values['margin-ms'], 0);
  const lagMaxMs = number('lag-max-ms', values['lag-max-ms'], 0);
  if (values.ryw !== 'on' && values.ryw !== 'off') throw new UsageError(`--ryw: on or off, got ${values.ryw}`);
  const rywEnabled = values.ryw === 'on';
  const regions = values.regions
    ? values.regions
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean)
    : [...DEFAULT_REGIONS];
  const fallbacks = checkerFallbacks(regions);
  let historyPath = values.history;
  if (!historyPath) {
    await mkdir(DEFAULT_HISTORY_DIR, { recursive: true });
    historyPath = join(DEFAULT_HISTORY_DIR, `history-${new Date().toISOString().replaceAll(':', '-')}.jsonl`);
  }
  historyPath = resolve(historyPath);

  console.log(
    `check:ryw: seed ${seed}, ${durationS} s, ${sessions} sessions, regions ${regions.join(',')}, budget ${budgetMs} ms, read-your-writes ${rywEnabled ? 'on' : 'OFF'}`,
  );
  const dir = await mkdtemp(join(tmpdir(), 'litefs-checker-'));
  const cluster = await startProcessCluster({
    dir,
    basePort: 0,
    regions,
    env: { RYW_WAIT_MS: String(budgetMs), RYW_ENABLED: String(rywEnabled), RYW_FALLBACK: 'replay' },
    nodeEnv: Object.fromEntries(Object.entries(fallbacks).map(([region, fallback]) => [region, { RYW_FALLBACK: fallback }])),
  }).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  let stopping = false;
  let keep = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await cluster.stop().catch(() => {});
    if (keep) console.log(`cluster directory kept for its logs: ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    const { result } = await runCheck({
      cluster,
      durationMs: durationS * 1000,
      sessions,
      seed,
      historyPath,
      budgetMs,
      rywEnabled,
      fallbacks,
      marginMs,
      nemesis: { kind: 'random', lagMaxMs, cuts: !values['no-cuts'] },
      log: (line) => console.error(`check:ryw: ${line}`),
    });
    console.log(formatSummary(result));
    console.log(`history: ${historyPath} (seed ${seed})`);
    keep = values['keep-logs'] && !result.ok;
    return result.ok ? 0 : 1;
  } finally {
    await stop();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) console.error(`${err.message}\n\n${USAGE}`);
    else console.error(`check:ryw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(2);
  },
);
