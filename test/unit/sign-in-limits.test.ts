import { describe, expect, it } from 'vitest';
import { SignInLimiter, type LimitDecision } from '../../src/sign-in-limits.js';

const limits = { account: { max: 3, windowMs: 60_000 }, address: { max: 5, windowMs: 60_000 } };

const kinds = (decisions: LimitDecision[]) => decisions.map((decision) => decision.kind);

describe('SignInLimiter.attempt()', () => {
  it('counts an attempt as it lets it through, before its password is checked: a burst gets max tries', () => {
    const limiter = new SignInLimiter(limits);
    // All at the same instant, none of them finished: the fourth is refused all the same.
    const burst = Array.from({ length: 6 }, (_, i) => limiter.attempt('ada', `10.0.0.${i}`, 1_000));
    expect(kinds(burst)).toEqual(['try', 'try', 'try', 'refuse', 'refuse', 'refuse']);
    expect(burst[3]).toEqual({ kind: 'refuse', by: 'account', retryAfterMs: 60_000 });
  });

  it('counts each attempt against the address as well, whatever the names', () => {
    const limiter = new SignInLimiter(limits);
    const burst = Array.from({ length: 7 }, (_, i) => limiter.attempt(`name${i}`, '10.0.0.1', 0));
    expect(kinds(burst)).toEqual(['try', 'try', 'try', 'try', 'try', 'refuse', 'refuse']);
    expect(burst[5]).toMatchObject({ kind: 'refuse', by: 'address' });
  });

  it('takes back a matched password: the account starts again, the address keeps only its failures', () => {
    const limiter = new SignInLimiter(limits);
    limiter.attempt('ada', '10.0.0.1', 0);
    limiter.attempt('ada', '10.0.0.1', 1);
    const right = limiter.attempt('ada', '10.0.0.1', 2);
    if (right.kind !== 'try') throw new Error('refused');
    limiter.succeeded(right.attempt);
    expect(limiter.accounts.retryAfterMs('ada', 3)).toBe(0);
    // Two failures left on the address, plus three more tries: its fifth failure refuses.
    for (let i = 0; i < 3; i++) expect(limiter.attempt(`name${i}`, '10.0.0.1', 3).kind).toBe('try');
    expect(limiter.attempt('bob', '10.0.0.1', 3)).toMatchObject({ kind: 'refuse', by: 'address' });
  });

  it('refuses without counting: a refused attempt does not push the window on', () => {
    const limiter = new SignInLimiter(limits);
    for (let i = 0; i < 3; i++) limiter.attempt('ada', `10.0.0.${i}`, 0);
    for (let t = 1; t < 60_000; t += 10_000) expect(limiter.attempt('ada', '10.0.0.9', t).kind).toBe('refuse');
    expect(limiter.attempt('ada', '10.0.0.9', 60_000).kind).toBe('try');
  });
});
