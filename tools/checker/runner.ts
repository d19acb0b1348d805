import { HOME_PAGE_SIZE } from '../../src/article.js';
import { DEFAULT_PRIMARY_WAIT_MS } from '../../src/ryw/index.js';
import type { Cluster } from '../cluster/cluster.js';
import { checkHistory, type CheckResult } from './check.js';
import {
  act as recordedAct,
  runFailoverNemesis,
  runLoseWritesNemesis,
  watchPrimaryChanges,
  type FailoverCluster,
  type FailoverPlan,
  type LoseWritesPlan,
} from './failover-nemesis.js';
import { HISTORY_VERSION, HistoryWriter, type HistoryEntry, type OpKind, type OpRecord } from './history.js';
import { seededRandom } from './random.js';
import {
  articleIdFromLocation,
  articleTitle,
  deleteFormOf,
  editFormOf,
  hiddenFields,
  isSignInLocation,
  listedArticles,
  SessionClient,
  signedInOf,
  type Answer,
} from './session-client.js';
import { signIn, TOOLS_AUTHOR, type AuthorCredentials, type SignInStep } from './sign-in.js';

/** How the nemesis treats the replicas' replication links during a run. */
export type NemesisPlan =
  /** Every 0.7–2.5 s: a random replica gets a new lag (0–lagMaxMs, jitter up to a quarter of it), is cut, or is healed. */
  | { readonly kind: 'random'; readonly lagMaxMs: number; readonly cuts: boolean }
  /** One lag on every replica for the whole run: the control run's certain trouble. */
  | { readonly kind: 'fixed-lag'; readonly lagMs: number; readonly jitterMs?: number }
  /** Crashes and restarts of the primary, handoffs, lag on the standby's link (failover-nemesis.ts). */
  | FailoverPlan
  /** The control for durability: cut the standby, kill the primary, heal (failover-nemesis.ts). */
  | LoseWritesPlan
  | { readonly kind: 'none' };

export const DEFAULT_LAG_MAX_MS = 2_000;
/** What each session does next, by weight: publish, edit or delete one of its articles, read the home page or one of its articles. */
export interface OpWeights {
  readonly write: number;
  readonly edit: number;
  readonly delete: number;
  readonly home: number;
  readonly article: number;
}
export const OP_WEIGHTS: OpWeights = { write: 3, edit: 2, delete: 1, home: 3, article: 3 };
/** A session pauses up to this long between operations, as people do. */
export const MAX_THINK_MS = 100;
/** The nemesis acts every NEMESIS_MIN_MS to NEMESIS_MAX_MS. */
export const NEMESIS_MIN_MS = 700;
export const NEMESIS_MAX_MS = 2_500;
/** How long the final phase waits for every replica to have everything. */
export const FINAL_SYNC_TIMEOUT_MS = 30_000;
/** Tries at creating the run's author before the run counts as not made. */
export const SETUP_ATTEMPTS = 5;
/** A session whose sign-in failed (no answer, a 5xx) tries again after this long. */
export const SIGN_IN_RETRY_MS = 250;

/** What a run needs of a cluster: its shape, its edge and apps, and the nemesis's verbs (the failover ones for the failover plans). */
export type CheckCluster = Pick<
  Cluster,
  'regions' | 'instances' | 'primaryRegion' | 'edgeUrl' | 'appUrl' | 'node' | 'lag' | 'cut' | 'heal' | 'waitForSync'
> &
  Partial<Pick<Cluster, 'kill' | 'start' | 'handoff' | 'waitForPrimary' | 'primaryChanges' | 'lease'>>;
/** How long the final phase waits for a primary (after the last crash or handoff). */
export const FINAL_PRIMARY_TIMEOUT_MS = 30_000;
/**
 * A final read goes straight to a healed, caught-up app with no token: it
 * takes milliseconds. One with no answer by then says the node is not
 * answering, and its other reads are not sent (each would wait as long: a
 * few hundred of them, hours). The node is unverified either way.
 */
export const FINAL_READ_TIMEOUT_MS = 10_000;
/** Final reads in flight at once. */
const FINAL_READ_PARALLELISM = 8;
/**
 * A final read answered with no verdict on the node's copy (a replay to the
 * primary, as a replica's app answers while LiteFS holds its lock applying a
 * snapshot; a 5xx; a refused connection) is sent again after this long:
 * more than the app's BUSY_BACKOFF_MS, the time it replays reads after
 * meeting the lock once.
 */
export const FINAL_READ_RETRY_MS = 1_500;
/** Sends of one final read before the answer stands (and its node is unverified for that article). */
export const FINAL_READ_ATTEMPTS = 3;
/**
 * A node whose final reads get no verdict this many times in a row (each
 * after FINAL_READ_ATTEMPTS sends) is not asked for the rest: a node that
 * answers every read 503 would otherwise cost seconds per article.
 */
export const FINAL_READ_GIVE_UP_AFTER = 8;
/** What a final read can say about a node's copy: the article as it is, gone, or missing. */
const FINAL_VERDICTS: ReadonlySet<number> = new Set([200, 404, 410]);

export interface CheckRunOptions {
  /** A running cluster; the caller starts and stops it. */
  readonly cluster: CheckCluster;
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
  /** What sessions do, by weight (default OP_WEIGHTS). */
  readonly weights?: OpWeights;
  /** The run's author, created through `/setup` when the blog has none (default TOOLS_AUTHOR). */
  readonly author?: AuthorCredentials;
  readonly marginMs?: number;
  /** The apps' RYW_DURABILITY and RYW_DURABILITY_WAIT_MS, as the cluster was started (recorded: a write may wait that long more). */
  readonly durability?: 'local' | 'standby';
  readonly durabilityWaitMs?: number;
  /** How long the apps let a write on a replica wait for a primary to be named (default DEFAULT_PRIMARY_WAIT_MS, as they run it). */
  readonly primaryWaitMs?: number;
  /** How long a final read may wait for its answer before its node counts as not answering (default FINAL_READ_TIMEOUT_MS). */
  readonly finalReadTimeoutMs?: number;
  /** How long before a final read with no verdict is sent again (default FINAL_READ_RETRY_MS). */
  readonly finalReadRetryMs?: number;
  readonly log?: (line: string) => void;
}

export interface CheckRun {
  readonly history: readonly HistoryEntry[];
  readonly result: CheckResult;
}

/**
 * Creates the run's author (through `/setup` on a fresh cluster, or signs
 * in when it exists), then runs sessions against the cluster's edge, each
 * signed in as that author, while the nemesis changes lag and cuts
 * replicas; records every operation to `historyPath`; then heals, waits for
 * the replicas, reads every article written back from every node, and
 * judges the history with checkHistory().
 */
export async function runCheck(options: CheckRunOptions): Promise<CheckRun> {
  const { cluster, durationMs, seed } = options;
  const log = options.log ?? (() => {});
  const author = options.author ?? TOOLS_AUTHOR;
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
    instances: cluster.instances,
    primaryRegion: cluster.primaryRegion,
    rywEnabled: options.rywEnabled,
    fallbacks: options.fallbacks,
    sessions: options.sessions,
    durability: options.durability ?? 'local',
    ...(options.durabilityWaitMs !== undefined ? { durabilityWaitMs: options.durabilityWaitMs } : {}),
    primaryWaitMs: options.primaryWaitMs ?? DEFAULT_PRIMARY_WAIT_MS,
  });
  const primaries = cluster.primaryChanges ? watchPrimaryChanges(cluster as Pick<Cluster, 'primaryChanges'>, clock, history) : null;
  let nextId = 1;
  const record = (op: Omit<OpRecord, 'type' | 'id'>): void => history.append({ type: 'op', id: nextId++, ...op });

  // The run's one author, made before any session starts so that no two race to create it.
  const setupClient = new SessionClient(clock);
  for (let attempt = 1; ; attempt++) {
    const made = await signIn(setupClient, cluster.edgeUrl(), author, { setup: true });
    recordSignIn('setup', cluster.primaryRegion, made.steps, record);
    if (made.ok) break;
    if (attempt >= SETUP_ATTEMPTS) {
      await history.close();
      throw new Error(`the run's author could not be created or signed in: ${made.reason}`);
    }
    log(`creating the run's author: ${made.reason}; trying again`);
    await sleep(500);
  }
  const deadline = clock() + durationMs;

  const replicas = cluster.regions.filter((r) => r !== cluster.primaryRegion);
  const sessionRegions = options.sessionRegions ?? cluster.regions;

  const nemesis = runNemesis(options.nemesis, cluster, replicas, random, clock, deadline, history, log);
  const sessions = Array.from({ length: options.sessions }, (_, i) =>
    runSession(
      `s${i + 1}`,
      sessionRegions[i % sessionRegions.length]!,
      cluster,
      author,
      options.weights ?? OP_WEIGHTS,
      random,
      clock,
      deadline,
      record,
    ),
  );
  await Promise.all(sessions);
  await nemesis;
  history.append({ type: 'phase', time: clock(), phase: 'sessions-done' });

  // Final phase: no faults, a primary, every replica caught up, every article written read back from every node.
  await cluster.heal();
  if (cluster.waitForPrimary) {
    await cluster.waitForPrimary(FINAL_PRIMARY_TIMEOUT_MS).catch((err: unknown) => log(`no primary after the run: ${String(err)}`));
  }
  try {
    await cluster.waitForSync(FINAL_SYNC_TIMEOUT_MS);
    history.append({ type: 'phase', time: clock(), phase: 'synced' });
  } catch (err) {
    log(`replicas did not sync after healing: ${String(err)}`);
  }
  const written = history.entries.filter(
    (e): e is OpRecord & { articleId: number } => e.type === 'op' && e.kind === 'write' && typeof e.articleId === 'number',
  );
  const finalReadTimeoutMs = options.finalReadTimeoutMs ?? FINAL_READ_TIMEOUT_MS;
  const finalReadRetryMs = options.finalReadRetryMs ?? FINAL_READ_RETRY_MS;
  const finalClient = new SessionClient(clock, finalReadTimeoutMs);
  /** Why a node's (remaining) reads are not sent: it is down, or one of them had no answer in time. */
  const mute = new Map<string, string>();
  // Said here, where a person reading the log looks for why its copy went unchecked.
  for (const instance of cluster.instances) {
    if (cluster.node(instance).live) continue;
    mute.set(instance, `not sent: ${instance} is not running`);
    log(`final reads: ${instance} is not running; its reads are not sent, and its copy stays unchecked`);
  }
  /** Reads in a row per node that got no verdict in FINAL_READ_ATTEMPTS sends each. */
  const fruitless = new Map<string, number>();
  const silence = (instance: string, why: string, logLine: string) => {
    if (mute.has(instance)) return;
    mute.set(instance, `not sent: ${why}`);
    log(`final reads: ${logLine}; its other reads are not sent`);
  };
  /** One article's page from one node, tried again while the answer is no verdict (a replay while it applies a snapshot, a 5xx). */
  const readBack = async (instance: string, path: string): Promise<Answer> => {
    let last: Answer | null = null;
    for (let attempt = 1; ; attempt++) {
      const skipped = mute.get(instance);
      // Muted while this read waited to try again: what it did get stands.
      if (skipped !== undefined) return last ?? notSent(clock(), skipped);
      const answer = await finalClient.get(`${cluster.appUrl(instance)}${path}`);
      if (answer.error?.startsWith('TimeoutError')) {
        const within = `within ${finalReadTimeoutMs} ms`;
        silence(instance, `an earlier final read on ${instance} had no answer ${within}`, `${instance} did not answer ${path} ${within}`);
        return answer;
      }
      if (answer.status !== null && FINAL_VERDICTS.has(answer.status)) {
        fruitless.set(instance, 0);
        return answer;
      }
      if (attempt === FINAL_READ_ATTEMPTS) {
        const inARow = (fruitless.get(instance) ?? 0) + 1;
        fruitless.set(instance, inARow);
        if (inARow >= FINAL_READ_GIVE_UP_AFTER) {
          const got = answer.status === null ? (answer.error ?? 'no answer') : `HTTP ${answer.status}`;
          const why = `${inARow} final reads in a row on ${instance} got no verdict in ${FINAL_READ_ATTEMPTS} sends each (last: ${got})`;
          silence(instance, why, why);
        }
        return answer;
      }
      last = answer;
      await sleep(finalReadRetryMs);
    }
  };
  const reads = cluster.instances.flatMap((instance) => written.map((w) => ({ instance, id: w.articleId })));
  await inParallel(reads, FINAL_READ_PARALLELISM, async ({ instance, id }) => {
    const path = `/articles/${id}`;
    const answer = await readBack(instance, path);
    record({
      ...opFields('final', cluster.node(instance).region, 'final-read', 'GET', path, answer),
      instance,
      articleId: id,
      title: answer.status === 200 ? articleTitle(answer.body) : null,
    });
  });
  primaries?.stop();
  history.append({ type: 'phase', time: clock(), phase: 'final-done' });
  await history.close();

  return { history: history.entries, result: checkHistory(history.entries, { marginMs: options.marginMs }) };
}

type Recorder = (op: Omit<OpRecord, 'type' | 'id'>) => void;

/** The requests of a sign-in, as ops: its pages are reads (`read-form`), its POSTs `sign-in`. */
function recordSignIn(session: string, region: string, steps: readonly SignInStep[], record: Recorder): void {
  for (const { method, path, answer } of steps)
    record(opFields(session, region, method === 'GET' ? 'read-form' : 'sign-in', method, path, answer));
}

/** What a session knows of its articles. */
interface Articles {
  /** Published (303), not deleted as far as it knows: what it edits and deletes. */
  readonly live: number[];
  /** Deleted (303): it still reads them, and must get 410. */
  readonly gone: number[];
  /** A delete whose outcome is unknown: read, never edited again. */
  readonly unsure: number[];
  /** The one it changed last: the read most likely to miss its change. */
  latest: number | null;
}

async function runSession(
  session: string,
  region: string,
  cluster: CheckCluster,
  author: AuthorCredentials,
  w: OpWeights,
  random: () => number,
  clock: () => number,
  deadline: number,
  record: Recorder,
): Promise<void> {
  const client = new SessionClient(clock);
  const base = cluster.edgeUrl(region);
  const mine: Articles = { live: [], gone: [], unsure: [], latest: null };
  const unique = () => Math.floor(random() * 1e9).toString(36);
  let count = 0;
  let edits = 0;
  /** Reads what a browser lands on after a write (the 303's target), as the next op. */
  const follow = async (path: string, id: number): Promise<void> => {
    const page = await client.get(`${base}${path}`);
    if (path.startsWith('/?')) record(homeRead(session, region, path, page));
    else
      record({
        ...opFields(session, region, 'read-article', 'GET', path, page),
        articleId: id,
        title: page.status === 200 ? articleTitle(page.body) : null,
      });
  };
  /** Mostly the one it changed last, else any of its own. */
  const pickLive = (): number =>
    mine.latest !== null && mine.live.includes(mine.latest) && random() < 0.5
      ? mine.latest
      : mine.live[Math.floor(random() * mine.live.length)]!;

  // Signed in first, through its own region (replayed to the primary), retrying what got no answer.
  let signedIn = false;
  while (!signedIn && clock() < deadline) {
    const result = await signIn(client, base, author);
    recordSignIn(session, region, result.steps, record);
    signedIn = result.ok;
    if (!signedIn) await sleep(SIGN_IN_RETRY_MS);
  }

  while (clock() < deadline) {
    const pick = random() * (w.write + w.edit + w.delete + w.home + w.article);
    if (mine.live.length === 0 || pick < w.write) {
      const form = await client.get(`${base}/new`);
      record(opFields(session, region, 'read-form', 'GET', '/new', form));
      if (form.status === 200) {
        const title = `${session} article ${++count} ${unique()}`;
        const fields = { ...hiddenFields(form.body), title, content: `Written by checker session ${session}: ${title}.` };
        const post = await client.postForm(`${base}/new`, fields);
        const id = post.status === 303 ? articleIdFromLocation(post.headers?.get('location') ?? null) : null;
        record({ ...opFields(session, region, 'write', 'POST', '/new', post), title, articleId: id });
        if (id !== null) {
          mine.live.push(id);
          mine.latest = id;
          await follow(`/articles/${id}`, id);
        }
      }
    } else if (pick < w.write + w.edit) {
      const id = pickLive();
      const path = `/articles/${id}/edit`;
      const form = await client.get(`${base}${path}`);
      const shown = form.status === 200 ? editFormOf(form.body) : null;
      record({
        ...opFields(session, region, 'read-edit-form', 'GET', path, form),
        articleId: id,
        title: shown?.title ?? null,
        revision: shown?.revision ?? null,
      });
      if (shown) {
        // A new title every time: the title a page shows names the version it shows.
        const title = `${session} edit ${++edits} of article ${id} ${unique()}`;
        const post = await client.postForm(`${base}/articles/${id}`, {
          ...hiddenFields(form.body),
          title,
          content: `Edited by checker session ${session}: ${title}.`,
        });
        record({ ...opFields(session, region, 'edit', 'POST', `/articles/${id}`, post), articleId: id, title, revision: shown.revision });
        if (post.status === 303) {
          mine.latest = id;
          await follow(`/articles/${id}`, id);
        }
        // A 409 (the form showed an older revision) saved nothing: the article stays as it was.
      }
    } else if (pick < w.write + w.edit + w.delete) {
      const id = pickLive();
      const path = `/articles/${id}/delete`;
      const form = await client.get(`${base}${path}`);
      const shown = form.status === 200 ? deleteFormOf(form.body) : null;
      record({
        ...opFields(session, region, 'read-delete-form', 'GET', path, form),
        articleId: id,
        title: shown?.title ?? null,
        revision: shown?.revision ?? null,
      });
      if (shown) {
        const post = await client.postForm(`${base}${path}`, hiddenFields(form.body));
        const op = { ...opFields(session, region, 'delete', 'POST', path, post), articleId: id, revision: shown.revision };
        record(op);
        const location = post.headers?.get('location') ?? null;
        if (post.status === 303 && location === `/?deleted=${id}`) {
          move(mine.live, mine.gone, id);
          mine.latest = id;
          await follow(location, id);
        } else if (post.status === null || post.status >= 500) {
          move(mine.live, mine.unsure, id); // maybe deleted: never edited again, still read
        }
      }
    } else if (pick < w.write + w.edit + w.delete + w.home) {
      record(homeRead(session, region, '/', await client.get(`${base}/`)));
    } else {
      const all = [...mine.live, ...mine.gone, ...mine.unsure];
      const id = mine.latest !== null && random() < 0.5 ? mine.latest : all[Math.floor(random() * all.length)]!;
      const path = `/articles/${id}`;
      const page = await client.get(`${base}${path}`);
      record({
        ...opFields(session, region, 'read-article', 'GET', path, page),
        articleId: id,
        title: page.status === 200 ? articleTitle(page.body) : null,
      });
    }
    await sleep(random() * MAX_THINK_MS);
  }
}

function homeRead(session: string, region: string, path: string, page: Answer): Omit<OpRecord, 'type' | 'id'> {
  const listed = page.status === 200 ? listedArticles(page.body) : [];
  return {
    ...opFields(session, region, 'read-home', 'GET', path, page),
    listed: listed.map((a) => a.id),
    listedTitles: listed.map((a) => a.title),
  };
}

function move(from: number[], to: number[], id: number): void {
  const i = from.indexOf(id);
  if (i >= 0) from.splice(i, 1);
  to.push(id);
}

async function runNemesis(
  plan: NemesisPlan,
  cluster: CheckCluster,
  replicas: readonly string[],
  random: () => number,
  clock: () => number,
  deadline: number,
  history: HistoryWriter,
  log: (line: string) => void,
): Promise<void> {
  const act = async (action: 'lag' | 'cut' | 'heal', region: string | null, lagMs?: number, jitterMs?: number): Promise<void> => {
    await recordedAct(
      { clock, history, log },
      action,
      region,
      () =>
        action === 'lag'
          ? cluster.lag(region!, lagMs!, jitterMs)
          : action === 'cut'
            ? cluster.cut(region!)
            : cluster.heal(region ?? undefined),
      { ...(lagMs !== undefined ? { lagMs } : {}), ...(jitterMs !== undefined ? { jitterMs } : {}) },
    );
  };
  if (plan.kind === 'failover' || plan.kind === 'lose-writes') {
    const context = { cluster: failoverCluster(cluster), random, clock, deadline, history, log };
    return plan.kind === 'failover' ? runFailoverNemesis(plan, context) : runLoseWritesNemesis(plan, context);
  }
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

/** The cluster as the failover nemeses need it: its failover verbs must be there. */
function failoverCluster(cluster: CheckCluster): FailoverCluster {
  // Checked, not copied: a test's cluster may have its verbs on its prototype.
  if (!cluster.kill || !cluster.start || !cluster.handoff || !cluster.waitForPrimary || !cluster.primaryChanges || !cluster.lease)
    throw new Error('the failover nemesis needs a cluster that can kill, start and hand off its nodes (a process cluster)');
  return cluster as FailoverCluster;
}

function opFields(
  session: string,
  region: string,
  kind: OpKind,
  method: 'GET' | 'POST',
  path: string,
  answer: Answer,
): Omit<OpRecord, 'type' | 'id'> {
  const location = answer.headers?.get('location') ?? null;
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
    ...(method === 'POST' || location !== null ? { location } : {}),
    // A page sending its reader to sign in shows them signed out as surely as a nav saying "Sign in".
    signedIn: method === 'GET' && answer.status === 303 && isSignInLocation(location) ? false : signedInOf(answer.status, answer.body),
  };
}

/** The answer recorded for a read that was not sent, and why. */
function notSent(now: number, why: string): Answer {
  return {
    status: null,
    error: why,
    headers: null,
    body: '',
    sentAt: now,
    doneAt: now,
    decision: null,
    waitMs: null,
    hops: [],
    stale: false,
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
