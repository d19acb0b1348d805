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
import { DEFAULT_DURABILITY_WAIT_MS, DEFAULT_WAIT_MS } from '../../src/config.js';
import { DEFAULT_MARGIN_MS, formatSummary } from './check.js';
import { DEFAULT_FAILOVER_LAG_MAX_MS } from './failover-nemesis.js';
import { checkerFallbacks, DEFAULT_LAG_MAX_MS, runCheck, type NemesisPlan } from './runner.js';

export const DEFAULT_DURATION_S = 30;
export const DEFAULT_SESSIONS = 6;
/** Where histories go unless --history says otherwise (git-ignored by the `.`). */
export const DEFAULT_HISTORY_DIR = '.checker';
/** The nemeses a run can choose: lag and cuts on replicas, the primary moving, or the durability control. */
export const NEMESES = ['random', 'failover', 'lose-writes'] as const;

const USAGE = `usage: npm run check:ryw -- [options]

  --duration 30        seconds of sessions under the nemesis (then heal, sync, read back)
  --sessions 6         client sessions, pinned round robin to the regions
  --seed N             replay a run's choices (printed at the start of every run)
  --regions fra,ewr,syd  the first is the primary's
  --budget-ms ${DEFAULT_WAIT_MS}      RYW_WAIT_MS of the apps
  --margin-ms ${DEFAULT_MARGIN_MS}     slack on top of the budget before a request counts as over budget
  --nemesis random     random: lag, jitter and cuts on the replicas' links;
                       failover: crash the primary (started again seconds later), also once with the
                         standby cut off, hand the lease off, lag the standby candidate's link
                         (needs the Consul lease: 2 candidates; pair it with --durability standby);
                       lose-writes: the control: cut the standby, kill the primary, heal (with
                         --durability local it loses acknowledged writes: expect lost-write)
  --durability local   the apps' RYW_DURABILITY: local, or standby (a write is acknowledged once a
                       standby candidate has it)
  --durability-wait-ms ${DEFAULT_DURABILITY_WAIT_MS}  the apps' RYW_DURABILITY_WAIT_MS
  --lag-max-ms ${DEFAULT_LAG_MAX_MS}   the nemesis's largest lag (failover: ${DEFAULT_FAILOVER_LAG_MAX_MS}, on the standby's link)
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
      'lag-max-ms': { type: 'string' },
      nemesis: { type: 'string', default: 'random' },
      durability: { type: 'string', default: 'local' },
      'durability-wait-ms': { type: 'string', default: String(DEFAULT_DURABILITY_WAIT_MS) },
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
  const nemesisKind = values.nemesis as (typeof NEMESES)[number];
  if (!NEMESES.includes(nemesisKind)) throw new UsageError(`--nemesis: one of ${NEMESES.join(', ')}, got ${values.nemesis}`);
  const defaultLag = nemesisKind === 'failover' ? DEFAULT_FAILOVER_LAG_MAX_MS : DEFAULT_LAG_MAX_MS;
  const lagMaxMs = number('lag-max-ms', values['lag-max-ms'] ?? String(defaultLag), 0);
  if (values.durability !== 'local' && values.durability !== 'standby')
    throw new UsageError(`--durability: local or standby, got ${values.durability}`);
  const durability = values.durability;
  const durabilityWaitMs = Math.floor(number('durability-wait-ms', values['durability-wait-ms'], 1));
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

  const nemesis: NemesisPlan =
    nemesisKind === 'failover'
      ? { kind: 'failover', lagMaxMs }
      : nemesisKind === 'lose-writes'
        ? { kind: 'lose-writes', cycles: Math.max(1, Math.floor(durationS / 12)) }
        : { kind: 'random', lagMaxMs, cuts: !values['no-cuts'] };
  console.log(
    `check:ryw: seed ${seed}, ${durationS} s, ${sessions} sessions, regions ${regions.join(',')}, budget ${budgetMs} ms, read-your-writes ${rywEnabled ? 'on' : 'OFF'}, nemesis ${nemesisKind}, durability ${durability}`,
  );
  const dir = await mkdtemp(join(tmpdir(), 'litefs-checker-'));
  const cluster = await startProcessCluster({
    dir,
    basePort: 0,
    regions,
    env: {
      RYW_WAIT_MS: String(budgetMs),
      RYW_ENABLED: String(rywEnabled),
      RYW_FALLBACK: 'replay',
      RYW_DURABILITY: durability,
      RYW_DURABILITY_WAIT_MS: String(durabilityWaitMs),
    },
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
      nemesis,
      durability,
      durabilityWaitMs,
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
