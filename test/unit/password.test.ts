import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  needsRehash,
  parseHash,
  standInHash,
  verifyPassword,
  type ScryptParams,
} from '../../src/password.js';

/** Cheap parameters, so that the tests spend no time hashing; the format is the same. */
const CHEAP: ScryptParams = { log2N: 4, r: 8, p: 1 };

describe('password hashes', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hashPassword('correct horse battery', CHEAP);
    expect(await verifyPassword('correct horse battery', hash)).toBe(true);
    expect(await verifyPassword('correct horse batterY', hash)).toBe(false);
    expect(await verifyPassword('', hash)).toBe(false);
  });

  it('salts every hash: the same password hashes differently twice', async () => {
    expect(await hashPassword('same password', CHEAP)).not.toBe(await hashPassword('same password', CHEAP));
  });

  it('records its parameters in the hash, and reads them back', async () => {
    const hash = await hashPassword('correct horse battery');
    expect(hash).toMatch(/^\$scrypt\$ln=14,r=8,p=5\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(parseHash(hash)?.params).toEqual(DEFAULT_SCRYPT_PARAMS);
    expect(parseHash(await hashPassword('x', CHEAP))?.params).toEqual(CHEAP);
  });

  it('never matches a tampered hash', async () => {
    const hash = await hashPassword('correct horse battery', CHEAP);
    const [, , params, salt, key] = hash.split('$') as [string, string, string, string, string];
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    for (const tampered of [
      `$scrypt$${params}$${salt}$${flip(key)}`, // the key
      `$scrypt$${params}$${salt}$${key.slice(0, -2)}${flip(key.slice(-2))}`, // the key's last bytes
      `$scrypt$${params}$${flip(salt)}$${key}`, // the salt
      `$scrypt$ln=5,r=8,p=1$${salt}$${key}`, // the cost
      `$argon2id$${params}$${salt}$${key}`, // the algorithm
      `$scrypt$${params}$${salt}$${key.slice(0, 10)}`, // a short key
      '',
      'correct horse battery', // a password stored in clear
    ]) {
      expect(await verifyPassword('correct horse battery', tampered), tampered).toBe(false);
    }
  });

  it('refuses, without computing, a hash that asks for too much work', async () => {
    const hash = await hashPassword('pw', CHEAP);
    const [, , , salt, key] = hash.split('$');
    for (const params of ['ln=30,r=8,p=1', 'ln=20,r=32,p=1', 'ln=14,r=8,p=99', 'ln=0,r=8,p=1']) {
      const costly = `$scrypt$${params}$${salt}$${key}`;
      expect(parseHash(costly), params).toBeNull();
      const started = performance.now();
      expect(await verifyPassword('pw', costly)).toBe(false);
      // ln=30 would need 128 GiB and minutes; refusing it is immediate.
      expect(performance.now() - started).toBeLessThan(1_000);
    }
  });

  it('asks for a rehash when the parameters were raised since', async () => {
    const old = await hashPassword('pw', CHEAP);
    expect(needsRehash(old)).toBe(true);
    expect(needsRehash(old, CHEAP)).toBe(false);
    expect(needsRehash(await hashPassword('pw', DEFAULT_SCRYPT_PARAMS))).toBe(false);
    expect(needsRehash('not a hash')).toBe(true);
  });

  it('has a stand-in hash for names no author has, which no password matches', async () => {
    const standIn = await standInHash(CHEAP);
    expect(parseHash(standIn)?.params).toEqual(CHEAP);
    expect(await standInHash(CHEAP)).toBe(standIn);
    expect(await verifyPassword('', standIn)).toBe(false);
  });
});
