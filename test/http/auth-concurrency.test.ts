/**
 * The sign-in limits hold against attempts sent all at once: each attempt
 * counts the moment it is let through, before its password is hashed, so a
 * burst cannot slip in while earlier attempts are still hashing.
 */
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SESSION_COOKIE, SIGN_IN_REFUSED } from '../../src/http/auth.js';
import type * as Password from '../../src/password.js';
import { ACCOUNT_LIMIT, ADDRESS_LIMIT } from '../../src/sign-in-limits.js';
import { cookiePair, FakeLiteFS, TEST_PASSWORD } from '../support/fake-litefs.js';

/** As long as one hash at DEFAULT_SCRYPT_PARAMS takes (about 0.2 s): the window a burst would slip through. */
const HASH_MS = 200;
/** Password checks: how many began, how many ran at once. */
const hashing = vi.hoisted(() => ({ started: 0, running: 0, most: 0 }));

vi.mock('../../src/password.js', async (importOriginal) => {
  const real = await importOriginal<typeof Password>();
  return {
    ...real,
    // The real check, made as slow as a production hash (the tests' hashes are nearly free).
    verifyPassword: async (password: string, stored: string) => {
      hashing.started++;
      hashing.running++;
      hashing.most = Math.max(hashing.most, hashing.running);
      try {
        await new Promise((resolve) => setTimeout(resolve, HASH_MS));
        return await real.verifyPassword(password, stored);
      } finally {
        hashing.running--;
      }
    },
  };
});

type App = ReturnType<FakeLiteFS['app']>['app'];
const BURST = 60;

let fs: FakeLiteFS;
beforeEach(() => Object.assign(hashing, { started: 0, running: 0, most: 0 }));
afterEach(() => fs?.close());

async function openSignIn(app: App): Promise<{ token: string; cookie: string }> {
  const res = await request(app).get('/signin').expect(200);
  return { token: /name="_csrf" value="([^"]+)"/.exec(res.text)![1]!, cookie: cookiePair(res.headers, 'csrf')! };
}

function attempt(app: App, page: { token: string; cookie: string }, name: string, password: string, address: string) {
  return request(app)
    .post('/signin')
    .set('Cookie', page.cookie)
    .set('Fly-Client-IP', address)
    .type('form')
    .send({ name, password, _csrf: page.token });
}

function expectRefusedForNow(res: request.Response, from: RegExp): void {
  expect(res.status).toBe(429);
  expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  expect(res.text).toMatch(from);
  expect(cookiePair(res.headers, SESSION_COOKIE)).toBeUndefined();
}

describe('sign-in attempts sent all at once', () => {
  it(`let at most ${ACCOUNT_LIMIT.max} wrong passwords for one name be checked; the rest get 429 without hashing`, async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app({ auth: { trustFlyClientIp: true } });
    const page = await openSignIn(app);

    // From as many addresses as attempts: only the per-name limit applies.
    const results = await Promise.all(
      Array.from({ length: BURST }, (_, i) => attempt(app, page, 'Ada', `guess number ${i}`, `198.51.100.${i}`)),
    );

    const checked = results.filter((res) => res.status === 401);
    expect(checked).toHaveLength(ACCOUNT_LIMIT.max);
    for (const res of checked) expect(res.text).toContain(SIGN_IN_REFUSED);
    for (const res of results.filter((r) => r.status !== 401)) expectRefusedForNow(res, /Too many failed sign-ins for this name/);
    expect(hashing.started).toBe(ACCOUNT_LIMIT.max);
    expect(hashing.most).toBeLessThanOrEqual(ACCOUNT_LIMIT.max);

    // The limit is reached: even the right password waits out the window.
    expectRefusedForNow(await attempt(app, page, 'Ada', TEST_PASSWORD, '203.0.113.9'), /for this name/);
    expect(hashing.started).toBe(ACCOUNT_LIMIT.max);
  });

  it(`let at most ${ADDRESS_LIMIT.max} attempts from one address be checked, whatever the names`, async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app({ auth: { trustFlyClientIp: true } });
    const page = await openSignIn(app);

    const results = await Promise.all(
      Array.from({ length: BURST }, (_, i) => attempt(app, page, `name${i}`, 'a wrong password', '2001:db8:5:6::1')),
    );

    expect(results.filter((res) => res.status === 401)).toHaveLength(ADDRESS_LIMIT.max);
    for (const res of results.filter((r) => r.status !== 401)) expectRefusedForNow(res, /Too many failed sign-ins from your network/);
    expect(hashing.started).toBe(ADDRESS_LIMIT.max);
  });

  it('do not hold the right password back, nor count it against the address once it matched', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const names = ['Ada', 'Bob', 'Cyd'];
    for (const name of names) await fs.insertAuthor(name);
    const { app } = fs.app({ auth: { trustFlyClientIp: true } });
    const page = await openSignIn(app);

    // One office: its authors sign in at once, as often as the address's whole
    // allowance (each no more often than their own: while hashing, every attempt counts).
    const perName = ADDRESS_LIMIT.max / names.length;
    expect(perName).toBeLessThanOrEqual(ACCOUNT_LIMIT.max);
    const results = await Promise.all(
      Array.from({ length: ADDRESS_LIMIT.max }, (_, i) => attempt(app, page, names[i % names.length]!, TEST_PASSWORD, '192.0.2.1')),
    );
    expect(results.map((res) => res.status)).toEqual(results.map(() => 303));

    // None of those counted: the address still has its whole allowance for typos.
    const typos = await Promise.all(
      Array.from({ length: ADDRESS_LIMIT.max }, (_, i) => attempt(app, page, `Someone ${i}`, 'a typo', '192.0.2.1')),
    );
    expect(typos.map((res) => res.status)).toEqual(typos.map(() => 401));
  });
});
