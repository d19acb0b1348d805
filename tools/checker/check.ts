import type { HistoryEntry, NemesisAction, OpKind, OpRecord, PrimaryRecord, RunMeta } from './history.js';
import { OP_KINDS, WRITE_KINDS } from './history.js';

/**
 * The read-your-writes checker, as a pure function of a recorded history.
 * It knows nothing of HTTP or clusters: whatever produced the history (the
 * runner, or a test's hand-made list), the same rules judge it.
 *
 * An article goes through versions (its publication, each edit: every
 * version's title is unique in a run, so the title a page shows names the
 * version) and may end deleted. What a session may see of one of its own
 * articles is the state its last acknowledged write (a 303 received before
 * the read was sent) left, or the state of any later write of it whose
 * outcome is unknown (no answer, a 5xx: it may have been saved). A refused
 * write (a 4xx: a conflict, a form that had expired) saved nothing.
 *
 * 1. missing-own-write: a read answered 200 and not marked stale must show
 *    every article its session had been told was saved: an article page (or
 *    its edit form) with the session's title, the home page listing it unless
 *    the page is full of newer articles. A 404 counts.
 * 2. older-version: after the session was told its edit was saved, no read
 *    shows an earlier version of that article (its title before the edit).
 * 3. not-gone: after the session was told its delete was done, the article's
 *    page answers 410 Gone (or 200 marked stale, which the reader was told),
 *    and the home page does not list it.
 * 4. signed-out: after the session was told it was signed in, no page shows
 *    it signed out, and no form sends it to sign in again.
 * 5. lost-write: after the run, every node shows every article in the state
 *    its last acknowledged write left (or a later write of unknown outcome).
 *    An id acknowledged for a second publication is a loss too: the app never
 *    hands an id out twice, so the database that did had lost the first one
 *    (a failover that lost writes: the new primary reuses their ids).
 *    A node whose final read got no answer, or one that shows nothing (a
 *    5xx, another 4xx), has lost nothing anyone saw: that article is
 *    unverified on it, and the run cannot pass (its copy went unchecked).
 * 6. over-budget: no session request takes longer than the wait budget plus a
 *    margin (the app's own reported wait, and the client's whole round trip;
 *    for a sign-in only the former: its time is the password hash, on purpose).
 *    A write may also wait for a primary while the lease holder changes
 *    (the apps' primary wait, through a replica that knows none yet) and,
 *    with `standby` durability, RYW_DURABILITY_WAIT_MS for its standby.
 *
 * No answer, a 5xx or another 4xx is not a read: it shows nothing, and
 * claims nothing.
 *
 * A start that did not bring its node back, or a kill that broke, fails the
 * run too: the failure is often the finding (LiteFS that will not reopen its
 * store). Other actions that broke (a handoff or a Toxiproxy call that timed
 * out on a busy machine) are listed, not failed on: the run's own
 * expectations say whether it got the faults it needed. Refusals (nothing
 * to do right now) are counted apart.
 */

/** Nemesis actions whose failure fails the run: a node that did not come back, or one that could not be crashed. */
export const FAILING_NEMESIS_ACTIONS: readonly string[] = ['start', 'kill'];

export const VIOLATION_KINDS = ['missing-own-write', 'older-version', 'not-gone', 'signed-out', 'lost-write', 'over-budget'] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

/** Slack on top of the wait budget for rendering, the edge, one replay and a busy machine. */
export const DEFAULT_MARGIN_MS = 1_000;

export interface Violation {
  readonly kind: ViolationKind;
  readonly session: string;
  /** The op that shows it (for lost-write, the write). */
  readonly op: number;
  readonly message: string;
}

export interface CheckOptions {
  readonly marginMs?: number;
}

export interface Distribution {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** The op kinds that change an article. */
export type ArticleWriteKind = 'write' | 'edit' | 'delete';

export interface CheckResult {
  /**
   * No violation, no node that failed to start again, and the history holds
   * the final reads that prove no write was lost, every one of them answered.
   */
  readonly ok: boolean;
  /** Whether the history has its final phase (the lost-write check needs it). */
  readonly complete: boolean;
  readonly operations: Readonly<Record<OpKind, number>>;
  /** Publications, edits and deletes answered with their 303. */
  readonly acknowledgedWrites: number;
  readonly acknowledgedByKind: Readonly<Record<ArticleWriteKind | 'sign-in', number>>;
  /** Publications, edits and deletes without their 303 (refused + unknown): never counted as saved. */
  readonly unacknowledgedWrites: number;
  /** Refused (a 4xx): nothing was saved. */
  readonly refusedWrites: number;
  /** No answer or a 5xx: maybe saved, maybe not; either state is accepted afterwards, neither required. */
  readonly unknownWrites: number;
  readonly violations: readonly Violation[];
  readonly violationsByKind: Readonly<Record<ViolationKind, number>>;
  /** Session reads by how they were served: none, fresh, waited, replayed, stale, unavailable, dropped, error, … */
  readonly decisions: Readonly<Record<string, number>>;
  /** Round-trip times of session reads (ms). */
  readonly readLatency: Distribution;
  /** The app's reported waits of reads that waited and were then served (ms). */
  readonly waits: Distribution;
  /** Nemesis actions done, by action. */
  readonly nemesis: Readonly<Record<string, number>>;
  /** Nemesis actions the cluster refused (nothing to do right now: no primary to kill or hand off), by action. */
  readonly nemesisRefused: Readonly<Record<string, number>>;
  /**
   * Nemesis actions tried that broke, in order; those marked `fatal` fail the
   * run (see the top of this file), the others are listed.
   */
  readonly nemesisFailures: readonly NemesisFailure[];
  /** Nodes whose copy was not (all) checked: some final reads got no answer or one that shows nothing. Each fails the run. */
  readonly unverified: readonly UnverifiedNode[];
  /** Unknown-outcome writes by what they got: `no answer`, `503`, `502`, … */
  readonly unknownByStatus: Readonly<Record<string, number>>;
  /** Every change of the lease holder during the run, in order (null: nobody held it). */
  readonly primaryChanges: readonly PrimaryChange[];
}

export interface NemesisFailure {
  /** On the run's clock (ms): when it gave up. */
  readonly time: number;
  readonly action: NemesisAction;
  /** A region or an instance; null: every replica (heal), or the primary (kill, handoff). */
  readonly target: string | null;
  /** The error's first line and its telling one (see NemesisErrorRecord). */
  readonly error: string;
  /**
   * Whether it fails the run: a `start` or `kill` that broke (see the top of
   * this file), unless a later `start` of the same node brought it back.
   */
  readonly fatal: boolean;
}

/** A node whose final reads (some, or all) could not be judged. */
export interface UnverifiedNode {
  readonly node: string;
  /** Its final reads that got no answer, or one that shows nothing. */
  readonly reads: number;
  /** Its final reads in all. */
  readonly total: number;
  /** What the first of them got: the client's error (`TypeError: fetch failed`), or `HTTP 503`. */
  readonly error: string;
}

export interface PrimaryChange {
  readonly time: number;
  readonly from: string | null;
  readonly to: string | null;
  /** For a change to a primary after a time without one: how long there was none (ms). */
  readonly withoutPrimaryMs?: number;
  /** For a change to a primary after the nemesis killed the last one: how long since that kill (ms). */
  readonly afterKillMs?: number;
}

/** How a session read was served, as a reader would tell: a second hop means the edge replayed it. */
export function servedAs(op: Pick<OpRecord, 'status' | 'stale' | 'hops' | 'decision'>): string {
  if (op.status === null) return 'error';
  if (op.stale) return 'stale';
  if (op.hops.length > 1) return 'replayed';
  return op.decision ?? 'unknown';
}

/** What became of a POST, as its answer tells. */
export type Outcome = 'acknowledged' | 'refused' | 'unknown';

/**
 * Acknowledged: the 303 the app answers once the change is committed, to
 * where it sends the browser next (the article; after a delete, `/?deleted=<id>`).
 * Refused: a 4xx, which the app answers only when it saved nothing.
 * Unknown: anything else (no answer, a timeout, a 5xx from the app or the edge).
 */
export function outcomeOf(op: OpRecord): Outcome {
  if (op.status === null || op.status >= 500) return 'unknown';
  if (op.status >= 400) return 'refused';
  if (op.status !== 303) return 'unknown';
  switch (op.kind) {
    case 'sign-in':
      return 'acknowledged';
    case 'write':
      return typeof op.articleId === 'number' && typeof op.title === 'string' ? 'acknowledged' : 'unknown';
    case 'edit':
      return typeof op.articleId === 'number' && typeof op.title === 'string' && articleIdOfPath(op.location) === op.articleId
        ? 'acknowledged'
        : 'unknown';
    case 'delete':
      return typeof op.articleId === 'number' && deletedIdOfPath(op.location) === op.articleId ? 'acknowledged' : 'unknown';
    default:
      return 'unknown';
  }
}

/** An article as a page can show it. */
type State = { readonly kind: 'version'; readonly title: string | null } | { readonly kind: 'gone' };
/** What a read showed of an article. */
type Observed = State | { readonly kind: 'missing' };

interface ArticleWrite {
  readonly op: OpRecord;
  readonly outcome: Outcome;
  readonly state: State;
}

/** The states a read of an article may show, and the write that obliges it. */
interface Expected {
  /** The last write acknowledged before the read was sent. */
  readonly last: ArticleWrite;
  /** Its state, then those of later writes of unknown outcome (or still under way when the read began). */
  readonly allowed: readonly State[];
  /** The versions before `last`: showing one of them is showing an older version. */
  readonly earlier: readonly ArticleWrite[];
}

function expectedAt(writes: readonly ArticleWrite[], at: number): Expected | null {
  let lastIndex = -1;
  for (const [i, w] of writes.entries()) if (w.outcome === 'acknowledged' && w.op.end <= at) lastIndex = i;
  if (lastIndex < 0) return null;
  const last = writes[lastIndex]!;
  const later = writes.slice(lastIndex + 1).filter((w) => w.outcome !== 'refused' && w.op.start < at);
  return {
    last,
    allowed: [last.state, ...later.map((w) => w.state)],
    earlier: writes.slice(0, lastIndex).filter((w) => w.outcome !== 'refused'),
  };
}

function matches(observed: Observed, state: State): boolean {
  if (state.kind === 'gone') return observed.kind === 'gone';
  return observed.kind === 'version' && observed.title === state.title;
}

/** What an answer showed of the article it was about; null when it shows nothing (no answer, 5xx, marked stale). */
function observedOf(op: OpRecord): Observed | null {
  if (op.status === null || op.stale) return null;
  switch (op.kind) {
    case 'read-article':
    case 'final-read':
      if (op.status === 200) return { kind: 'version', title: op.title ?? null };
      if (op.status === 410) return { kind: 'gone' };
      if (op.status === 404) return { kind: 'missing' };
      return null;
    case 'read-edit-form':
      if (op.status === 200) return { kind: 'version', title: op.title ?? null };
      if (op.status === 410) return { kind: 'gone' };
      if (op.status === 404) return { kind: 'missing' };
      return null;
    case 'read-delete-form':
      if (op.status === 200) return { kind: 'version', title: op.title ?? null };
      // Deleted already: the confirmation page sends the author where a delete lands.
      if (op.status === 303 && deletedIdOfPath(op.location) === op.articleId) return { kind: 'gone' };
      return null;
    default:
      return null;
  }
}

const describe = (o: Observed): string =>
  o.kind === 'version' ? `showed ${JSON.stringify(o.title)}` : o.kind === 'gone' ? 'answered 410 Gone' : 'answered 404';
const describeState = (s: State): string => (s.kind === 'gone' ? 'deleted' : JSON.stringify(s.title));

/** Which rule an observation that matches none of the allowed states breaks. */
function judge(observed: Observed, expected: Expected): ViolationKind {
  if (expected.last.state.kind === 'gone') return 'not-gone';
  if (observed.kind === 'version' && expected.earlier.some((w) => w.state.kind === 'version' && w.state.title === observed.title)) {
    return 'older-version';
  }
  return 'missing-own-write';
}

/**
 * When a write through a replica may wait for a primary to be named: from
 * each change of the lease holder (to nobody, or to another node at a
 * handoff) until a primary is named again, plus `primaryWaitMs` (a
 * replica's LiteFS learns of the new primary only when it reconnects).
 */
function primaryChangeWindows(history: readonly HistoryEntry[], primaryWaitMs: number): { start: number; end: number }[] {
  const changes = history.filter((e): e is PrimaryRecord => e.type === 'primary');
  return changes.map((change, i) => {
    const named = change.to !== null ? change : changes.slice(i + 1).find((c) => c.to !== null);
    return { start: change.time, end: (named?.time ?? Infinity) + primaryWaitMs };
  });
}

export function checkHistory(history: readonly HistoryEntry[], options: CheckOptions = {}): CheckResult {
  const marginMs = options.marginMs ?? DEFAULT_MARGIN_MS;
  const meta = history.find((e): e is RunMeta => e.type === 'meta');
  if (!meta) throw new Error('history has no meta entry: not a checker history');
  const limitMs = meta.budgetMs + marginMs;
  // A write may wait on purpose, as long as the apps allow: with standby
  // durability, for its standby; and while the primary changes, through a
  // replica that knows none yet, for one to be named.
  const durabilityWaitMs = meta.durability === 'standby' ? (meta.durabilityWaitMs ?? 0) : 0;
  const primaryWaitMs = meta.primaryWaitMs ?? 0;
  const duringPrimaryChange = primaryChangeWindows(history, primaryWaitMs);
  const ops = history.filter((e): e is OpRecord => e.type === 'op');
  const complete = history.some((e) => e.type === 'phase' && e.phase === 'final-done');

  const violations: Violation[] = [];
  const violation = (kind: ViolationKind, op: OpRecord, message: string) =>
    violations.push({ kind, session: op.session, op: op.id, message });
  const operations = Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as Record<OpKind, number>;
  const acknowledgedByKind = { 'sign-in': 0, write: 0, edit: 0, delete: 0 };
  let refused = 0;
  let unknown = 0;
  const decisions: Record<string, number> = {};
  const nemesis: Record<string, number> = {};
  const unknownByStatus: Record<string, number> = {};
  const readLatencies: number[] = [];
  const waits: number[] = [];
  const nemesisRefused: Record<string, number> = {};
  const nemesisFailures: NemesisFailure[] = [];
  for (const entry of history) {
    if (entry.type === 'nemesis') nemesis[entry.action] = (nemesis[entry.action] ?? 0) + 1;
    else if (entry.type === 'nemesis-error' && entry.outcome === 'refused')
      nemesisRefused[entry.action] = (nemesisRefused[entry.action] ?? 0) + 1;
    else if (entry.type === 'nemesis-error') {
      const back = history.some(
        (later) =>
          later.type === 'nemesis' && later.action === 'start' && later.time >= entry.time && (later.region ?? null) === entry.target,
      );
      const fatal = FAILING_NEMESIS_ACTIONS.includes(entry.action) && !(entry.action === 'start' && back);
      nemesisFailures.push({ time: entry.time, action: entry.action, target: entry.target, error: entry.error, fatal });
    }
  }

  // Every article's writes in the order they were sent (one session writes each: its author's).
  const articles = new Map<number, ArticleWrite[]>();
  /**
   * The same, for the final check, per publication: an id acknowledged for a
   * second publication starts a new list, and the one before it was lost.
   */
  const incarnations = new Map<number, ArticleWrite[]>();
  const replaced: { readonly id: number; readonly writes: readonly ArticleWrite[]; readonly by: ArticleWrite }[] = [];
  /** When each session was first told it was signed in. */
  const signedInAt = new Map<string, number>();
  for (const op of ops) {
    operations[op.kind]++;
    if (!WRITE_KINDS.includes(op.kind)) continue;
    const outcome = outcomeOf(op);
    if (op.kind === 'sign-in') {
      if (outcome === 'acknowledged') {
        acknowledgedByKind['sign-in']++;
        if (!signedInAt.has(op.session)) signedInAt.set(op.session, op.end);
      }
      continue;
    }
    if (outcome === 'acknowledged') acknowledgedByKind[op.kind as ArticleWriteKind]++;
    else if (outcome === 'refused') refused++;
    else {
      unknown++;
      const got = op.status === null ? 'no answer' : String(op.status);
      unknownByStatus[got] = (unknownByStatus[got] ?? 0) + 1;
    }
    if (typeof op.articleId !== 'number') continue; // a publication without its 303 names no article
    const state: State = op.kind === 'delete' ? { kind: 'gone' } : { kind: 'version', title: op.title ?? null };
    const write: ArticleWrite = { op, outcome, state };
    const list = articles.get(op.articleId) ?? [];
    list.push(write);
    articles.set(op.articleId, list);
    const current = incarnations.get(op.articleId) ?? [];
    if (op.kind === 'write' && outcome === 'acknowledged' && current.some((w) => w.op.kind === 'write' && w.outcome === 'acknowledged')) {
      replaced.push({ id: op.articleId, writes: current, by: write });
      incarnations.set(op.articleId, [write]);
    } else incarnations.set(op.articleId, [...current, write]);
  }
  for (const list of articles.values()) list.sort((a, b) => a.op.start - b.op.start);
  /** The session's own writes of an article (others' reads are owed nothing). */
  const ownWrites = (id: number, session: string) => (articles.get(id) ?? []).filter((w) => w.op.session === session);
  /** The articles each session wrote, for its home page reads to account for. */
  const sessionArticles = new Map<string, number[]>();
  for (const [id, writes] of articles) {
    for (const session of new Set(writes.map((w) => w.op.session)))
      sessionArticles.set(session, [...(sessionArticles.get(session) ?? []), id]);
  }

  for (const op of ops) {
    if (op.kind === 'final-read') continue;
    const took = op.end - op.start;
    const waitedForPrimary =
      op.method === 'POST' && primaryWaitMs > 0 && duringPrimaryChange.some((w) => op.start <= w.end && op.end >= w.start);
    const extras = [
      ...(waitedForPrimary ? ([['primary wait', primaryWaitMs]] as const) : []),
      ...(op.method === 'POST' && durabilityWaitMs > 0 ? ([['durability wait', durabilityWaitMs]] as const) : []),
    ];
    const limit = limitMs + extras.reduce((sum, [, ms]) => sum + ms, 0);
    const allowance = [`budget ${meta.budgetMs} + margin ${marginMs}`, ...extras.map(([what, ms]) => `${what} ${ms}`)].join(' + ');
    if (took > limit && op.kind !== 'sign-in') {
      violation('over-budget', op, `${op.method} ${op.path} via ${op.region} took ${Math.round(took)} ms (${allowance})`);
    } else if (op.waitMs !== null && op.waitMs > limit) {
      violation('over-budget', op, `${op.method} ${op.path} via ${op.region}: the app reports waiting ${op.waitMs} ms (${allowance})`);
    }

    const signedIn = signedInAt.get(op.session);
    const afterSignIn = signedIn !== undefined && signedIn <= op.start && !op.stale;
    if (WRITE_KINDS.includes(op.kind)) {
      if (afterSignIn && op.kind !== 'sign-in' && op.status === 401) {
        violation(
          'signed-out',
          op,
          `${op.method} ${op.path} via ${op.region} answered 401 (not signed in) ${Math.round(op.start - signedIn)} ms after the session was signed in`,
        );
      }
      continue;
    }

    const served = servedAs(op);
    decisions[served] = (decisions[served] ?? 0) + 1;
    readLatencies.push(took);
    if (served === 'waited' && op.waitMs !== null) waits.push(op.waitMs);
    if (afterSignIn && op.signedIn === false) {
      violation(
        'signed-out',
        op,
        `GET ${op.path} via ${op.region} (${served}) ${op.status === 200 ? 'showed the session signed out' : `sent the session to sign in (${op.status})`} ${Math.round(op.start - signedIn)} ms after it was signed in`,
      );
    }
    if (op.stale || op.status === null) continue;

    if (op.kind === 'read-home') {
      if (op.status === 200) {
        const own = (sessionArticles.get(op.session) ?? []).map((id) => ({ id, writes: ownWrites(id, op.session) }));
        checkHome(op, meta, own, served, violation);
      }
      continue;
    }
    if (typeof op.articleId !== 'number') continue;
    const observed = observedOf(op);
    if (!observed) continue;
    const expected = expectedAt(ownWrites(op.articleId, op.session), op.start);
    // Only the session's own acknowledged articles are checked; anything else is not its write.
    if (!expected || expected.allowed.some((s) => matches(observed, s))) continue;
    const kind = judge(observed, expected);
    const since = Math.round(op.start - expected.last.op.end);
    const what = expected.last.op.kind === 'write' ? 'saved' : expected.last.op.kind === 'edit' ? 'edited' : 'deleted';
    violation(
      kind,
      op,
      kind === 'not-gone'
        ? `GET ${op.path} via ${op.region} (${served}) ${describe(observed)} ${since} ms after the session was told article ${op.articleId} was deleted (only 410 Gone, or a page marked stale, may follow)`
        : kind === 'older-version'
          ? `GET ${op.path} via ${op.region} (${served}) showed the older version ${JSON.stringify((observed as { title: string | null }).title)}, ${since} ms after the session was told its edit to ${describeState(expected.last.state)} was saved`
          : observed.kind === 'missing'
            ? `GET ${op.path} via ${op.region} (${served}) answered 404 ${since} ms after the session was told article ${op.articleId} was ${what}`
            : `GET ${op.path} via ${op.region} (${served}) ${describe(observed)} instead of ${describeState(expected.last.state)}`,
    );
  }

  const unverified: UnverifiedNode[] = [];
  if (complete) {
    const nodes = meta.instances ?? meta.regions;
    const finals = new Map<string, OpRecord>();
    const finalsByNode = new Map<string, OpRecord[]>();
    for (const op of ops) {
      if (op.kind !== 'final-read' || typeof op.articleId !== 'number') continue;
      const node = op.instance ?? op.region;
      finals.set(`${node}/${op.articleId}`, op);
      const list = finalsByNode.get(node);
      if (list) list.push(op);
      else finalsByNode.set(node, [op]);
    }
    // The final reads go to each app straight, so nothing is marked stale; what shows nothing is not a verdict.
    const finalObserved = (read: OpRecord): Observed | null => observedOf({ ...read, stale: false });
    for (const node of nodes) {
      const reads = finalsByNode.get(node) ?? [];
      const unread = reads.filter((read) => finalObserved(read) === null);
      const first = unread[0];
      if (first) {
        const error = first.status === null ? (first.error ?? 'no answer') : `HTTP ${first.status}`;
        unverified.push({ node, reads: unread.length, total: reads.length, error });
      }
    }
    for (const { id, writes, by } of replaced) {
      const expected = expectedAt(writes, Infinity);
      if (!expected) continue;
      violations.push({
        kind: 'lost-write',
        session: expected.last.op.session,
        op: expected.last.op.id,
        message: `article ${id} (acknowledged: ${describeState(expected.last.state)}) was lost: its id was acknowledged again ${Math.round(by.op.end - expected.last.op.end)} ms later for another publication, ${describeState(by.state)} (${by.op.session} op ${by.op.id})`,
      });
    }
    for (const [id, writes] of incarnations) {
      const expected = expectedAt(writes, Infinity);
      if (!expected) continue;
      for (const node of nodes) {
        const read = finals.get(`${node}/${id}`);
        const observed = read ? finalObserved(read) : null;
        /*
         * No answer (the node is down), a 5xx (up, not serving) or another
         * 4xx shows nothing of the article: no proof of a loss, nor of its
         * absence. The node is unverified (above), which fails the run on its own.
         */
        if (read && !observed) continue;
        if (observed && expected.allowed.some((s) => matches(observed, s))) continue;
        const state = describeState(expected.last.state);
        violations.push({
          kind: 'lost-write',
          session: expected.last.op.session,
          op: expected.last.op.id,
          message: observed
            ? `article ${id} (acknowledged: ${state}) on ${node}: ${describe(observed)}`
            : `article ${id} (acknowledged: ${state}) was never read back on ${node}`,
        });
      }
    }
  }

  const violationsByKind = Object.fromEntries(VIOLATION_KINDS.map((k) => [k, 0])) as Record<ViolationKind, number>;
  for (const v of violations) violationsByKind[v.kind]++;
  const acknowledgedWrites = acknowledgedByKind.write + acknowledgedByKind.edit + acknowledgedByKind.delete;
  return {
    ok: complete && violations.length === 0 && unverified.length === 0 && !nemesisFailures.some((f) => f.fatal),
    complete,
    operations,
    acknowledgedWrites,
    acknowledgedByKind,
    unacknowledgedWrites: refused + unknown,
    refusedWrites: refused,
    unknownWrites: unknown,
    violations,
    violationsByKind,
    decisions,
    readLatency: distribution(readLatencies),
    waits: distribution(waits),
    nemesis,
    nemesisRefused,
    nemesisFailures,
    unverified,
    unknownByStatus,
    primaryChanges: primaryChangesOf(history),
  };
}

/** The lease holder's changes in the history, each change to a primary after none with how long there was none. */
function primaryChangesOf(history: readonly HistoryEntry[]): PrimaryChange[] {
  const changes: PrimaryChange[] = [];
  let noneSince: number | null = null;
  let killedAt: number | null = null;
  for (const entry of history) {
    if (entry.type === 'nemesis' && entry.action === 'kill') killedAt = entry.time;
    if (entry.type !== 'primary') continue;
    const { time, from, to } = entry;
    if (to === null) noneSince = time;
    changes.push({
      time,
      from,
      to,
      ...(to !== null && killedAt !== null ? { afterKillMs: time - killedAt } : {}),
      ...(to !== null && noneSince !== null ? { withoutPrimaryMs: time - noneSince } : {}),
    });
    if (to !== null) {
      noneSince = null;
      killedAt = null;
    }
  }
  return changes;
}

/**
 * The home page: each of the session's articles must be listed (unless the
 * page is full of newer ones) with a title it may show, and none it deleted.
 * One violation per kind per page, naming every article.
 */
function checkHome(
  op: OpRecord,
  meta: RunMeta,
  own: readonly { readonly id: number; readonly writes: readonly ArticleWrite[] }[],
  served: string,
  violation: (kind: ViolationKind, op: OpRecord, message: string) => void,
): void {
  const listed = op.listed ?? [];
  const titles = new Map(listed.map((id, i) => [id, op.listedTitles?.[i]]));
  const full = listed.length >= meta.homePageSize;
  const oldestListed = listed.length > 0 ? Math.min(...listed) : Infinity;
  const found: Record<'missing-own-write' | 'older-version' | 'not-gone', { id: number; expected: Expected; shown?: string }[]> = {
    'missing-own-write': [],
    'older-version': [],
    'not-gone': [],
  };
  for (const { id, writes } of own) {
    const expected = expectedAt(writes, op.start);
    if (!expected) continue;
    if (titles.has(id)) {
      const title = titles.get(id);
      // A version 1 history lists ids only: being listed is all it can tell.
      const observed: Observed = title === undefined ? { kind: 'version', title: null } : { kind: 'version', title };
      const ok = expected.allowed.some((s) => s.kind === 'version' && (title === undefined || matches(observed, s)));
      if (!ok) {
        const kind = judge(observed, expected) as keyof typeof found;
        found[kind].push({ id, expected, ...(title !== undefined ? { shown: title } : {}) });
      }
    } else {
      // Not listed: right when it may be deleted, or when a full page of newer articles pushed it off.
      const ok = expected.allowed.some((s) => s.kind === 'gone') || (full && oldestListed > id);
      if (!ok) found['missing-own-write'].push({ id, expected });
    }
  }
  const plural = (n: number) => (n > 1 ? 's' : '');
  const missing = found['missing-own-write'];
  if (missing.length > 0) {
    const latest = missing.reduce((a, b) => (a.expected.last.op.end > b.expected.last.op.end ? a : b));
    const wrong = missing.filter((m) => m.shown !== undefined);
    const absent = missing.filter((m) => m.shown === undefined);
    const parts = [
      ...(absent.length > 0 ? [`did not list article${plural(absent.length)} ${absent.map((m) => m.id).join(', ')}`] : []),
      ...wrong.map((m) => `listed article ${m.id} as ${JSON.stringify(m.shown)} instead of ${describeState(m.expected.last.state)}`),
    ];
    violation(
      'missing-own-write',
      op,
      `GET / via ${op.region} (${served}) ${parts.join('; ')}, the latest saved ${Math.round(op.start - latest.expected.last.op.end)} ms before`,
    );
  }
  const older = found['older-version'];
  if (older.length > 0) {
    violation(
      'older-version',
      op,
      `GET / via ${op.region} (${served}) listed ${older.map((m) => `article ${m.id} as ${JSON.stringify(m.shown)}, older than ${describeState(m.expected.last.state)} (edited ${Math.round(op.start - m.expected.last.op.end)} ms before)`).join('; ')}`,
    );
  }
  const notGone = found['not-gone'];
  if (notGone.length > 0) {
    violation(
      'not-gone',
      op,
      `GET / via ${op.region} (${served}) listed article${plural(notGone.length)} ${notGone.map((m) => `${m.id} (deleted ${Math.round(op.start - m.expected.last.op.end)} ms before)`).join(', ')}`,
    );
  }
}

/** The id in a path `/articles/<id>`; null for anything else. */
function articleIdOfPath(path: string | null | undefined): number | null {
  if (!path) return null;
  const match = /^\/articles\/(\d+)$/.exec(new URL(path, 'http://x').pathname);
  return match ? Number(match[1]) : null;
}

/** The id in `/?deleted=<id>`, where a delete sends the browser; null for anything else. */
function deletedIdOfPath(path: string | null | undefined): number | null {
  if (!path) return null;
  const url = new URL(path, 'http://x');
  const id = url.pathname === '/' ? url.searchParams.get('deleted') : null;
  return id !== null && /^[1-9][0-9]*$/.test(id) ? Number(id) : null;
}

/** Nearest-rank percentiles; zeros for an empty list. */
export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

/** `none`, or each change on the run's clock: `7.4 s (nobody) -> fra-2 (2.6 s after the kill, 0.3 s without a primary)`. */
export function formatPrimaryChanges(changes: readonly PrimaryChange[]): string {
  if (changes.length === 0) return 'none';
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const items = changes.map((c) => {
    const notes = [
      ...(c.afterKillMs !== undefined ? [`${s(c.afterKillMs)} after the kill`] : []),
      ...(c.withoutPrimaryMs !== undefined ? [`${s(c.withoutPrimaryMs)} without a primary`] : []),
    ];
    return `${s(c.time)} ${c.from ?? '(nobody)'} -> ${c.to ?? '(nobody)'}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
  });
  return `${changes.length}: ${items.join(', ')}`;
}

/** How many failed nemesis actions the summary spells out. */
export const MAX_LISTED_NEMESIS_FAILURES = 3;

/** `start fra-2 at 14.2 s: fra-2: litefs exited (1) before the app was healthy: ERROR: cannot open store: …` */
export function formatNemesisFailure(f: NemesisFailure): string {
  const target = f.target ?? (f.action === 'heal' ? '(every replica)' : '(the primary)');
  return `${f.action} ${target} at ${(f.time / 1000).toFixed(1)} s: ${f.error}`;
}

/** `UNVERIFIED: fra-2 answered none of 54 final reads (TypeError: fetch failed): its copy was not checked` */
export function formatUnverified(u: UnverifiedNode): string {
  return u.reads === u.total
    ? `UNVERIFIED: ${u.node} answered none of ${u.total} final reads (${u.error}): its copy was not checked`
    : `UNVERIFIED: ${u.node} answered ${u.reads} of ${u.total} final reads with nothing to check (first: ${u.error}): those articles were not checked on it`;
}

/** The summary a person reads: counts, violations by kind (the first few spelled out), decisions, waits. */
export function formatSummary(result: CheckResult, maxListed = 10): string {
  const ms = (d: Distribution) =>
    `p50 ${Math.round(d.p50)} ms, p90 ${Math.round(d.p90)} ms, p99 ${Math.round(d.p99)} ms, max ${Math.round(d.max)} ms (n=${d.count})`;
  const counts = (r: Readonly<Record<string, number>>) =>
    Object.entries(r)
      .filter(([, n]) => n > 0)
      .sort(([, a], [, b]) => b - a)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none';
  const acked = result.acknowledgedByKind;
  const lines = [
    `operations: ${counts(result.operations)}`,
    `writes: ${result.acknowledgedWrites} acknowledged (publish ${acked.write}, edit ${acked.edit}, delete ${acked.delete}), ${result.refusedWrites} refused, ${result.unknownWrites} of unknown outcome${result.unknownWrites > 0 ? ` (${counts(result.unknownByStatus)})` : ''}; sign-ins ${acked['sign-in']}`,
    `reads served: ${counts(result.decisions)}`,
    `read round trips: ${ms(result.readLatency)}`,
    `waits (reads that waited, then were served): ${ms(result.waits)}`,
    `nemesis: ${counts(result.nemesis)}${Object.keys(result.nemesisRefused).length > 0 ? ` (refused: ${counts(result.nemesisRefused)})` : ''}`,
    ...(result.nemesisFailures.length > 0 ? [`nemesis failures: ${listNemesisFailures(result.nemesisFailures)}`] : []),
    `primary changes: ${formatPrimaryChanges(result.primaryChanges)}`,
    `violations: ${result.violations.length} (${VIOLATION_KINDS.map((k) => `${k} ${result.violationsByKind[k]}`).join(', ')})`,
  ];
  for (const v of result.violations.slice(0, maxListed)) lines.push(`  ${v.kind} [${v.session} op ${v.op}] ${v.message}`);
  if (result.violations.length > maxListed) lines.push(`  … and ${result.violations.length - maxListed} more`);
  for (const u of result.unverified) lines.push(formatUnverified(u));
  if (!result.complete) lines.push('INCOMPLETE: the history has no final reads, so lost writes could not be checked');
  lines.push(result.ok ? 'RESULT: PASS' : 'RESULT: FAIL');
  return lines.join('\n');
}

function listNemesisFailures(failures: readonly NemesisFailure[]): string {
  const listed = failures.slice(0, MAX_LISTED_NEMESIS_FAILURES).map(formatNemesisFailure);
  const more = failures.length - listed.length;
  return [...listed, ...(more > 0 ? [`… and ${more} more`] : [])].join('; ');
}
