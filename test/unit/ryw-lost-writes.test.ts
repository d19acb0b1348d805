/**
 * Lost-write detection with RYW_DURABILITY=local: tokens carry the pos file's
 * checksum after their TXID; a node remembers its lineage's checksums since
 * the last primary change; a token whose TXID was reached with another
 * checksum names a write a failover lost (its TXID reused by the new primary).
 */
import { describe, expect, it } from 'vitest';
import { decide, evidenceOfLoss, lostInFailover, type NodeFacts, type RequestFacts, type Token } from '../../src/ryw/decide.js';
import { CHECKSUMS_REMEMBERED, LineageChecksums } from '../../src/ryw/litefs/checksums.js';
import { signToken, tokenPayload, TokenVerifier, verifyToken } from '../../src/ryw/token.js';

const NOW = 1_800_000_000_000;
const TTL = 300;
const KEYS = ['current-secret-0123456789'];
const OLD = 'c1c1c1c1c1c1c1c1'; // fra-1's database after TXID 10: the write the failover lost
const NEW = 'e2e2e2e2e2e2e2e2'; // fra-2's, after its own TXID 10

describe('tokens with a checksum', () => {
  it('carry the TXID, the checksum after it and the issue time', () => {
    const token = signToken(tokenPayload(10n, NOW, OLD), KEYS);
    expect(token).toMatch(/^s:000000000000000a\/c1c1c1c1c1c1c1c1\.1800000000000\./);
    expect(verifyToken(token, KEYS, NOW, TTL)).toEqual({ ok: true, token: { position: 10n, issuedAt: NOW, checksum: OLD } });
    expect(new TokenVerifier(KEYS).verify(token, NOW, TTL)).toEqual({ ok: true, token: { position: 10n, issuedAt: NOW, checksum: OLD } });
  });

  it('keep tokens of the older format valid (a rolling deploy), with no checksum', () => {
    const older = signToken(`${'0'.repeat(15)}a.${NOW}`, KEYS);
    expect(verifyToken(older, KEYS, NOW, TTL)).toEqual({ ok: true, token: { position: 10n, issuedAt: NOW } });
    expect(tokenPayload(10n, NOW)).toBe(`000000000000000a.${NOW}`);
  });

  it('refuse a checksum changed after signing, or one that is not 16 hex digits', () => {
    const token = signToken(tokenPayload(10n, NOW, OLD), KEYS);
    expect(verifyToken(token.replace(OLD, NEW), KEYS, NOW, TTL)).toEqual({ ok: false, reason: 'forged' });
    expect(verifyToken(signToken(`000000000000000a/c1c1.${NOW}`, KEYS), KEYS, NOW, TTL)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyToken(signToken(`000000000000000a/C1C1C1C1C1C1C1C1.${NOW}`, KEYS), KEYS, NOW, TTL)).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });
});

describe('a node’s memory of its lineage’s checksums', () => {
  const trusted = { trusted: true, fromFile: false };

  it('remembers what it saw, and forgets at a primary change (forget())', () => {
    const sums = new LineageChecksums();
    sums.observe(10n, NEW, trusted);
    expect(sums.at(10n)).toBe(NEW);
    expect(sums.at(11n)).toBeNull();
    sums.forget();
    expect(sums.at(10n)).toBeNull();
  });

  it('keeps nothing until the node is of the new primary’s lineage (it may still hold the old database)', () => {
    const sums = new LineageChecksums();
    sums.observe(10n, OLD, { trusted: false, fromFile: true });
    expect(sums.at(10n)).toBeNull();
  });

  it('forgets when its database was replaced: the same TXID with other content, or the pos file lower than before', () => {
    const sums = new LineageChecksums();
    sums.observe(9n, 'aaaaaaaaaaaaaaaa', trusted);
    sums.observe(10n, OLD, trusted);
    sums.observe(10n, NEW, trusted);
    expect(sums.at(9n)).toBeNull();
    expect(sums.at(10n)).toBe(NEW);
    sums.observe(12n, 'bbbbbbbbbbbbbbbb', trusted);
    sums.observe(11n, 'cccccccccccccccc', trusted); // a late event: still this lineage
    expect(sums.at(12n)).toBe('bbbbbbbbbbbbbbbb');
    sums.observe(5n, 'dddddddddddddddd', { trusted: true, fromFile: true }); // a restore
    expect(sums.at(12n)).toBeNull();
    expect(sums.at(5n)).toBe('dddddddddddddddd');
  });

  it('is bounded: it keeps the first TXIDs after a change, where lost writes are reused', () => {
    const sums = new LineageChecksums(3);
    for (let txid = 1n; txid <= 5n; txid++) sums.observe(txid, txid.toString(16).padStart(16, '0'), trusted);
    expect(sums.size).toBe(3);
    expect(sums.at(1n)).not.toBeNull();
    expect(sums.at(5n)).toBeNull();
  });

  it('keeps CHECKSUMS_REMEMBERED of them; a TXID past the bound is unknown, so its token is met, never called lost', () => {
    const sums = new LineageChecksums();
    const sum = (txid: bigint) => txid.toString(16).padStart(16, '0');
    const last = BigInt(CHECKSUMS_REMEMBERED) + 10n;
    for (let txid = 1n; txid <= last; txid++) sums.observe(txid, sum(txid), trusted);
    expect(sums.size).toBe(CHECKSUMS_REMEMBERED);
    expect(sums.at(BigInt(CHECKSUMS_REMEMBERED))).toBe(sum(BigInt(CHECKSUMS_REMEMBERED)));
    const facts: NodeFacts = {
      role: 'replica',
      region: 'syd',
      instance: 'syd-1',
      primary: 'fra-2',
      position: last,
      replicatedUntil: null,
      checksumAt: (txid) => sums.at(txid),
    };
    const past: Token = { position: last, issuedAt: NOW, checksum: OLD };
    expect(lostInFailover(past, facts)).toBe(false);
    expect(lostInFailover({ ...past, position: 1n }, facts)).toBe(true);
  });
});

describe('judging a token by its checksum', () => {
  const read: RequestFacts = { write: false, tokens: [], region: null, replayedFrom: null, replayedForToken: false };
  const sums = new Map<bigint, string>([[10n, NEW]]);
  const node = (overrides: Partial<NodeFacts> = {}): NodeFacts => ({
    role: 'replica',
    region: 'syd',
    instance: 'syd-1',
    primary: 'fra-2',
    position: 12n,
    replicatedUntil: null,
    checksumAt: (txid) => sums.get(txid) ?? null,
    ...overrides,
  });
  const token = (checksum?: string): Token => ({ position: 10n, issuedAt: NOW, ...(checksum ? { checksum } : {}) });

  it.each<[string, Token, NodeFacts, boolean]>([
    ['a reached TXID with another checksum: lost', token(OLD), node(), true],
    ['the same checksum: met', token(NEW), node(), false],
    ['an older-format token: never judged lost', token(), node(), false],
    ['a checksum this node does not know: met', { ...token(OLD), position: 11n }, node(), false],
    ['a node that keeps no checksums: never lost', token(OLD), node({ checksumAt: undefined }), false],
    ['a TXID not reached yet: not judged now', token(OLD), node({ position: 9n }), false],
    ['on the new primary too', token(OLD), node({ role: 'primary', primary: null }), true],
  ])('%s', (_name, carried, facts, lost) => {
    expect(lostInFailover(carried, facts)).toBe(lost);
  });

  it('drops a lost write’s token at once (no wait), keeping a valid one beside it', () => {
    expect(decide({ ...read, tokens: [token(OLD)] }, node(), 'replay')).toEqual({ kind: 'serve', timing: 'dropped' });
    expect(decide({ ...read, tokens: [token(OLD), { position: 11n, issuedAt: NOW }] }, node(), 'replay')).toEqual({
      kind: 'serve',
      timing: 'fresh',
    });
    expect(decide({ ...read, tokens: [token(NEW)] }, node(), 'replay')).toEqual({ kind: 'serve', timing: 'fresh' });
  });

  it('takes a reached token whose checksum it cannot judge as met (the gap docs/consistency.md describes)', () => {
    const unknown = node({ checksumAt: () => null });
    expect(decide({ ...read, tokens: [token(OLD)] }, unknown, 'replay')).toEqual({ kind: 'serve', timing: 'fresh' });
  });

  it.each<[string, Token, NodeFacts, boolean]>([
    ['a checksum mismatch', token(OLD), node(), true],
    [
      'an ahead token on a primary, issued before it took over',
      { ...token(OLD), position: 20n },
      node({ role: 'primary', primary: null, tookOverAt: NOW + 1 }),
      true,
    ],
    ['an ahead token on a primary not seen taking over', { ...token(OLD), position: 20n }, node({ role: 'primary', primary: null }), false],
    [
      'an ahead token on a primary, issued after it took over',
      { ...token(OLD), position: 20n },
      node({ role: 'primary', primary: null, tookOverAt: NOW - 5_000 }),
      false,
    ],
    [
      'an ahead token on a replica (two clocks, or a restore)',
      { ...token(OLD), position: 20n },
      node({ replicatedUntil: NOW + 60_000 }),
      false,
    ],
  ])('tells the reader their write was lost only on evidence: %s', (_name, carried, facts, told) => {
    expect(evidenceOfLoss(carried, facts)).toBe(told);
  });
});
