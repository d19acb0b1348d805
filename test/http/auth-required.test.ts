import cookieParser from 'cookie-parser';
import type { RequestListener } from 'node:http';
import express, { type Express } from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { requireAuthor, sessionMiddleware, withSignedInAuthor } from '../../src/http/auth.js';
import { createCsrf } from '../../src/http/csrf.js';
import { VIEWS_DIR } from '../../src/http/server.js';
import { createRenderer } from '../../src/http/views.js';
import { SqliteAuthorStore } from '../../src/sqlite/author-store.js';
import { FakeLiteFS, SECRETS, signIn } from '../support/fake-litefs.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

/**
 * The blog (for signing in) and, on the same database, a small app whose
 * routes are behind requireAuthor, as the article routes are meant to be:
 * a page to open and a form to post.
 */
async function apps(): Promise<{ blog: RequestListener; guarded: Express; cookies: string }> {
  fs = new FakeLiteFS({ role: 'standalone' });
  await fs.insertAuthor('Ada');
  const { app: blog, database } = fs.app();
  const sessions = new SqliteAuthorStore(database);
  const csrf = createCsrf(SECRETS);
  const render = withSignedInAuthor(
    createRenderer(VIEWS_DIR, () => ({ region: 'local', instance: 'test', role: 'standalone' })),
    csrf,
  );
  const guarded = express();
  guarded.use(cookieParser());
  guarded.use(sessionMiddleware({ sessions, render, csrf }));
  guarded.get('/drafts/1/edit', requireAuthor, (_req, res) => res.send(`editing as ${res.locals.author!.name}`));
  guarded.post('/drafts/1', express.urlencoded({ extended: false }), requireAuthor, (_req, res) => res.redirect(303, '/drafts/1'));
  return { blog, guarded, cookies: await signIn(blog, 'Ada') };
}

describe('requireAuthor: writing needs a signed-in author', () => {
  it('lets a signed-in author through', async () => {
    const { guarded, cookies } = await apps();
    expect((await request(guarded).get('/drafts/1/edit').set('Cookie', cookies).expect(200)).text).toBe('editing as Ada');
    await request(guarded).post('/drafts/1').set('Cookie', cookies).type('form').send({ title: 'x' }).expect(303);
  });

  it('sends a signed-out reader who opens a page to sign in, and back', async () => {
    const { guarded } = await apps();
    const res = await request(guarded).get('/drafts/1/edit?tab=2').expect(303);
    expect(res.headers.location).toBe('/signin?next=%2Fdrafts%2F1%2Fedit%3Ftab%3D2');
  });

  it('answers a signed-out form POST with 401 and the sign-in form; nothing was done', async () => {
    const { guarded } = await apps();
    const res = await request(guarded).post('/drafts/1').type('form').send({ title: 'My draft' }).expect(401);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toMatch(/You need to sign in first: nothing was saved/);
    expect(res.text).toMatch(/<form class="auth" action="\/signin" method="post"/);
    expect(res.text).toMatch(/name="next" value="\/drafts\/1"/);
  });

  it('answers a signed-out JSON client with 401 and JSON (the editor script keeps the text)', async () => {
    const { guarded } = await apps();
    const res = await request(guarded).post('/drafts/1').set('Accept', 'application/json').type('form').send({ title: 'x' }).expect(401);
    expect(res.body).toEqual({ error: 'unauthorized', message: 'Sign in first: only authors may do that.' });
  });

  it('refuses a write with a session that was signed out, at once', async () => {
    const { blog, guarded, cookies } = await apps();
    const home = await request(blog).get('/').set('Cookie', cookies).expect(200);
    const token = /<form class="signout"[^>]*>\s*<input type="hidden" name="_csrf" value="([^"]+)">/.exec(home.text)![1]!;
    await request(blog).post('/signout').set('Cookie', cookies).type('form').send({ _csrf: token }).expect(303);
    await request(guarded)
      .post('/drafts/1')
      .set('Cookie', cookies)
      .set('Accept', 'application/json')
      .type('form')
      .send({ title: 'x' })
      .expect(401);
  });
});
