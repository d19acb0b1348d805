import { describe, expect, it } from 'vitest';
import { signedCookie } from 'cookie-parser';
import {
  MAX_CLOCK_SKEW_MS,
  MAX_TOKEN_LENGTH,
  signToken,
  tokenPayload,
  TokenVerifier,
  verifyToken,
  VERIFIED_TOKENS_REMEMBERED,
} from '../../src/ryw/token.js';

const NOW = 1_800_000_000_000;
const TTL = 300;
const KEYS = ['current-secret-0123456789', 'previous-secret-0123456789'];

describe('read-your-writes tokens', () => {
  it('carry the position they were signed with', () => {
    const token = signToken(tokenPayload(42n, NOW), KEYS);
    expect(verifyToken(token, KEYS, NOW, TTL)).toEqual({ ok: true, token: { position: 42n, issuedAt: NOW } });
  });

  it('are cookie-parser signed cookies, so the cookie and the header carry one value', () => {
    const payload = tokenPayload(7n, NOW);
    const token = signToken(payload, KEYS);
    expect(signedCookie(token, KEYS)).toBe(payload);
  });

  it('verify with any secret of the list, so secrets can be rotated', () => {
    const signedWithOld = signToken(tokenPayload(9n, NOW), [KEYS[1]!]);
    expect(verifyToken(signedWithOld, KEYS, NOW, TTL)).toEqual({ ok: true, token: { position: 9n, issuedAt: NOW } });
    expect(verifyToken(signedWithOld, [KEYS[0]!], NOW, TTL)).toEqual({ ok: false, reason: 'forged' });
  });

  it('are signed with the first secret only', () => {
    const token = signToken(tokenPayload(9n, NOW), KEYS);
    expect(verifyToken(token, [KEYS[0]!], NOW, TTL).ok).toBe(true);
    expect(verifyToken(token, [KEYS[1]!], NOW, TTL).ok).toBe(false);
  });

  it('expire after the TTL', () => {
    const token = signToken(tokenPayload(9n, NOW), KEYS);
    expect(verifyToken(token, KEYS, NOW + TTL * 1000 - 1, TTL).ok).toBe(true);
    expect(verifyToken(token, KEYS, NOW + TTL * 1000, TTL)).toEqual({ ok: false, reason: 'expired' });
  });

  it('issued in the future count only within a small clock skew, so none outlives the TTL', () => {
    const ahead = signToken(tokenPayload(9n, NOW + MAX_CLOCK_SKEW_MS), KEYS);
    expect(verifyToken(ahead, KEYS, NOW, TTL).ok).toBe(true);
    const farAhead = signToken(tokenPayload(9n, NOW + MAX_CLOCK_SKEW_MS + 1), KEYS);
    expect(verifyToken(farAhead, KEYS, NOW, TTL)).toEqual({ ok: false, reason: 'future' });
    // A remembered token is judged again on every use.
    const verifier = new TokenVerifier(KEYS);
    expect(verifier.verify(ahead, NOW, TTL).ok).toBe(true);
    expect(verifier.verify(ahead, NOW - 1, TTL)).toEqual({ ok: false, reason: 'future' });
  });

  it('are rejected when tampered with', () => {
    const token = signToken(tokenPayload(9n, NOW), KEYS);
    const raised = token.replace('0000000000000009', '00000000000000ff');
    expect(verifyToken(raised, KEYS, NOW, TTL)).toEqual({ ok: false, reason: 'forged' });
  });

  it('are rejected when oversized, before any signature check', () => {
    const huge = `s:${'0'.repeat(MAX_TOKEN_LENGTH)}`;
    expect(verifyToken(huge, KEYS, NOW, TTL)).toEqual({ ok: false, reason: 'oversized' });
  });

  it.each([
    ['unsigned', '0000000000000009.1800000000000'],
    ['empty', ''],
  ])('are rejected when malformed (%s)', (_name, value) => {
    expect(verifyToken(value, KEYS, NOW, TTL)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('reject a correctly signed payload of the wrong shape', () => {
    const token = signToken('42', KEYS);
    expect(verifyToken(token, KEYS, NOW, TTL)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('the hot-path verifier', () => {
  it('answers like verifyToken, and still expires a token it remembers', () => {
    const verifier = new TokenVerifier(KEYS);
    const token = signToken(tokenPayload(42n, NOW), KEYS);
    expect(verifier.verify(token, NOW, TTL)).toEqual(verifyToken(token, KEYS, NOW, TTL));
    expect(verifier.verify(token, NOW + 1, TTL)).toEqual({ ok: true, token: { position: 42n, issuedAt: NOW } });
    expect(verifier.verify(token, NOW + TTL * 1000, TTL)).toEqual({ ok: false, reason: 'expired' });
  });

  it('never remembers a forgery, and forgets the oldest past its bound', () => {
    const verifier = new TokenVerifier(KEYS);
    const forged = signToken(tokenPayload(42n, NOW), ['somebody-elses-secret-0123']);
    expect(verifier.verify(forged, NOW, TTL)).toEqual({ ok: false, reason: 'forged' });
    expect(verifier.verify(forged, NOW, TTL)).toEqual({ ok: false, reason: 'forged' });
    const first = signToken(tokenPayload(1n, NOW), KEYS);
    verifier.verify(first, NOW, TTL);
    for (let i = 2; i <= VERIFIED_TOKENS_REMEMBERED + 1; i++) verifier.verify(signToken(tokenPayload(BigInt(i), NOW), KEYS), NOW, TTL);
    expect((verifier as unknown as { verified: Map<string, string> }).verified.size).toBe(VERIFIED_TOKENS_REMEMBERED);
    expect((verifier as unknown as { verified: Map<string, string> }).verified.has(first)).toBe(false);
  });
});
