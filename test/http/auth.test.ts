import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_COOKIE, SESSION_TTL_MS, SIGN_IN_REFUSED } from '../../src/http/auth.js';
import { ACCOUNT_LIMIT, ADDRESS_LIMIT } from '../../src/sign-in-limits.js';
import { cookiePair, FakeLiteFS, signIn, TEST_PASSWORD } from '../support/fake-litefs.js';
import { openPage, postForm } from '../support/forms.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

const authorsIn = (fake: FakeLiteFS) => {
  const db = new Database(fake.dbPath, { readonly: true });
  const rows = db.prepare('SELECT name FROM authors ORDER BY id').all() as { name: string }[];
  db.close();
  return rows.map((row) => row.name);
};

const sessionsIn = (fake: FakeLiteFS) => {
  const db = new Database(fake.dbPath, { readonly: true });
  const { n } = db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number };
  db.close();
  return n;
};

/** What the nav says: the author's name, or null when it offers "Sign in". */
function signedInAs(html: string): string | null {
  const name = /Signed in as <strong dir="auto">([^<]*)<\/strong>/.exec(html)?.[1] ?? null;
  if (name === null) expect(html).toContain('<a href="/signin">Sign in</a>');
  else expect(html).toMatch(/<form class="signout" action="\/signout" method="post">\s*<input type="hidden" name="_csrf" value="[^"]+">/);
  return name;
}

describe('/setup: the first author', () => {
  it('creates the first author on a fresh database and signs them in', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const page = await openPage(app, '/setup');
    const form = (await request(app).get('/setup')).text;
    expect(form).toMatch(/<label for="name">Name<\/label>/);
    expect(form).toMatch(/autocomplete="username"/);
    expect(form).toMatch(/<label for="password">Password<\/label>[\s\S]*type="password"[^>]*autocomplete="new-password"/);

    const res = await postForm(app, '/setup', page, { name: 'Ada Lovelace', password: TEST_PASSWORD }).expect(303);
    expect(res.headers.location).toBe('/');
    const session = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; SameSite=Lax/);
    expect(session).toMatch(new RegExp(`; Max-Age=${SESSION_TTL_MS / 1000};`));
    expect(session).not.toMatch(/Secure/);
    expect(authorsIn(fs)).toEqual(['Ada Lovelace']);

    const home = await request(app).get('/').set('Cookie', session.split(';')[0]!).expect(200);
    expect(signedInAs(home.text)).toBe('Ada Lovelace');
    // A page that names its reader is never kept by a shared cache.
    expect(home.headers['cache-control']).toBe('private');
  });

  it('is gone once an author exists: GET goes to sign-in, POST changes nothing', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const page = await openPage(app, '/setup');
    await postForm(app, '/setup', page, { name: 'Ada', password: TEST_PASSWORD }).expect(303);

    const again = await request(app).get('/setup').expect(303);
    expect(again.headers.location).toBe('/signin');
    const late = await postForm(app, '/setup', page, { name: 'Mallory', password: TEST_PASSWORD }).expect(409);
    expect(late.text).toMatch(/This blog already has an author, so nothing was changed/);
    expect(cookiePair(late.headers, SESSION_COOKIE)).toBeUndefined();
    expect(authorsIn(fs)).toEqual(['Ada']);
  });

  it('lets only the first of two concurrent setups win', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const page = await openPage(app, '/setup');
    // Both pass the "no author yet" check before either has hashed its password.
    const results = await Promise.all(
      ['Ada', 'Mallory', 'Eve'].map((name) => postForm(app, '/setup', page, { name, password: TEST_PASSWORD })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([303, 409, 409]);
    const winner = results.find((r) => r.status === 303)!;
    expect(authorsIn(fs)).toHaveLength(1);
    expect(sessionsIn(fs)).toBe(1);
    const home = await request(app).get('/').set('Cookie', cookiePair(winner.headers, SESSION_COOKIE)!).expect(200);
    expect(signedInAs(home.text)).toBe(authorsIn(fs)[0]);
    for (const loser of results.filter((r) => r.status === 409)) expect(cookiePair(loser.headers, SESSION_COOKIE)).toBeUndefined();
  });

  it('shows what to fix, keeping the name, never the password', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const page = await openPage(app, '/setup');
    const res = await postForm(app, '/setup', page, { name: 'Ada', password: 'short1' }).expect(400);
    expect(res.text).toMatch(/id="password-error">Choose a password of at least 10 characters/);
    expect(res.text).toMatch(/name="name" type="text" value="Ada"/);
    expect(res.text).not.toContain('short1');
    expect(authorsIn(fs)).toEqual([]);
  });
});

describe('signing in', () => {
  it('signs in with the right password and goes back to where the author was', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app();
    const form = await request(app).get('/signin?next=%2Farticles%2F7').expect(200);
    expect(form.text).toMatch(/type="text"[^>]*autocomplete="username"/);
    expect(form.text).toMatch(/type="password"[^>]*autocomplete="current-password"/);
    expect(form.text).toMatch(/name="next" value="\/articles\/7"/);
    const page = await openPage(app, '/signin');
    // Names compare without case.
    const res = await postForm(app, '/signin', page, { name: 'ada', password: TEST_PASSWORD, next: '/articles/7' }).expect(303);
    expect(res.headers.location).toBe('/articles/7');
    const home = await request(app).get('/').set('Cookie', cookiePair(res.headers, SESSION_COOKIE)!).expect(200);
    expect(signedInAs(home.text)).toBe('Ada');
  });

  it.each(['//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)'])(
    'never sends the author off-site after sign-in (next=%s)',
    async (next) => {
      fs = new FakeLiteFS({ role: 'standalone' });
      await fs.insertAuthor('Ada');
      const { app } = fs.app();
      const page = await openPage(app, '/signin');
      const res = await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD, next }).expect(303);
      expect(res.headers.location).toBe('/');
    },
  );

  it('refuses a wrong password and an unknown name alike: nothing tells which names exist', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app();
    const page = await openPage(app, '/signin');
    const wrong = await postForm(app, '/signin', page, { name: 'Ada', password: 'not the password' });
    const unknown = await postForm(app, '/signin', page, { name: 'Nobody', password: 'not the password' });
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect(res.text).toContain(SIGN_IN_REFUSED);
      expect(res.text).not.toContain('not the password');
      expect(cookiePair(res.headers, SESSION_COOKIE)).toBeUndefined();
    }
    const strip = (html: string, name: string) => html.replace(/name="_csrf" value="[^"]+"/, '').replace(`value="${name}"`, '');
    expect(strip(wrong.text, 'Ada')).toBe(strip(unknown.text, 'Nobody'));
    expect(sessionsIn(fs)).toBe(0);
  });

  it('rehashes at sign-in a password hashed with weaker parameters than the current ones', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada'); // ln=4
    const { app } = fs.app({ auth: { passwordParams: { log2N: 5, r: 8, p: 1 } } });
    await signIn(app, 'Ada');
    const db = new Database(fs.dbPath, { readonly: true });
    const { password_hash: hash } = db.prepare('SELECT password_hash FROM authors').get() as { password_hash: string };
    db.close();
    expect(hash).toMatch(/^\$scrypt\$ln=5,r=8,p=1\$/);
    await signIn(app, 'Ada');
  });

  it('marks the session cookie Secure behind an https proxy', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app();
    const page = await openPage(app, '/signin');
    const res = await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD })
      .set('X-Forwarded-Proto', 'https')
      .expect(303);
    expect((res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith(`${SESSION_COOKIE}=`))).toMatch(/; Secure/);
  });
});

describe('sign-in limits', () => {
  const MINUTE = 60_000;

  it(`refuses a name after ${ACCOUNT_LIMIT.max} failures, from any address, until the window has passed`, async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    let clock = Date.parse('2026-12-01T10:00:00Z');
    const { app } = fs.app({ auth: { now: () => clock, trustFlyClientIp: true } });
    const page = await openPage(app, '/signin');
    const attempt = (password: string, address: string) =>
      postForm(app, '/signin', page, { name: 'ADA', password }).set('Fly-Client-IP', address);
    for (let i = 0; i < ACCOUNT_LIMIT.max; i++) await attempt('guess number ' + i, `198.51.100.${i}`).expect(401);

    // Even the right password, from a new address, is not tried now.
    const refused = await attempt(TEST_PASSWORD, '203.0.113.9').expect(429);
    expect(refused.text).toMatch(/Too many failed sign-ins for this name\. Try again in 15 minutes\./);
    expect(refused.headers['retry-after']).toBe(String(ACCOUNT_LIMIT.windowMs / 1000));
    expect(refused.text).toMatch(/name="name" type="text" value="ADA"/);
    expect(cookiePair(refused.headers, SESSION_COOKIE)).toBeUndefined();

    clock += ACCOUNT_LIMIT.windowMs - MINUTE;
    await attempt(TEST_PASSWORD, '203.0.113.9').expect(429);
    clock += MINUTE;
    await attempt(TEST_PASSWORD, '203.0.113.9').expect(303);
  });

  it(`refuses an address after ${ADDRESS_LIMIT.max} failures, whatever the names, and only that address`, async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    let clock = Date.parse('2026-12-01T10:00:00Z');
    const { app } = fs.app({ auth: { now: () => clock, trustFlyClientIp: true } });
    const page = await openPage(app, '/signin');
    const attempt = (name: string, password: string, address: string) =>
      postForm(app, '/signin', page, { name, password }).set('Fly-Client-IP', address);
    for (let i = 0; i < ADDRESS_LIMIT.max; i++) await attempt(`name${i}`, 'a wrong password', '2001:db8:5:6::1').expect(401);

    // The same /64 is the same subscriber.
    const refused = await attempt('Ada', TEST_PASSWORD, '2001:db8:5:6:ffff::2').expect(429);
    expect(refused.text).toMatch(/Too many failed sign-ins from your network/);
    await attempt('Ada', TEST_PASSWORD, '2001:db8:5:7::1').expect(303);
    clock += ADDRESS_LIMIT.windowMs;
    await attempt('Ada', TEST_PASSWORD, '2001:db8:5:6::1').expect(303);
  });

  it('ignores Fly-Client-IP off Fly (anyone can write it): the socket address counts', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app({ auth: { trustFlyClientIp: false } });
    const page = await openPage(app, '/signin');
    for (let i = 0; i < ADDRESS_LIMIT.max; i++) {
      await postForm(app, '/signin', page, { name: `name${i}`, password: 'a wrong password' })
        .set('Fly-Client-IP', `198.51.100.${i}`)
        .expect(401);
    }
    await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD }).set('Fly-Client-IP', '203.0.113.1').expect(429);
  });
});

describe('sessions', () => {
  it('ends at sign-out: the old cookie opens nothing afterwards', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app();
    const cookies = await signIn(app, 'Ada');
    const home = await request(app).get('/').set('Cookie', cookies).expect(200);
    expect(signedInAs(home.text)).toBe('Ada');
    // The nav's own form signs out.
    const token = /<form class="signout"[^>]*>\s*<input type="hidden" name="_csrf" value="([^"]+)">/.exec(home.text)![1]!;
    const out = await request(app).post('/signout').set('Cookie', cookies).type('form').send({ _csrf: token }).expect(303);
    expect(out.headers.location).toBe('/');
    expect((out.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith(`${SESSION_COOKIE}=`))).toMatch(
      /Expires=Thu, 01 Jan 1970/,
    );
    expect(sessionsIn(fs)).toBe(0);

    // A browser (or a thief) that kept the cookie is signed out all the same.
    const after = await request(app).get('/').set('Cookie', cookies).expect(200);
    expect(signedInAs(after.text)).toBeNull();
    // The page every anonymous visitor gets (shared, revalidated: src/http/page-cache.ts), not a private one.
    expect(after.headers['cache-control']).toBe('no-cache');
  });

  it('expires SESSION_TTL_MS after sign-in', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    let clock = Date.parse('2026-12-01T10:00:00Z');
    const { app } = fs.app({ auth: { now: () => clock } });
    const cookies = await signIn(app, 'Ada');
    clock += SESSION_TTL_MS - 1;
    expect(signedInAs((await request(app).get('/').set('Cookie', cookies).expect(200)).text)).toBe('Ada');
    clock += 1;
    expect(signedInAs((await request(app).get('/').set('Cookie', cookies).expect(200)).text)).toBeNull();
  });

  it('gives a new session id at each sign-in, ending the one the browser had', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app();
    const first = await signIn(app, 'Ada');
    const page = await openPage(app, '/signin');
    const res = await request(app)
      .post('/signin')
      .set('Cookie', `${first.split(';')[0]!}; ${page.cookie}`)
      .type('form')
      .send({ name: 'Ada', password: TEST_PASSWORD, _csrf: page.token })
      .expect(303);
    expect(cookiePair(res.headers, SESSION_COOKIE)).not.toBe(first.split(';')[0]);
    expect(sessionsIn(fs)).toBe(1);
    expect(signedInAs((await request(app).get('/').set('Cookie', first).expect(200)).text)).toBeNull();
  });

  it('treats a malformed or unknown session cookie as signed out', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    for (const cookie of [`${SESSION_COOKIE}=nope`, `${SESSION_COOKIE}=${'A'.repeat(43)}`, `${SESSION_COOKIE}=j:{"id":1}`]) {
      expect(signedInAs((await request(app).get('/').set('Cookie', cookie).expect(200)).text)).toBeNull();
    }
  });
});

describe('CSRF on the sign-in, setup and sign-out forms', () => {
  it('refuses /signin without its token (403), keeping the name, never the password', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app();
    const res = await request(app).post('/signin').type('form').send({ name: 'Ada', password: TEST_PASSWORD }).expect(403);
    expect(res.text).toMatch(/This form had expired, so you were not signed in/);
    expect(res.text).toMatch(/name="name" type="text" value="Ada"/);
    expect(res.text).not.toContain(TEST_PASSWORD);
    expect(cookiePair(res.headers, SESSION_COOKIE)).toBeUndefined();
    // The page carries a fresh token that works.
    const again = /name="_csrf" value="([^"]+)"/.exec(res.text)![1]!;
    await request(app)
      .post('/signin')
      .set('Cookie', cookiePair(res.headers, 'csrf')!)
      .type('form')
      .send({ name: 'Ada', password: TEST_PASSWORD, _csrf: again })
      .expect(303);
  });

  it('refuses /signin posted from another site, keeping the name', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app();
    const page = await openPage(app, '/signin');
    const res = await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD })
      .set('Host', 'blog.example')
      .set('Origin', 'https://evil.example')
      .expect(403);
    expect(res.text).toMatch(/This request came from another site, so nothing was changed/);
    expect(res.text).toMatch(/value="Ada"/);
    expect(sessionsIn(fs)).toBe(0);
  });

  it('refuses /setup without its token (403), keeping the name, never the password', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = await request(app).post('/setup').type('form').send({ name: 'Ada', password: TEST_PASSWORD, _csrf: 'forged' }).expect(403);
    expect(res.text).toMatch(/This form had expired, so no author was created/);
    expect(res.text).toMatch(/name="name" type="text" value="Ada"/);
    expect(res.text).not.toContain(TEST_PASSWORD);
    expect(authorsIn(fs)).toEqual([]);
  });

  it('refuses /signout without its token (403): still signed in, with a fresh sign-out form', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    await fs.insertAuthor('Ada');
    const { app } = fs.app();
    const cookies = await signIn(app, 'Ada');
    const res = await request(app).post('/signout').set('Cookie', cookies).type('form').send({}).expect(403);
    expect(res.text).toMatch(/you are still signed in/);
    expect(signedInAs(res.text)).toBe('Ada');
    expect(sessionsIn(fs)).toBe(1);
  });
});
