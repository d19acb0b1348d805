/**
 * The decision table across a primary change, as LiteFS makes one: fra-1,
 * the old primary, issued the tokens and crashed at CRASH; fra-2 took over
 * with what it had, and continues the TXID sequence from there. A write
 * fra-1 committed but never streamed is lost: its token is ahead of fra-2
 * until fra-2 commits that TXID again. Replicas judge tokens by `.lag` read
 * backwards (replicatedUntil: everything the primary committed before that
 * time has reached them), which LiteFS moves only after a catch-up's
 * transactions are applied (the heartbeat follows them).
 */
import { describe, expect, it } from 'vitest';
import { decide, LINEAGE_MARGIN_MS, type Decision, type NodeFacts, type RequestFacts, type Token } from '../../src/ryw/decide.js';

const CRASH = 10_000_000;
/** fra-1's last transaction that reached fra-2 before the crash. */
const REPLICATED = 20n;
const read: RequestFacts = { write: false, tokens: [], region: null, replayedFrom: null, replayedForToken: false };
const write: RequestFacts = { ...read, write: true };
/** A token fra-1 handed out `msBeforeCrash` before it crashed. */
const oldToken = (position: bigint, msBeforeCrash = 200): Token => ({ position, issuedAt: CRASH - msBeforeCrash });
const reading = (...tokens: Token[]): RequestFacts => ({ ...read, tokens });

/** fra-2 once it holds the lease, `wrote` transactions of its own later. */
const newPrimary = (wrote = 0n): NodeFacts => ({
  role: 'primary',
  region: 'fra',
  instance: 'fra-2',
  primary: null,
  position: REPLICATED + wrote,
  replicatedUntil: null,
});
/** syd-1 following fra-2 (caught up with it `secondsAfter` the crash), or cut off meanwhile. */
const replicaAfter = (secondsAfter: number, position = REPLICATED): NodeFacts => ({
  role: 'replica',
  region: 'syd',
  instance: 'syd-1',
  primary: 'fra-2',
  position,
  replicatedUntil: CRASH + secondsAfter * 1000,
});
const cutOff = (heardLastMsBeforeCrash: number): NodeFacts => ({
  role: 'replica',
  region: 'syd',
  instance: 'syd-1',
  primary: null,
  position: REPLICATED,
  replicatedUntil: CRASH - heardLastMsBeforeCrash,
});

describe('tokens of the old primary, once a new primary has taken over', () => {
  it.each<[string, RequestFacts, NodeFacts, Decision]>([
    [
      'the new primary serves a token it has reached, without waiting',
      reading(oldToken(REPLICATED)),
      newPrimary(),
      { kind: 'serve', timing: 'fresh' },
    ],
    ['… and one it has long passed', reading(oldToken(REPLICATED - 5n, 60_000)), newPrimary(3n), { kind: 'serve', timing: 'fresh' }],
    [
      'the new primary drops at once a token ahead of it (a write lost in the failover): no wait',
      reading(oldToken(REPLICATED + 1n)),
      newPrimary(),
      { kind: 'serve', timing: 'dropped' },
    ],
    [
      'a lost write’s token never costs the reader’s valid one beside it',
      reading(oldToken(REPLICATED + 1n), oldToken(REPLICATED - 1n)),
      newPrimary(),
      { kind: 'serve', timing: 'fresh' },
    ],
    [
      'a replica following the new primary serves a token it has reached',
      reading(oldToken(REPLICATED)),
      replicaAfter(3),
      { kind: 'serve', timing: 'fresh' },
    ],
    [
      'a replica following the new primary drops at once the token of a lost write (it has all the new primary has)',
      reading(oldToken(REPLICATED + 1n)),
      replicaAfter(3),
      { kind: 'serve', timing: 'dropped' },
    ],
    [
      'a replica still catching up with the new primary (up to the crash) waits for a token the new primary has',
      reading(oldToken(REPLICATED, 200)),
      replicaAfter(0, REPLICATED - 2n),
      { kind: 'wait', until: REPLICATED, onTimeout: { kind: 'replay', target: { instance: 'fra-2', state: 'ryw' } } },
    ],
    [
      'a replica cut off before the token was issued waits, and with no primary named falls back to stale (never to the dead one)',
      reading(oldToken(REPLICATED + 1n, 200)),
      cutOff(900),
      { kind: 'wait', until: REPLICATED + 1n, onTimeout: { kind: 'stale' } },
    ],
    [
      'a replica cut off long after the token was issued drops it at once (it would have had it)',
      reading(oldToken(REPLICATED + 1n, 5_000)),
      cutOff(900),
      { kind: 'serve', timing: 'dropped' },
    ],
    [
      'a new primary’s own token is waited for on a replica that has not heard of it yet',
      reading({ position: REPLICATED + 1n, issuedAt: CRASH + 3_500 }),
      replicaAfter(3),
      { kind: 'wait', until: REPLICATED + 1n, onTimeout: { kind: 'replay', target: { instance: 'fra-2', state: 'ryw' } } },
    ],
  ])('%s', (_name, request, node, expected) => {
    expect(decide(request, node, 'replay')).toEqual(expected);
  });

  it('a token issued just before the replica last heard from the old primary is not dropped (the margin)', () => {
    const token = oldToken(REPLICATED + 1n, 1_100);
    expect(decide(reading(token), cutOff(1_100 - LINEAGE_MARGIN_MS), 'replay').kind).toBe('wait');
    expect(decide(reading(token), cutOff(1_100 - LINEAGE_MARGIN_MS - 10), 'replay')).toEqual({ kind: 'serve', timing: 'dropped' });
  });
});

describe('writes while the primary changes', () => {
  it('a replica naming no primary has a write wait for one; once named, replays it there', () => {
    expect(decide(write, cutOff(0), 'replay')).toEqual({ kind: 'await-primary', onTimeout: { kind: 'reject', why: expect.any(String) } });
    expect(decide(write, replicaAfter(3), 'replay')).toEqual({ kind: 'replay', target: { instance: 'fra-2' } });
  });

  it('a replica that has become the primary serves the write itself', () => {
    expect(decide(write, newPrimary(), 'replay')).toEqual({ kind: 'serve', timing: 'none' });
  });

  it('never replays a write back to the primary it came from, even after a change', () => {
    expect(decide({ ...write, replayedFrom: 'fra-2' }, replicaAfter(3), 'replay').kind).toBe('reject');
  });
});
