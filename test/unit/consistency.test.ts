import { describe, expect, it } from 'vitest';
import {
  currentToken,
  decide,
  decideWhenBusy,
  LINEAGE_MARGIN_MS,
  ofOlderLineage,
  type Decision,
  type Fallback,
  type NodeFacts,
  type RequestFacts,
} from '../../src/ryw/decide.js';
import { formatFlyReplay, parseReplaySource } from '../../src/ryw/fly-replay.js';

const read: RequestFacts = { write: false, tokens: [], region: null, replayedFrom: null, replayedForToken: false };
const write: RequestFacts = { ...read, write: true };
const primary: NodeFacts = { role: 'primary', region: 'fra', instance: 'fra-1', primary: null, position: 10n, replicatedUntil: null };
const replica: NodeFacts = { role: 'replica', region: 'syd', instance: 'syd-1', primary: 'fra-1', position: 10n, replicatedUntil: null };
const standalone: NodeFacts = {
  role: 'standalone',
  region: 'local',
  instance: 'dev',
  primary: null,
  position: null,
  replicatedUntil: null,
};

/** A token issued at time 0 of this test's clock. */
const t = (position: bigint) => ({ position, issuedAt: 1_000_000 });

const toPrimaryRyw = { kind: 'replay', target: { instance: 'fra-1', state: 'ryw' } } as const;

describe('the read-your-writes decision table', () => {
  it.each<[string, RequestFacts, NodeFacts, Fallback, Decision]>([
    ['standalone serves everything', { ...read, tokens: [t(99n)] }, standalone, 'replay', { kind: 'serve', timing: 'none' }],
    ['standalone serves writes', write, standalone, 'replay', { kind: 'serve', timing: 'none' }],
    ['a primary serves writes', write, primary, 'replay', { kind: 'serve', timing: 'none' }],
    ['a replica replays writes to the primary', write, replica, 'replay', { kind: 'replay', target: { instance: 'fra-1' } }],
    [
      'a replica naming no primary has a write wait for one, then refuses it',
      write,
      { ...replica, primary: null },
      'replay',
      { kind: 'await-primary', onTimeout: { kind: 'reject', why: expect.any(String) } },
    ],
    [
      'a write never goes back where it came from',
      { ...write, replayedFrom: 'fra-1' },
      replica,
      'replay',
      { kind: 'reject', why: expect.any(String) },
    ],
    ['a read without a token is served at once', read, replica, 'replay', { kind: 'serve', timing: 'none' }],
    ['a replica serves a token it has reached', { ...read, tokens: [t(10n)] }, replica, 'replay', { kind: 'serve', timing: 'fresh' }],
    ['a primary serves a token it has reached', { ...read, tokens: [t(9n)] }, primary, 'replay', { kind: 'serve', timing: 'fresh' }],
    [
      'a primary serving a read replayed for its token says it was replayed',
      { ...read, tokens: [t(9n)], replayedFrom: 'syd-1', replayedForToken: true },
      primary,
      'replay',
      { kind: 'serve', timing: 'replayed' },
    ],
    [
      'a primary drops a token ahead of itself (older lineage)',
      { ...read, tokens: [t(11n)] },
      primary,
      'replay',
      { kind: 'serve', timing: 'dropped' },
    ],
    [
      'a primary that cannot read its position keeps tokens (it cannot tell)',
      { ...read, tokens: [t(1n)] },
      { ...primary, position: null },
      'replay',
      { kind: 'serve', timing: 'fresh' },
    ],
    [
      'a replica behind waits, then replays to the primary',
      { ...read, tokens: [t(11n)] },
      replica,
      'replay',
      { kind: 'wait', until: 11n, onTimeout: toPrimaryRyw },
    ],
    [
      'a replica with an unknown position waits',
      { ...read, tokens: [t(1n)] },
      { ...replica, position: null },
      'replay',
      { kind: 'wait', until: 1n, onTimeout: toPrimaryRyw },
    ],
    [
      'with the stale fallback it waits, then serves stale',
      { ...read, tokens: [t(11n)] },
      replica,
      'stale',
      { kind: 'wait', until: 11n, onTimeout: { kind: 'stale' } },
    ],
    [
      'with the error fallback it waits, then refuses',
      { ...read, tokens: [t(11n)] },
      replica,
      'error',
      { kind: 'wait', until: 11n, onTimeout: { kind: 'reject', why: expect.any(String) } },
    ],
    [
      'a replayed read is never replayed back (loop guard)',
      { ...read, tokens: [t(11n)], replayedFrom: 'fra-1' },
      replica,
      'replay',
      { kind: 'wait', until: 11n, onTimeout: { kind: 'stale' } },
    ],
    [
      'a read with no primary to replay to is served stale',
      { ...read, tokens: [t(11n)] },
      { ...replica, primary: null },
      'replay',
      { kind: 'wait', until: 11n, onTimeout: { kind: 'stale' } },
    ],
    [
      'a replica that heard from the primary long after the token was issued drops it (older lineage)',
      { ...read, tokens: [t(11n)] },
      { ...replica, replicatedUntil: 1_000_000 + LINEAGE_MARGIN_MS + 1 },
      'replay',
      { kind: 'serve', timing: 'dropped' },
    ],
    [
      'a replica that heard from the primary just around the token waits',
      { ...read, tokens: [t(11n)] },
      { ...replica, replicatedUntil: 1_000_000 + LINEAGE_MARGIN_MS },
      'replay',
      { kind: 'wait', until: 11n, onTimeout: toPrimaryRyw },
    ],
    [
      'a replica cut off before the token was issued waits',
      { ...read, tokens: [t(11n)] },
      { ...replica, replicatedUntil: 999_000 },
      'stale',
      { kind: 'wait', until: 11n, onTimeout: { kind: 'stale' } },
    ],
    [
      'a replica past the token serves it whatever its lag',
      { ...read, tokens: [t(10n)] },
      { ...replica, replicatedUntil: 9_000_000 },
      'replay',
      { kind: 'serve', timing: 'fresh' },
    ],
    [
      'a token of an older lineage never costs a valid one beside it (primary)',
      { ...read, tokens: [t(11n), t(9n)] },
      primary,
      'replay',
      { kind: 'serve', timing: 'fresh' },
    ],
    [
      'a token of an older lineage never costs a valid one beside it (replica)',
      { ...read, tokens: [{ position: 99n, issuedAt: 1_000 }, t(11n)] },
      { ...replica, replicatedUntil: 1_000_000 },
      'replay',
      { kind: 'wait', until: 11n, onTimeout: toPrimaryRyw },
    ],
    [
      'of two valid tokens the higher one is waited for',
      { ...read, tokens: [t(9n), t(12n)] },
      replica,
      'replay',
      { kind: 'wait', until: 12n, onTimeout: toPrimaryRyw },
    ],
    [
      'when every token is of an older lineage, all are dropped',
      { ...read, tokens: [t(11n), t(12n)] },
      primary,
      'replay',
      { kind: 'serve', timing: 'dropped' },
    ],
    [
      '?region= for another region is replayed there',
      { ...read, region: 'ewr' },
      replica,
      'replay',
      { kind: 'replay', target: { region: 'ewr' } },
    ],
    ['?region= wins over the write replay', { ...write, region: 'ewr' }, replica, 'replay', { kind: 'replay', target: { region: 'ewr' } }],
    [
      'a read pinned to its region is served stale, never replayed away',
      { ...read, tokens: [t(11n)], region: 'syd' },
      replica,
      'replay',
      { kind: 'wait', until: 11n, onTimeout: { kind: 'stale' } },
    ],
    [
      'a pinned read is stale even under the error fallback',
      { ...read, tokens: [t(11n)], region: 'syd' },
      replica,
      'error',
      { kind: 'wait', until: 11n, onTimeout: { kind: 'stale' } },
    ],
  ])('%s', (_name, request, node, fallback, expected) => {
    expect(decide(request, node, fallback)).toEqual(expected);
  });
});

describe('judging each token on its own', () => {
  it('takes the highest token of the current lineage, never one of an older lineage', () => {
    const older = { position: 99n, issuedAt: 1_000 };
    const node = { ...replica, replicatedUntil: 1_000_000 };
    expect(ofOlderLineage(older, node)).toBe(true);
    expect(ofOlderLineage(t(11n), node)).toBe(false);
    expect(currentToken([older, t(11n)], node)).toEqual(t(11n));
    expect(currentToken([t(11n), older], node)).toEqual(t(11n));
    expect(currentToken([older], node)).toBeNull();
  });

  it('a token met is never of an older lineage, whatever the lag says', () => {
    expect(ofOlderLineage({ position: 10n, issuedAt: 0 }, { ...replica, replicatedUntil: 9_000_000 })).toBe(false);
    expect(ofOlderLineage({ position: 10n, issuedAt: 0 }, primary)).toBe(false);
  });
});

describe('a locked database (decideWhenBusy)', () => {
  it.each<[string, RequestFacts, NodeFacts, string]>([
    ['a replica sends reads to the primary', read, replica, 'replay'],
    ['a replica never sends them back to the primary they came from', { ...read, replayedFrom: 'fra-1' }, replica, 'reject'],
    ['a read pinned to its region stays and fails', { ...read, region: 'syd' }, replica, 'reject'],
    ['writes are refused (they never get here on a replica anyway)', write, replica, 'reject'],
    ['the primary has nowhere to send them', read, primary, 'reject'],
    ['nor has a replica with no known primary', read, { ...replica, primary: null }, 'reject'],
  ])('%s', (_name, request, node, kind) => {
    const decision = decideWhenBusy(request, node);
    expect(decision.kind).toBe(kind);
    if (decision.kind === 'replay') expect(decision.target).toEqual({ instance: 'fra-1' });
  });
});

describe('fly-replay headers', () => {
  it('name an instance, a state or a region as Fly.io reads them', () => {
    expect(formatFlyReplay({ instance: 'fra-1' })).toBe('instance=fra-1');
    expect(formatFlyReplay({ instance: 'fra-1', state: 'ryw' })).toBe('instance=fra-1;state=ryw');
    expect(formatFlyReplay({ region: 'syd' })).toBe('region=syd');
  });

  it('parse fly-replay-src', () => {
    expect(parseReplaySource('instance=ewr-1;region=ewr;t=1700000000000000;state=ryw')).toEqual({
      instance: 'ewr-1',
      region: 'ewr',
      timeMicros: 1_700_000_000_000_000,
      state: 'ryw',
    });
    expect(parseReplaySource(undefined)).toBeNull();
    expect(parseReplaySource('region=ewr')).toBeNull(); // no instance: not a replay we can guard against
  });
});
