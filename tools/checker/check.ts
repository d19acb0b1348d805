import type { HistoryEntry, OpKind, OpRecord, RunMeta } from './history.js';
import { OP_KINDS } from './history.js';

/**
 * The read-your-writes checker, as a pure function of a recorded history.
 * It knows nothing of HTTP or clusters: whatever produced the history (the
 * runner, or a test's hand-made list), the same rules judge it.
 *
 * 1. missing-own-write: a read that is answered 200 and not marked stale must
 *    show every article its session had been told was saved (a 303 received
 *    before the read was sent). An article page must show the session's title;
 *    the home page must list it, unless the page is full of newer articles.
 * 2. lost-write: after the run, every node must show every acknowledged
 *    article with the title that was sent.
 * 3. over-budget: no session request takes longer than the wait budget plus a
 *    margin (the app's own reported wait, and the client's whole round trip).
 */

export const VIOLATION_KINDS = ['missing-own-write', 'lost-write', 'over-budget'] as const;
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

export interface CheckResult {
  /** No violation, and the history holds the final reads that prove no write was lost. */
  readonly ok: boolean;
  /** Whether the history has its final phase (the lost-write check needs it). */
  readonly complete: boolean;
  readonly operations: Readonly<Record<OpKind, number>>;
  readonly acknowledgedWrites: number;
  /** Writes without a 303: failed or unknown outcome, never counted as saved. */
  readonly unacknowledgedWrites: number;
  readonly violations: readonly Violation[];
  readonly violationsByKind: Readonly<Record<ViolationKind, number>>;
  /** Session reads by how they were served: none, fresh, waited, replayed, stale, unavailable, dropped, error, … */
  readonly decisions: Readonly<Record<string, number>>;
  /** Round-trip times of session reads (ms). */
  readonly readLatency: Distribution;
  /** The app's reported waits of reads that waited and were then served (ms). */
  readonly waits: Distribution;
  readonly nemesis: Readonly<Record<string, number>>;
}

/** How a session read was served, as a reader would tell: a second hop means the edge replayed it. */
export function servedAs(op: OpRecord): string {
  if (op.status === null) return 'error';
  if (op.stale) return 'stale';
  if (op.hops.length > 1) return 'replayed';
  return op.decision ?? 'unknown';
}

export function checkHistory(history: readonly HistoryEntry[], options: CheckOptions = {}): CheckResult {
  const marginMs = options.marginMs ?? DEFAULT_MARGIN_MS;
  const meta = history.find((e): e is RunMeta => e.type === 'meta');
  if (!meta) throw new Error('history has no meta entry: not a checker history');
  const limitMs = meta.budgetMs + marginMs;
  const ops = history.filter((e): e is OpRecord => e.type === 'op');
  const complete = history.some((e) => e.type === 'phase' && e.phase === 'final-done');

  const violations: Violation[] = [];
  const operations = Object.fromEntries(OP_KINDS.map((k) => [k, 0])) as Record<OpKind, number>;
  const decisions: Record<string, number> = {};
  const nemesis: Record<string, number> = {};
  const readLatencies: number[] = [];
  const waits: number[] = [];
  for (const entry of history) if (entry.type === 'nemesis') nemesis[entry.action] = (nemesis[entry.action] ?? 0) + 1;

  // A session's acknowledged writes, in the order they were acknowledged.
  const acked = new Map<string, OpRecord[]>();
  const ackedById = new Map<number, OpRecord>();
  let unacknowledged = 0;
  for (const op of ops) {
    operations[op.kind]++;
    if (op.kind !== 'write') continue;
    if (isAcknowledged(op)) {
      const list = acked.get(op.session) ?? [];
      list.push(op);
      acked.set(op.session, list);
      ackedById.set(op.articleId, op);
    } else {
      unacknowledged++;
    }
  }

  for (const op of ops) {
    if (op.kind === 'final-read') continue;
    const took = op.end - op.start;
    if (took > limitMs) {
      violations.push({
        kind: 'over-budget',
        session: op.session,
        op: op.id,
        message: `${op.method} ${op.path} via ${op.region} took ${Math.round(took)} ms (budget ${meta.budgetMs} + margin ${marginMs})`,
      });
    } else if (op.waitMs !== null && op.waitMs > limitMs) {
      violations.push({
        kind: 'over-budget',
        session: op.session,
        op: op.id,
        message: `${op.method} ${op.path} via ${op.region}: the app reports waiting ${op.waitMs} ms (budget ${meta.budgetMs} + margin ${marginMs})`,
      });
    }
    if (op.kind === 'write') continue;

    const served = servedAs(op);
    decisions[served] = (decisions[served] ?? 0) + 1;
    readLatencies.push(took);
    if (served === 'waited' && op.waitMs !== null) waits.push(op.waitMs);
    if (op.kind === 'read-form' || op.stale || op.status === null) continue;

    const saved = (acked.get(op.session) ?? []).filter((w) => w.end <= op.start);
    if (op.kind === 'read-article') {
      const write = saved.find((w) => w.articleId === op.articleId);
      // Only the session's own acknowledged articles are checked; anything else is not its write.
      if (!write) continue;
      if (op.status === 200 && op.title === write.title) continue;
      if (op.status !== 200 && op.status !== 404) continue; // 5xx: no page shown, nothing claimed
      violations.push({
        kind: 'missing-own-write',
        session: op.session,
        op: op.id,
        message:
          op.status === 404
            ? `GET ${op.path} via ${op.region} (${served}) answered 404 ${Math.round(op.start - write.end)} ms after the session was told article ${write.articleId} was saved`
            : `GET ${op.path} via ${op.region} (${served}) showed ${JSON.stringify(op.title)} instead of ${JSON.stringify(write.title)}`,
      });
    } else if (op.kind === 'read-home' && op.status === 200) {
      const listed = op.listed ?? [];
      const listedSet = new Set(listed);
      const full = listed.length >= meta.homePageSize;
      const oldestListed = listed.length > 0 ? Math.min(...listed) : Infinity;
      const missing = saved.filter((w) => !listedSet.has(w.articleId!) && !(full && oldestListed > w.articleId!));
      if (missing.length > 0) {
        const latest = missing[missing.length - 1]!;
        violations.push({
          kind: 'missing-own-write',
          session: op.session,
          op: op.id,
          message: `GET / via ${op.region} (${served}) did not list article${missing.length > 1 ? 's' : ''} ${missing.map((w) => w.articleId).join(', ')}, the latest saved ${Math.round(op.start - latest.end)} ms before`,
        });
      }
    }
  }

  if (complete) {
    const finals = new Map<string, OpRecord>();
    for (const op of ops) if (op.kind === 'final-read' && op.articleId !== null && op.articleId !== undefined) finals.set(`${op.region}/${op.articleId}`, op);
    for (const write of ackedById.values()) {
      for (const region of meta.regions) {
        const read = finals.get(`${region}/${write.articleId}`);
        if (read && read.status === 200 && read.title === write.title) continue;
        violations.push({
          kind: 'lost-write',
          session: write.session,
          op: write.id,
          message: !read
            ? `article ${write.articleId} (acknowledged) was never read back on ${region}`
            : `article ${write.articleId} (acknowledged) on ${region}: ${read.status === 200 ? `shows ${JSON.stringify(read.title)} instead of ${JSON.stringify(write.title)}` : `answered ${read.status ?? read.error ?? 'nothing'}`}`,
        });
      }
    }
  }

  const violationsByKind = Object.fromEntries(VIOLATION_KINDS.map((k) => [k, 0])) as Record<ViolationKind, number>;
  for (const v of violations) violationsByKind[v.kind]++;
  return {
    ok: complete && violations.length === 0,
    complete,
    operations,
    acknowledgedWrites: ackedById.size,
    unacknowledgedWrites: unacknowledged,
    violations,
    violationsByKind,
    decisions,
    readLatency: distribution(readLatencies),
    waits: distribution(waits),
    nemesis,
  };
}

function isAcknowledged(op: OpRecord): op is OpRecord & { articleId: number; title: string } {
  return op.status === 303 && typeof op.articleId === 'number' && typeof op.title === 'string';
}

/** Nearest-rank percentiles; zeros for an empty list. */
export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { count: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

/** The summary a person reads: counts, violations by kind (the first few spelled out), decisions, waits. */
export function formatSummary(result: CheckResult, maxListed = 10): string {
  const ms = (d: Distribution) => `p50 ${Math.round(d.p50)} ms, p90 ${Math.round(d.p90)} ms, p99 ${Math.round(d.p99)} ms, max ${Math.round(d.max)} ms (n=${d.count})`;
  const counts = (r: Readonly<Record<string, number>>) =>
    Object.entries(r)
      .filter(([, n]) => n > 0)
      .sort(([, a], [, b]) => b - a)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none';
  const lines = [
    `operations: ${counts(result.operations)}`,
    `writes: ${result.acknowledgedWrites} acknowledged, ${result.unacknowledgedWrites} not`,
    `reads served: ${counts(result.decisions)}`,
    `read round trips: ${ms(result.readLatency)}`,
    `waits (reads that waited, then were served): ${ms(result.waits)}`,
    `nemesis: ${counts(result.nemesis)}`,
    `violations: ${result.violations.length} (${VIOLATION_KINDS.map((k) => `${k} ${result.violationsByKind[k]}`).join(', ')})`,
  ];
  for (const v of result.violations.slice(0, maxListed)) lines.push(`  ${v.kind} [${v.session} op ${v.op}] ${v.message}`);
  if (result.violations.length > maxListed) lines.push(`  … and ${result.violations.length - maxListed} more`);
  if (!result.complete) lines.push('INCOMPLETE: the history has no final reads, so lost writes could not be checked');
  lines.push(result.ok ? 'RESULT: PASS' : 'RESULT: FAIL');
  return lines.join('\n');
}
