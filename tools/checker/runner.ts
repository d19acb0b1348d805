import { HOME_PAGE_SIZE } from '../../src/article.js';
import type { Cluster } from '../cluster/cluster.js';
import { checkHistory, type CheckResult } from './check.js';
import { HISTORY_VERSION, HistoryWriter, type HistoryEntry, type OpKind, type OpRecord } from './history.js';
import { seededRandom } from './random.js';
import { articleIdFromLocation, articleTitle, hiddenFields, listedArticleIds, SessionClient, type Answer } from './session-client.js';

/** How the nemesis treats the replicas' replication links during a run. */
export type NemesisPlan =
  /** Every 0.7–2.5 s: a random replica gets a new lag (0–lagMaxMs, jitter up to a quarter of it), is cut, or is healed. */
  | { readonly kind: 'random'; readonly lagMaxMs: number; readonly cuts: boolean }
  /** One lag on every replica for the whole run: the control run's certain trouble. */
  | { readonly kind: 'fixed-lag'; readonly lagMs: number; readonly jitterMs?: number }
  | { readonly kind: 'none' };

export const DEFAULT_LAG_MAX_MS = 2_000;
/** What each session does next, by weight. */
export const OP_WEIGHTS = { write: 3, home: 4, article: 3 } as const;
/** A session pauses up to this long between operations, as people do. */
export const MAX_THINK_MS = 100;
/** The nemesis acts every NEMESIS_MIN_MS to NEMESIS_MAX_MS. */
export const NEMESIS_MIN_MS = 700;
export const NEMESIS_MAX_MS = 2_500;
/** How long the final phase waits for every replica to have everything. */
export const FINAL_SYNC_TIMEOUT_MS = 30_000;

export interface CheckRunOptions {
  /** A running cluster; the caller starts and stops it. */
  readonly cluster: Cluster;
  readonly durationMs: number;
  readonly sessions: number;
  readonly seed: number;
  readonly historyPath: string;
  /** The apps' RYW_WAIT_MS. */
  readonly budgetMs: number;
  /** Whether the apps run with read-your-writes on (recorded in the history). */
  readonly rywEnabled: boolean;
  /** RYW_FALLBACK per region, as the cluster was started (recorded). */
  readonly fallbacks: Readonly<Record<string, string>>;
  readonly nemesis: NemesisPlan;
  /** Regions the sessions are pinned to, round robin (default: every region). */
  readonly sessionRegions?: readonly string[];
  readonly marginMs?: number;
  readonly log?: (line: string) => void;
}

export interface CheckRun {
  readonly history: readonly HistoryEntry[];
  readonly result: CheckResult;
}

/**
 * Runs sessions against the cluster's edge while the nemesis changes lag and
 * cuts replicas, records every operation to `historyPath`, then heals,
 * waits for the replicas, reads every acknowledged article back from every
 * node, and judges the history with checkHistory().
 */
export async function runCheck(options: CheckRunOptions): Promise<CheckRun> {
  const { cluster, durationMs, seed } = options;
  const log = options.log ?? (() => {});
  const random = seededRandom(seed);
  const t0 = performance.now();
  const clock = () => performance.now() - t0;
  const history = new HistoryWriter(options.historyPath);
  history.append({
    type: 'meta',
    version: HISTORY_VERSION,
    seed,
    startedAt: new Date().toISOString(),
    budgetMs: options.budgetMs,
    homePageSize: HOME_PAGE_SIZE,
    regions: cluster.regions,
    primaryRegion: cluster.primaryRegion,
    rywEnabled: options.rywEnabled,
    fallbacks: options.fallbacks,
    sessions: options.sessions,
  });
  let nextId = 1;
  const record = (op: Omit<OpRecord, 'type' | 'id'>): void => history.append({ type: 'op', id: nextId++, ...op });

  const replicas = cluster.regions.filter((r) => r !== cluster.primaryRegion);
  const sessionRegions = options.sessionRegions ?? cluster.regions;
  const deadline = durationMs;

  const nemesis = runNemesis(options.nemesis, cluster, replicas, random, clock, deadline, history, log);
  const sessions = Array.from({ length: options.sessions }, (_, i) =>
    runSession(`s${i + 1}`, sessionRegions[i % sessionRegions.length]!, cluster, random, clock, deadline, record),
  );
  await Promise.all(sessions);
  await nemesis;
  history.append({ type: 'phase', time: clock(), phase: 'sessions-done' });

  // Final phase: no faults, every replica caught up, every acknowledged article read back everywhere.
  await cluster.heal();
  try {
    await cluster.waitForSync(FINAL_SYNC_TIMEOUT_MS);
    history.append({ type: 'phase', time: clock(), phase: 'synced' });
  } catch (err) {
    log(`replicas did not sync after healing: ${String(err)}`);
  }
  const written = history.entries.filter(
    (e): e is OpRecord & { articleId: number } => e.type === 'op' && e.kind === 'write' && typeof e.articleId === 'number',
  );
  const finalClient = new SessionClient(clock);
  const reads = cluster.regions.flatMap((region) => written.map((w) => ({ region, id: w.articleId })));
  await inParallel(reads, 8, async ({ region, id }) => {
    const path = `/articles/${id}`;
    const answer = await finalClient.get(`${cluster.appUrl(region)}${path}`);
    record({ ...opFields('final', region, 'final-read', 'GET', path, answer), articleId: id, title: answer.status === 200 ? articleTitle(answer.body) : null });
  });
  history.append({ type: 'phase', time: clock(), phase: 'final-done' });
  await history.close();

  return { history: history.entries, result: checkHistory(history.entries, { marginMs: options.marginMs }) };
}

type Recorder = (op: Omit<OpRecord, 'type' | 'id'>) => void;

async function runSession(
  session: string,
  region: string,
  cluster: Cluster,
  random: () => number,
  clock: () => number,
  deadline: number,
  record: Recorder,
): Promise<void> {
  const client = new SessionClient(clock);
  const base = cluster.edgeUrl(region);
  const mine: number[] = [];
  let count = 0;
  while (clock() < deadline) {
    const total = OP_WEIGHTS.write + OP_WEIGHTS.home + OP_WEIGHTS.article;
    const pick = random() * total;
    if (mine.length === 0 || pick < OP_WEIGHTS.write) {
      const form = await client.get(`${base}/new`);
      record(opFields(session, region, 'read-form', 'GET', '/new', form));
      if (form.status === 200) {
        const title = `${session} article ${++count} ${Math.floor(random() * 1e9).toString(36)}`;
        const fields = { ...hiddenFields(form.body), title, content: `Written by checker session ${session}: ${title}.` };
        const post = await client.postForm(`${base}/new`, fields);
        const id = post.status === 303 ? articleIdFromLocation(post.headers?.get('location') ?? null) : null;
        record({ ...opFields(session, region, 'write', 'POST', '/new', post), title, articleId: id });
        if (id !== null) mine.push(id);
      }
    } else if (pick < OP_WEIGHTS.write + OP_WEIGHTS.home) {
      const home = await client.get(`${base}/`);
      record({ ...opFields(session, region, 'read-home', 'GET', '/', home), listed: home.status === 200 ? listedArticleIds(home.body) : [] });
    } else {
      // Half the time the latest (the one most likely to be missing), else any of its own.
      const id = random() < 0.5 ? mine[mine.length - 1]! : mine[Math.floor(random() * mine.length)]!;
      const path = `/articles/${id}`;
      const page = await client.get(`${base}${path}`);
      record({ ...opFields(session, region, 'read-article', 'GET', path, page), articleId: id, title: page.status === 200 ? articleTitle(page.body) : null });
    }
    await sleep(random() * MAX_THINK_MS);
  }
}

async function runNemesis(
  plan: NemesisPlan,
  cluster: Cluster,
  replicas: readonly string[],
  random: () => number,
  clock: () => number,
  deadline: number,
  history: HistoryWriter,
  log: (line: string) => void,
): Promise<void> {
  const act = async (action: 'lag' | 'cut' | 'heal', region: string | null, lagMs?: number, jitterMs?: number): Promise<void> => {
    try {
      if (action === 'lag') await cluster.lag(region!, lagMs!, jitterMs);
      else if (action === 'cut') await cluster.cut(region!);
      else await cluster.heal(region ?? undefined);
      history.append({ type: 'nemesis', time: clock(), action, region, ...(lagMs !== undefined ? { lagMs } : {}), ...(jitterMs !== undefined ? { jitterMs } : {}) });
    } catch (err) {
      log(`nemesis ${action} ${region ?? 'all'} failed: ${String(err)}`);
    }
  };
  if (plan.kind === 'none' || replicas.length === 0) return;
  if (plan.kind === 'fixed-lag') {
    for (const region of replicas) await act('lag', region, plan.lagMs, plan.jitterMs ?? 0);
    return;
  }
  let cuts = 0;
  while (clock() < deadline) {
    await sleep(NEMESIS_MIN_MS + random() * (NEMESIS_MAX_MS - NEMESIS_MIN_MS));
    if (clock() >= deadline) break;
    const region = replicas[Math.floor(random() * replicas.length)]!;
    const roll = random();
    // Past half-time with no cut yet, cut: every run, however short, sees a partition.
    const mustCut = plan.cuts && cuts === 0 && clock() > deadline / 2;
    if (mustCut || (plan.cuts && roll < 0.2)) {
      cuts++;
      await act('cut', region);
    } else if (roll < 0.45) {
      await act('heal', region);
    } else {
      const lagMs = Math.round(random() * plan.lagMaxMs);
      await act('lag', region, lagMs, Math.round(lagMs * 0.25 * random()));
    }
  }
}

function opFields(session: string, region: string, kind: OpKind, method: 'GET' | 'POST', path: string, answer: Answer): Omit<OpRecord, 'type' | 'id'> {
  return {
    session,
    region,
    kind,
    method,
    path,
    start: answer.sentAt,
    end: answer.doneAt,
    status: answer.status,
    ...(answer.error !== undefined ? { error: answer.error } : {}),
    decision: answer.decision,
    waitMs: answer.waitMs,
    hops: answer.hops,
    stale: answer.stale,
  };
}

async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * RYW_FALLBACK per region for a checker cluster: the primary and the first
 * replica replay (the default), the next replica serves stale, and so on
 * alternating, so that every kind of answer shows up in one run.
 */
export function checkerFallbacks(regions: readonly string[]): Record<string, 'replay' | 'stale'> {
  return Object.fromEntries(regions.map((region, i) => [region, i >= 2 && i % 2 === 0 ? 'stale' : 'replay']));
}
