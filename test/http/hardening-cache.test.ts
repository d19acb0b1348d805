/**
 * No shared cache may ever serve one reader's page to another: pages with a
 * CSRF token, a notice about the reader's write, or a cookie being set are
 * `private`; errors are `no-store`; public pages are left alone.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLiteFS, PRIMARY_ID, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';
import { openForm, sessionOf, submitForm } from '../support/forms.js';
import { until } from '../support/until.js';

let fs: FakeLiteFS | undefined;
afterEach(() => {
  fs?.close();
  fs = undefined;
});

const cacheControl = (res: { headers: Record<string, unknown> }) => res.headers['cache-control'] as string | undefined;

describe('pages for one reader are private', () => {
  it('the new-article form (its CSRF token and cookie)', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = await request(app).get('/new').set('Cookie', sessionOf(app)).expect(200);
    expect(res.text).toMatch(/name="_csrf"/);
    expect(cacheControl(res)).toBe('private');
  });

  it('a page that waited for the reader’s write, and says so', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const { app, node } = fs.app({ waitMs: 5_000, pollMs: 5 });
    const answer = request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(6n)))
      .expect(200)
      .then((res) => res);
    await until(() => node.stats().waiting === 1);
    fs.setPosition(6n);
    const res = await answer;
    expect(serverTiming(res.headers['server-timing']).desc).toBe('waited');
    expect(res.text).toMatch(/notice-waited/);
    expect(cacheControl(res)).toBe('private');
  });

  it('a page served stale, with its notice', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const { app } = fs.app({ waitMs: 50, fallback: 'stale' });
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(6n)))
      .expect(200);
    expect(res.text).toMatch(/notice-stale/);
    expect(cacheControl(res)).toBe('private');
  });

  it('a page that includes the reader’s latest change (and, having nothing to tell, no notice)', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 6n });
    const { app } = fs.app();
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(5n)))
      .expect(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('fresh');
    expect(res.text).not.toMatch(/class="notice/);
    expect(cacheControl(res)).toBe('private');
  });

  it('the redirect after publishing, which sets the reader’s token cookie', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const res = await submitForm(app, await openForm(app), { title: 'Mine', content: 'only' }).expect(303);
    expect((res.headers['set-cookie'] as unknown as string[]).some((c) => c.startsWith('ryw='))).toBe(true);
    expect(cacheControl(res)).toBe('private');
    const json = await submitForm(app, await openForm(app), { title: 'Mine too', content: 'only' })
      .set('Accept', 'application/json')
      .expect(201);
    expect(cacheControl(json)).toBe('private');
  });

  it('a public page that clears a forged token cookie', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const { app } = fs.app();
    const res = await request(app).get('/').set('Cookie', tokenCookie('s:forged')).expect(200);
    expect(res.headers['set-cookie']).toBeDefined();
    expect(cacheControl(res)).toBe('private');
  });
});

describe('errors are never stored', () => {
  it.each([
    ['a missing page', '/nowhere', 404],
    ['a missing article', '/articles/999', 404],
    ['a malformed id', '/articles/abc', 400],
  ])('%s', async (_name, path, status) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    expect(cacheControl(await request(app).get(path).expect(status))).toBe('no-store');
    expect(cacheControl(await request(app).get(path).set('Accept', 'application/json').expect(status))).toBe('no-store');
  });

  it('a refused form, shown again with its text', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = await request(app).post('/new').type('form').send({ title: 'Kept', content: 'text' }).expect(403);
    expect(res.text).toContain('value="Kept"');
    expect(cacheControl(res)).toBe('no-store');
  });

  it('a write replayed from a replica', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app();
    expect(cacheControl(await request(app).post('/new').expect(409))).toBe('no-store');
  });
});

describe('public pages are left to the routes', () => {
  it('the home page without a token (any cache may keep it, revalidated: see page-cache.ts), a static file and /healthz keep what they set', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const home = await request(app).get('/').expect(200);
    expect(home.headers['set-cookie']).toBeUndefined();
    expect(cacheControl(home)).toBe('no-cache');
    expect(cacheControl(await request(app).get('/static/app.css').expect(200))).toBe('public, max-age=3600');
    expect(cacheControl(await request(app).get('/healthz').expect(200))).toBe('no-store');
  });
});
