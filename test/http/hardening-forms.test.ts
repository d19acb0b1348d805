/**
 * The article form under odd and hostile input: CSRF tokens that expire
 * (nothing typed is lost), writes sent from another site, and cookies in
 * cookie-parser's `j:` JSON form.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { CROSS_SITE_MESSAGE } from '../../src/http/same-site.js';
import { FakeLiteFS, PRIMARY_ID } from '../support/fake-litefs.js';
import { formOf, openForm, sessionOf, submitForm, type App, type Form } from '../support/forms.js';

let fs: FakeLiteFS | undefined;
afterEach(() => {
  fs?.close();
  fs = undefined;
});

const WINDOW_MS = 60_000;
const fields = { title: 'Typed for a long time', content: 'Every word of it\n\nmatters.' };

/** An app whose CSRF windows run on a clock the test moves. */
function appWithClock(role: 'standalone' | 'primary' | 'replica' = 'standalone') {
  // The start of a window, so that "+ n windows" lands where the test says.
  const clock = { now: Math.ceil(Date.now() / WINDOW_MS) * WINDOW_MS };
  fs = new FakeLiteFS({ role });
  const { app } = fs.app({ csrf: { windowMs: WINDOW_MS, now: () => clock.now } });
  return { app, clock };
}

function expectFormKept(res: { status: number; text: string }, status: number): void {
  expect(res.status, res.text.slice(0, 300)).toBe(status);
  expect(res.text).toContain(`value="${fields.title}"`);
  expect(res.text).toContain('>Every word of it\n\nmatters.</textarea>');
  expect(res.text).toMatch(/name="_csrf" value="[^"]+"/);
  expect(res.text).not.toMatch(/at .*\.ts:\d+/);
}

/** The form as shown again in a 403, with the fresh token's cookie. */
function formAgain(res: { text: string; headers: Record<string, unknown> }): Form {
  const cookie = (res.headers['set-cookie'] as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
  return formOf(res.text, cookie);
}

describe('CSRF tokens expire', () => {
  it('accepts a form within its window and the next, refuses it after, and keeps the text with a fresh token', async () => {
    const { app, clock } = appWithClock();
    const early = await openForm(app);
    const late = await openForm(app);
    clock.now += WINDOW_MS + WINDOW_MS / 2; // into the next window: still good
    expect((await submitForm(app, early, fields)).status).toBe(303);
    clock.now += WINDOW_MS; // two windows on: expired
    const refused = await submitForm(app, late, fields);
    expectFormKept(refused, 403);
    expect(refused.text).toMatch(/nothing was saved/);
    // Publishing again from the page shown works.
    expect((await submitForm(app, formAgain(refused), fields)).status).toBe(303);
  });

  it('gives every form rendered a full window, even when the browser brings an older, still valid cookie', async () => {
    const { app, clock } = appWithClock();
    const first = await openForm(app);
    clock.now += 2 * WINDOW_MS - 1; // the end of the window after the cookie's: its token still verifies
    const res = await request(app).get('/new').set('Cookie', first.cookie).expect(200);
    const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
    const reopened = formOf(res.text, cookie);
    clock.now += WINDOW_MS; // a window after it was rendered
    expect((await submitForm(app, reopened, fields)).status).toBe(303);
  });

  it('accepts a form rendered by a replica on the primary, a window later', async () => {
    const replica = new FakeLiteFS({ role: 'replica' });
    try {
      const clock = { now: Math.ceil(Date.now() / WINDOW_MS) * WINDOW_MS };
      const replicaApp = replica.app({ region: 'syd', instance: 'syd-1', csrf: { windowMs: WINDOW_MS, now: () => clock.now } }).app;
      fs = new FakeLiteFS({ role: 'primary' });
      const primaryApp = fs.app({ region: 'fra', instance: PRIMARY_ID, csrf: { windowMs: WINDOW_MS, now: () => clock.now } }).app;
      const form = await openForm(replicaApp);
      clock.now += WINDOW_MS;
      expect((await submitForm(primaryApp, form, fields)).status).toBe(303);
    } finally {
      replica.close();
    }
  });
});

describe('writes sent from another site', () => {
  const post = (app: App, form: Form, headers: Record<string, string>) => submitForm(app, form, fields).set(headers);

  it('refuses the article form posted from another origin, even with a valid token, and keeps the text', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const res = await post(app, form, { Origin: 'https://evil.example', Host: 'blog.example' });
    expectFormKept(res, 403);
    // Says why, not that the form expired.
    expect(res.text).toContain(CROSS_SITE_MESSAGE);
    expect((await request(app).get('/').expect(200)).text).not.toContain(fields.title);
  });

  it.each([
    ['another port', 'http://blog.example:8081', 'blog.example:8080'],
    ['a sibling subdomain', 'https://evil.blog.example', 'blog.example'],
    ['a malformed Origin', 'not a url', 'blog.example'],
  ])('refuses a write from %s', async (_name, origin, host) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    expectFormKept(await post(app, await openForm(app), { Origin: origin, Host: host }), 403);
  });

  it('refuses a form with Origin: null when Sec-Fetch-Site says cross-site', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    expectFormKept(await post(app, await openForm(app), { Origin: 'null', 'Sec-Fetch-Site': 'cross-site' }), 403);
  });

  it.each([
    ['its own origin', { Origin: 'https://blog.example', Host: 'blog.example' }],
    ['its own origin, default port spelled out', { Origin: 'https://blog.example', Host: 'blog.example:443' }],
    ['the local edge', { Origin: 'http://127.0.0.1:8081', Host: '127.0.0.1:8081' }],
    // Our pages send Referrer-Policy: no-referrer, under which a browser posts a form with Origin: null.
    ['our own page under no-referrer', { Origin: 'null', 'Sec-Fetch-Site': 'same-origin' }],
    ['a client sending neither (curl)', {}],
  ])('accepts the form from %s', async (_name, headers: Record<string, string>) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = await post(app, await openForm(app), headers);
    expect(res.status, res.text.slice(0, 300)).toBe(303);
  });

  it('keeps same-site same-site across a replay: replica replays, primary publishes', async () => {
    const replica = new FakeLiteFS({ role: 'replica' });
    try {
      const replicaApp = replica.app({ region: 'syd', instance: 'syd-1' }).app;
      fs = new FakeLiteFS({ role: 'primary' });
      const primaryApp = fs.app({ region: 'fra', instance: PRIMARY_ID }).app;
      const form = await openForm(replicaApp);
      const browser = { Origin: 'https://blog.example', Host: 'blog.example', 'Sec-Fetch-Site': 'same-origin' };
      const first = await post(replicaApp, form, browser);
      expect(first.status).toBe(409);
      expect(first.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
      // Fly's edge (and the local one) replay it with the browser's Origin and Host.
      expect((await post(primaryApp, form, browser)).status).toBe(303);
    } finally {
      replica.close();
    }
  });

  it('refuses every other write route too, with a plain 403, before it runs', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const token = 'migrate-token-0123456789abcdef';
    const { app } = fs.app({ migrateToken: token });
    const res = await request(app)
      .post('/migrate/up')
      .set({ Authorization: `Bearer ${token}`, Origin: 'https://evil.example', Host: 'blog.example' })
      .expect(403);
    expect(res.text).toContain(CROSS_SITE_MESSAGE);
    const json = await request(app).delete('/articles/1').set({ Origin: 'https://evil.example', Accept: 'application/json' }).expect(403);
    expect(json.body).toEqual({ error: 'forbidden', message: CROSS_SITE_MESSAGE });
    // The same request from the site itself runs.
    await request(app)
      .post('/migrate/up')
      .set({ Authorization: `Bearer ${token}`, Origin: 'https://blog.example', Host: 'blog.example' })
      .expect(200);
  });

  it('never refuses reads for where they came from', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    for (const method of ['get', 'head', 'options'] as const) {
      const res = await request(app)[method]('/').set({ Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' });
      expect(res.status, method).not.toBe(403);
    }
  });
});

describe('cookies in cookie-parser’s j: JSON form', () => {
  it.each(['j:{}', 'j:{"a":1}', 'j:[1,2]', 'j:123', 'j:null'])('treat csrf=%s as no CSRF cookie: the form, never a 500', async (value) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const page = await request(app)
      .get('/new')
      .set('Cookie', `csrf=${value}; ${sessionOf(app)}`);
    expect(page.status, page.text.slice(0, 300)).toBe(200);
    expect(page.text).toMatch(/name="_csrf" value="[^"]+"/);
    const res = await request(app)
      .post('/new')
      .set('Cookie', `csrf=${value}`)
      .type('form')
      .send({ ...fields, _csrf: 'anything' });
    expectFormKept(res, 403);
  });

  it('reach no route as anything but a string: a j: ryw cookie is no token', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 5n });
    const { app } = fs.app();
    const res = await request(app).get('/').set('Cookie', 'ryw=j:{"position":"ff"}').expect(200);
    expect(res.headers['server-timing']).toMatch(/ryw;desc=(none|dropped)/);
  });
});
