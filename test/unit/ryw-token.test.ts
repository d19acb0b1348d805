import { describe, expect, it } from 'vitest';
import { signedCookie } from 'cookie-parser';
import { MAX_TOKEN_LENGTH, signToken, tokenPayload, verifyToken } from '../../src/http/ryw-token.js';

const NOW = 1_800_000_000;
const KEYS = ['current-secret-0123456789', 'previous-secret-0123456789'];

describe('read-your-writes tokens', () => {
  it('carry the position they were signed with', () => {
    const token = signToken(tokenPayload(42n, NOW + 300), KEYS);
    expect(verifyToken(token, KEYS, NOW)).toEqual({ ok: true, position: 42n });
  });

  it('are cookie-parser signed cookies, so the cookie and the header carry one value', () => {
    const payload = tokenPayload(7n, NOW + 60);
    const token = signToken(payload, KEYS);
    expect(signedCookie(token, KEYS)).toBe(payload);
  });

  it('verify with any secret of the list, so secrets can be rotated', () => {
    const signedWithOld = signToken(tokenPayload(9n, NOW + 300), [KEYS[1]!]);
    expect(verifyToken(signedWithOld, KEYS, NOW)).toEqual({ ok: true, position: 9n });
    expect(verifyToken(signedWithOld, [KEYS[0]!], NOW)).toEqual({ ok: false, reason: 'forged' });
  });

  it('are signed with the first secret only', () => {
    const token = signToken(tokenPayload(9n, NOW + 300), KEYS);
    expect(verifyToken(token, [KEYS[0]!], NOW).ok).toBe(true);
    expect(verifyToken(token, [KEYS[1]!], NOW).ok).toBe(false);
  });

  it('expire', () => {
    const token = signToken(tokenPayload(9n, NOW + 10), KEYS);
    expect(verifyToken(token, KEYS, NOW + 9).ok).toBe(true);
    expect(verifyToken(token, KEYS, NOW + 10)).toEqual({ ok: false, reason: 'expired' });
  });

  it('are rejected when tampered with', () => {
    const token = signToken(tokenPayload(9n, NOW + 300), KEYS);
    const raised = token.replace('0000000000000009', '00000000000000ff');
    expect(verifyToken(raised, KEYS, NOW)).toEqual({ ok: false, reason: 'forged' });
  });

  it('are rejected when oversized, before any signature check', () => {
    const huge = `s:${'0'.repeat(MAX_TOKEN_LENGTH)}`;
    expect(verifyToken(huge, KEYS, NOW)).toEqual({ ok: false, reason: 'oversized' });
  });

  it.each([
    ['unsigned', '0000000000000009.1900000000'],
    ['empty', ''],
  ])('are rejected when malformed (%s)', (_name, value) => {
    expect(verifyToken(value, KEYS, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('reject a correctly signed payload of the wrong shape', () => {
    const token = signToken('42', KEYS);
    expect(verifyToken(token, KEYS, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });
});
