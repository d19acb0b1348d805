import type { ReplayTarget } from './fly-replay.js';
import { reached, type Position } from './position.js';

/**
 * The read-your-writes decision table, as a pure function: the request's facts,
 * the node's facts and the policy in; what to do out. The middleware only
 * acts on the returned value (./middleware.ts). No HTTP, no LiteFS, no clock.
 */

export const FALLBACKS = ['replay', 'stale', 'error'] as const;
/** What a replica does when a token is not met within the wait budget. */
export type Fallback = (typeof FALLBACKS)[number];

export type Role = 'standalone' | 'primary' | 'replica';

/** The `desc` of `Server-Timing: ryw;…`: what happened to this request. */
export const TIMINGS = ['none', 'issued', 'fresh', 'waited', 'stale', 'replayed', 'unavailable', 'dropped'] as const;
export type Timing = (typeof TIMINGS)[number];

/** What a verified read-your-writes token says. */
export interface Token {
  position: Position;
  /** When the primary issued it (unix ms, the primary's clock). */
  issuedAt: number;
  /**
   * The database's checksum after `position` on the primary that issued it
   * (LiteFS's pos file): names the write, where a TXID alone does not across
   * a failover. Absent in tokens of the older format.
   */
  checksum?: string;
}

/**
 * How far a token may predate what a replica has heard from the primary and
 * still be of this lineage: covers the stream's ordering of a commit against
 * the heartbeat that follows it.
 */
export const LINEAGE_MARGIN_MS = 1_000;

export interface RequestFacts {
  /** A write by method (not a safe method) or by route policy (a GET that writes). */
  write: boolean;
  /**
   * Every valid read-your-writes token the request carries (cookie, header).
   * Each is judged on its own: one of an older lineage never costs the others.
   */
  tokens: readonly Token[];
  /** `?region=R`, already validated. */
  region: string | null;
  /** The instance that replayed this request here (from `fly-replay-src`). */
  replayedFrom: string | null;
  /** True when a replica replayed this read here because it could not meet its token (`state=ryw`). */
  replayedForToken: boolean;
}

export interface NodeFacts {
  role: Role;
  region: string;
  instance: string;
  /** The primary's id as named in `.primary`; null on the primary. */
  primary: string | null;
  position: Position | null;
  /**
   * On a replica: the primary's time (unix ms) up to which this replica has
   * received everything (LiteFS's `.lag` read backwards); null when unknown,
   * e.g. before the first sync or when not asked for.
   */
  replicatedUntil: number | null;
  /**
   * The checksum this node's lineage had after a TXID, when it knows it
   * (null: unknown); absent when the node keeps none.
   */
  checksumAt?: (position: Position) => string | null;
  /** On a primary: when (unix ms) it took the lease over from a primary it followed; null when not seen. */
  tookOverAt?: number | null;
}

export type { ReplayTarget };

/** The `state` a replica puts in `fly-replay` when it replays a read it could not meet in time. */
export const RYW_REPLAY_STATE = 'ryw';

/** What to do once the wait budget has run out. */
export type TimeoutDecision = { kind: 'replay'; target: ReplayTarget } | { kind: 'stale' } | { kind: 'reject'; why: string };

/**
 * A write on a replica that names no primary (LiteFS between two primaries,
 * or reconnecting): wait a short while for one to be named (or for this node
 * to become it), then decide again on the new facts; `onTimeout` if none is.
 */
export type AwaitPrimary = { kind: 'await-primary'; onTimeout: TimeoutDecision };

export type Decision =
  | { kind: 'serve'; timing: 'none' | 'fresh' | 'replayed' | 'dropped' }
  | { kind: 'wait'; until: Position; onTimeout: TimeoutDecision }
  | AwaitPrimary
  | TimeoutDecision;

/** What a write that found no primary, even after waiting for one, is told. */
export const NO_PRIMARY_WHY = 'No primary is known right now (it may be changing), so this write cannot be sent to it.';

/** Never send a request back where it came from, or to itself: that is a replay loop. */
const replayableTo =
  (request: RequestFacts, node: NodeFacts) =>
  (instance: string | null): instance is string =>
    instance !== null && instance !== request.replayedFrom && instance !== node.instance;

/**
 * What to do with a read when this node's database is locked (on a replica,
 * LiteFS holds the lock while a transaction streams in, and a stalled link
 * can hold it for long): the primary has the data, so send readers there,
 * unless they came from it or are pinned here.
 */
export function decideWhenBusy(request: RequestFacts, node: NodeFacts): TimeoutDecision {
  const why = 'This copy of the database is busy applying changes.';
  if (request.write || node.role !== 'replica' || request.region !== null) return { kind: 'reject', why };
  return replayableTo(request, node)(node.primary) ? { kind: 'replay', target: { instance: node.primary } } : { kind: 'reject', why };
}

/**
 * Whether a valid token was issued by an older lineage of the database than
 * this node's (a restore, a primary re-created, a write lost in a failover),
 * so that waiting for it would never end.
 *
 * Across a failover (test/unit/ryw-decide-failover.test.ts): the new primary
 * continues the TXID sequence from what it had, so the old primary's tokens
 * it has reached are met at once, and only the token of a write lost in the
 * failover is ahead of it: dropped at once, on the primary and on every
 * replica that has heard from it since (LiteFS sends a replica's catch-up
 * before the heartbeat that moves `.lag`). Once the new primary commits that
 * TXID again, the token looks met: only its checksum can tell (LiteFS #159).
 */
export function ofOlderLineage(token: Token, node: NodeFacts): boolean {
  if (node.role === 'standalone' || reached(node.position, token.position)) return false;
  // A primary is never behind its own writes: a token ahead of it is of an
  // older lineage. One that cannot read its position cannot tell: keep it.
  if (node.role === 'primary') return node.position !== null;
  // This replica has everything the primary committed before replicatedUntil;
  // a token issued well before that and still ahead of it is of an older
  // lineage (the primary's database was replaced).
  return node.replicatedUntil !== null && token.issuedAt < node.replicatedUntil - LINEAGE_MARGIN_MS;
}

/**
 * Whether a token this node has reached names a write its lineage does not
 * have: at the token's TXID this lineage has another checksum. The write was
 * lost in a failover and the new primary used its TXID again (with
 * `RYW_DURABILITY=local`): the token lied, and the reader should be told.
 * Unknown checksums, and tokens of the older format, are never judged so.
 */
export function lostInFailover(token: Token, node: NodeFacts): boolean {
  if (token.checksum === undefined || node.checksumAt === undefined || !reached(node.position, token.position)) return false;
  const ours = node.checksumAt(token.position);
  return ours !== null && ours !== token.checksum;
}

/**
 * Whether dropping this token is evidence that the reader's write was lost,
 * so that they are told so. Only two things are: a checksum mismatch at a
 * reached TXID (lostInFailover), and a token ahead of a primary that it
 * issued before this node took over from the primary it followed (the
 * unstreamed tail of that primary). Any other drop of an older lineage
 * (a replica judging by `.lag` and the token's issue time: the clocks of two
 * machines; a restore; an unknown history) drops the token silently.
 */
export function evidenceOfLoss(token: Token, node: NodeFacts): boolean {
  if (lostInFailover(token, node)) return true;
  const tookOverAt = node.tookOverAt ?? null;
  if (node.role !== 'primary' || tookOverAt === null) return false;
  return token.issuedAt < tookOverAt + LINEAGE_MARGIN_MS && ofOlderLineage(token, node);
}

/** Whether a token can never be met here: of an older lineage, or naming a write lost in a failover. */
export function neverMet(token: Token, node: NodeFacts): boolean {
  return ofOlderLineage(token, node) || lostInFailover(token, node);
}

/** The token to honour: the highest of those that can still be met; null when none is left. */
export function currentToken(tokens: readonly Token[], node: NodeFacts): Token | null {
  let best: Token | null = null;
  for (const token of tokens) {
    if (!neverMet(token, node) && (best === null || token.position > best.position)) best = token;
  }
  return best;
}

export function decide(request: RequestFacts, node: NodeFacts, fallback: Fallback): Decision {
  if (request.region !== null && request.region !== node.region) {
    return { kind: 'replay', target: { region: request.region } };
  }
  // A request pinned to this region by ?region= is served here, whatever it takes.
  const pinned = request.region !== null;
  const canReplayTo = replayableTo(request, node);

  if (request.write) {
    if (node.role !== 'replica') return { kind: 'serve', timing: 'none' };
    if (node.primary === null) return { kind: 'await-primary', onTimeout: { kind: 'reject', why: NO_PRIMARY_WHY } };
    return canReplayTo(node.primary)
      ? { kind: 'replay', target: { instance: node.primary } }
      : { kind: 'reject', why: 'This write cannot reach the primary right now.' };
  }

  if (node.role === 'standalone' || request.tokens.length === 0) return { kind: 'serve', timing: 'none' };
  const token = currentToken(request.tokens, node);
  if (token === null) return { kind: 'serve', timing: 'dropped' };

  // The reader's answer comes from here, but only because a replica could not
  // meet the token in time: say so, since the replica's 409 never reaches them.
  const met: Decision = { kind: 'serve', timing: request.replayedForToken ? 'replayed' : 'fresh' };
  // A primary keeps only tokens it has reached (or cannot judge): see ofOlderLineage().
  // A replica that cannot judge a reached token's checksum (it never saw that
  // TXID since it began trusting its primary's lineage) takes it as met: see
  // docs/consistency.md, "Across a primary change", for what that leaves out.
  if (node.role === 'primary' || reached(node.position, token.position)) return met;

  let onTimeout: TimeoutDecision;
  if (pinned || fallback === 'stale') onTimeout = { kind: 'stale' };
  else if (fallback === 'error') onTimeout = { kind: 'reject', why: 'This region has not caught up with your latest change yet.' };
  else if (canReplayTo(node.primary)) onTimeout = { kind: 'replay', target: { instance: node.primary, state: RYW_REPLAY_STATE } };
  else onTimeout = { kind: 'stale' };
  return { kind: 'wait', until: token.position, onTimeout };
}
