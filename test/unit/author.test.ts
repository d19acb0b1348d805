import { describe, expect, it } from 'vitest';
import { MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, nameKey, normalizeName, validateNewAuthor } from '../../src/author.js';
import { addressKey } from '../../src/http/client-address.js';
import { FailureCounter, SignInLimiter } from '../../src/sign-in-limits.js';

describe('new authors', () => {
  const password = 'correct horse battery';

  it('accepts names in any script, cleaned', () => {
    for (const name of ['Ada Lovelace', 'José Núñez', '山田 太郎', 'مريم', "O'Brien", 'dev_ops-2']) {
      expect(validateNewAuthor({ name, password }), name).toEqual({ ok: true, value: { name, password } });
    }
    expect(normalizeName('  Ada \t  Lovelace ')).toBe('Ada Lovelace');
    // e + combining acute (macOS) and é (Windows) are one name.
    expect(normalizeName('Jose\u0301')).toBe('José');
  });

  it('refuses empty, long, invisible or symbolic names', () => {
    for (const name of [
      '',
      '   ',
      'x'.repeat(MAX_NAME_LENGTH + 1),
      'Ada\u200bLovelace',
      'Ada\u0000',
      '<script>',
      '-ada',
      'ada@example.com',
      'a\u202eb',
    ]) {
      const checked = validateNewAuthor({ name, password });
      expect(checked.ok, JSON.stringify(name)).toBe(false);
      if (!checked.ok) expect(checked.errors.name).toBeTruthy();
    }
    expect(validateNewAuthor({ name: 'x'.repeat(MAX_NAME_LENGTH), password }).ok).toBe(true);
  });

  it('bounds passwords by length only, and never trims them', () => {
    const short = validateNewAuthor({ name: 'Ada', password: 'x'.repeat(MIN_PASSWORD_LENGTH - 1) });
    expect(short.ok ? null : short.errors.password).toMatch(/at least 10/);
    const long = validateNewAuthor({ name: 'Ada', password: 'x'.repeat(MAX_PASSWORD_LENGTH + 1) });
    expect(long.ok ? null : long.errors.password).toMatch(/at most 1024/);
    expect(validateNewAuthor({ name: 'Ada', password: 'x'.repeat(MAX_PASSWORD_LENGTH) }).ok).toBe(true);
    expect(validateNewAuthor({ name: 'Ada', password: '  spaced out  ' })).toEqual({
      ok: true,
      value: { name: 'Ada', password: '  spaced out  ' },
    });
    const same = validateNewAuthor({ name: 'Ada Lovelace', password: 'ada lovelace' });
    expect(same.ok ? null : same.errors.password).toMatch(/other than your name/);
  });

  it('makes names that differ only in case or width one account', () => {
    expect(nameKey('Ada')).toBe(nameKey('ada'));
    expect(nameKey('Ａｄａ')).toBe(nameKey('ada'));
    expect(nameKey('Ada Lovelace')).not.toBe(nameKey('Ada'));
  });
});

describe('sign-in limits', () => {
  const limit = { max: 3, windowMs: 60_000 };

  it('refuses after max failures in the window, and says for how long', () => {
    const counter = new FailureCounter(limit);
    counter.fail('ada', 0);
    counter.fail('ada', 10_000);
    expect(counter.retryAfterMs('ada', 10_000)).toBe(0);
    counter.fail('ada', 20_000);
    expect(counter.retryAfterMs('ada', 20_000)).toBe(40_000);
    // The window slides: the first failure leaves it at 60 s.
    expect(counter.retryAfterMs('ada', 59_999)).toBe(1);
    expect(counter.retryAfterMs('ada', 60_000)).toBe(0);
    expect(counter.retryAfterMs('bob', 20_000)).toBe(0);
  });

  it('forgets the least recently failed key past its memory bound', () => {
    const counter = new FailureCounter({ max: 1, windowMs: 60_000 }, 2);
    counter.fail('a', 0);
    counter.fail('b', 1);
    counter.fail('a', 2);
    counter.fail('c', 3);
    expect(counter.size).toBe(2);
    expect(counter.retryAfterMs('b', 4)).toBe(0);
    expect(counter.retryAfterMs('a', 4)).toBeGreaterThan(0);
  });

  it('limits per address and per account; a success clears only the account', () => {
    const limiter = new SignInLimiter({ account: limit, address: { max: 5, windowMs: 60_000 } });
    const tried = (account: string, address: string, now: number) => {
      const decision = limiter.attempt(account, address, now);
      if (decision.kind !== 'try') throw new Error(`${account} from ${address} was refused`);
      return decision.attempt;
    };
    for (let i = 0; i < 3; i++) tried('ada', '10.0.0.1', i);
    expect(limiter.check('ada', '10.0.0.2', 3)).toEqual({ kind: 'refuse', by: 'account', retryAfterMs: 60_000 - 3 });
    expect(limiter.check('bob', '10.0.0.1', 3)).toMatchObject({ kind: 'try' });
    tried('bob', '10.0.0.1', 4);
    tried('cyd', '10.0.0.1', 5);
    expect(limiter.check('dee', '10.0.0.1', 6)).toMatchObject({ kind: 'refuse', by: 'address' });
    limiter.succeeded({ account: 'ada', address: '10.0.0.2', at: 6 });
    expect(limiter.check('ada', '10.0.0.2', 6)).toMatchObject({ kind: 'try' });
  });
});

describe('client addresses, as the limits count them', () => {
  it('counts IPv6 per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
  });
});
