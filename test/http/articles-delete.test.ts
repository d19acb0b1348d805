/**
 * Deleting an article: its author's, after a confirmation page; the row
 * goes, a tombstone stays, and every page answers 410 for it from then on,
 * on every replica that has the tombstone (the author's waits for it).
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLiteFS, PRIMARY_ID, serverTiming } from '../support/fake-litefs.js';
import { openEdit, openForm, saveEdit, sessionOf, submitForm, type App } from '../support/forms.js';
import { replicate } from '../support/replicate.js';

let fs: FakeLiteFS;
let other: FakeLiteFS | undefined;
afterEach(() => {
  fs?.close();
  other?.close();
  other = undefined;
});

async function publish(app: App, fields: { title: string; content: string }, session?: string): Promise<number> {
  const form = await openForm(app, session);
  const res = await submitForm(app, form, { ...fields, _draft: form.draft }).expect(303);
  return Number(/^\/articles\/(\d+)$/.exec(res.headers.location as string)![1]);
}

/** The confirmation page's form, as `session` (default: the forms' author). */
async function openDelete(app: App, id: number, session = sessionOf(app)) {
  const page = await request(app).get(`/articles/${id}/delete`).set('Cookie', session).expect(200);
  return confirmOf(page, session);
}

function confirmOf(page: { text: string; headers: Record<string, unknown> }, session: string) {
  const csrf = (page.headers['set-cookie'] as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
  return {
    cookie: `${csrf}; ${session}`,
    token: /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!,
    revision: /name="_revision" value="(\d+)"/.exec(page.text)![1]!,
  };
}

function confirmDelete(app: App, id: number, form: { cookie: string; token: string; revision: string }) {
  return request(app)
    .post(`/articles/${id}/delete`)
    .set('Cookie', form.cookie)
    .type('form')
    .send({ _csrf: form.token, _revision: form.revision });
}

const rows = (fake: FakeLiteFS, sql: string) => {
  const db = new Database(fake.dbPath, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
};

const doomed = { title: 'Soon gone', content: 'Nothing here will survive the **deletion**.' };

describe('deleting an article', () => {
  it('asks first, then deletes it: 410 at its URL (the old one too), gone from the list, search, feed and sitemap', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const keep = await publish(app, { title: 'Still here', content: 'I stay.' });
    const id = await publish(app, doomed);
    const article = await request(app).get(`/articles/${id}`).set('Cookie', sessionOf(app)).expect(200);
    expect(article.text).toContain(`<a href="/articles/${id}/delete">Delete</a>`);

    const page = await request(app).get(`/articles/${id}/delete`).set('Cookie', sessionOf(app)).expect(200);
    expect(page.text).toContain('<h1>Delete this article?</h1>');
    expect(page.text).toContain('“<strong dir="auto">Soon gone</strong>” will be deleted for every reader');
    expect(page.text).toContain(`<a href="/articles/${id}">Cancel, keep it</a>`);
    // Opening the confirmation deletes nothing.
    await request(app).get(`/articles/${id}`).expect(200);

    const res = await confirmDelete(app, id, confirmOf(page, sessionOf(app))).expect(303);
    expect(res.headers.location).toBe(`/?deleted=${id}`);
    const home = await request(app)
      .get(res.headers.location as string)
      .expect(200);
    expect(home.text).toContain('The article was deleted.');
    expect(home.text).not.toContain('Soon gone');
    expect(home.text).toContain('Still here');

    for (const path of [`/articles/${id}`, `/articles?id=${id}`]) {
      const gone = await request(app).get(path).expect(410);
      expect(gone.text).toContain('<h1>This article was deleted</h1>');
      expect(gone.text).not.toContain('Nothing here will survive');
      expect(gone.headers['cache-control']).toBe('no-store');
    }
    expect((await request(app).get('/?search=survive').expect(200)).text).toMatch(/No article matches/);
    expect((await request(app).get('/?search=Soon').expect(200)).text).toMatch(/No article matches/);
    const feed = await request(app).get('/feed.xml').expect(200);
    expect(feed.text).not.toContain(`/articles/${id}<`);
    expect(feed.text).toContain(`/articles/${keep}<`);
    const sitemap = await request(app).get('/sitemap.xml').expect(200);
    expect(sitemap.text).not.toContain(`/articles/${id}<`);
    expect(sitemap.text).toContain(`/articles/${keep}<`);
    // The text is gone from the file; the tombstone keeps only the id and when.
    expect(rows(fs, 'SELECT id FROM articles')).toEqual([{ id: keep }]);
    expect(rows(fs, 'SELECT id FROM deleted_articles')).toEqual([{ id }]);
    // Its id is never given to another article, even though it was the last one.
    expect(await publish(app, { title: 'Next', content: 'new' })).toBe(id + 1);
    // Editing it now is refused: it is gone (410), as everywhere else.
    const edit = await request(app).get(`/articles/${id}/edit`).set('Cookie', sessionOf(app)).expect(410);
    expect(edit.text).toContain('<h1>This article was deleted</h1>');
    expect(edit.headers['cache-control']).toBe('no-store');
  });

  it('takes a second delete (a retry, another tab) as done: 303, once', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, doomed);
    const form = await openDelete(app, id);
    await confirmDelete(app, id, form).expect(303);
    await confirmDelete(app, id, form).expect(303);
    const json = await confirmDelete(app, id, form).set('Accept', 'application/json').expect(200);
    expect(json.body).toEqual({ id, deleted: true });
    expect(rows(fs, 'SELECT id FROM deleted_articles')).toEqual([{ id }]);
  });

  it('says nothing about a deletion that did not happen (?deleted= of a live article)', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, doomed);
    const home = await request(app).get(`/?deleted=${id}`).expect(200);
    expect(home.text).not.toContain('The article was deleted.');
    expect(home.text).toContain('Soon gone');
  });

  it('signed out: the confirmation sends to sign-in; a post is refused 401 with the confirmation again; nothing deleted', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, doomed);
    const page = await request(app).get(`/articles/${id}/delete`).expect(303);
    expect(page.headers.location).toBe(`/signin?next=%2Farticles%2F${id}%2Fdelete`);
    const form = await openDelete(app, id);
    const res = await confirmDelete(app, id, { ...form, cookie: form.cookie.replace(/session=[^;]+/, 'session=none') }).expect(401);
    expect(res.text).toMatch(/You are not signed in .*so nothing was deleted/);
    expect(res.text).toContain(`<a href="/signin?next=%2Farticles%2F${id}%2Fdelete" target="_blank"`);
    expect(res.text).toContain(`action="/articles/${id}/delete"`);
    await request(app).get(`/articles/${id}`).expect(200);
  });

  it('signed out, a post about an article deleted meanwhile is refused 401 with the confirmation again, not sent away', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, doomed);
    const form = await openDelete(app, id);
    await confirmDelete(app, id, form).expect(303);
    const res = await confirmDelete(app, id, { ...form, cookie: form.cookie.replace(/session=[^;]+/, 'session=none') });
    expect(res.status).toBe(401);
    expect(res.text).toMatch(/You are not signed in .*so nothing was deleted/);
    expect(res.text).toContain(`<a href="/signin?next=%2Farticles%2F${id}%2Fdelete" target="_blank"`);
    expect(res.text).toContain(`action="/articles/${id}/delete"`);
    // Signed in again, the same press is taken as done.
    await confirmDelete(app, id, confirmOf(res, sessionOf(app))).expect(303);
  });

  it("another author's session: no Delete link, the confirmation and the post are refused (403)", async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, doomed);
    const grace = sessionOf(app, 'Grace');
    expect((await request(app).get(`/articles/${id}`).set('Cookie', grace).expect(200)).text).not.toContain('/delete');
    await request(app).get(`/articles/${id}/delete`).set('Cookie', grace).expect(403);
    // Grace has a valid CSRF token of her own (from her own form), and still may not.
    const mine = await openForm(app, grace);
    const res = await confirmDelete(app, id, { cookie: mine.cookie, token: mine.token, revision: '1' }).expect(403);
    expect(res.text).toMatch(/Only its author, Form Writer, can edit or delete this article/);
    await request(app).get(`/articles/${id}`).expect(200);
  });

  it('refuses a delete without its CSRF token (403), deletes nothing, and the page shown deletes it', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, doomed);
    const form = await openDelete(app, id);
    const res = await confirmDelete(app, id, { ...form, token: '' }).expect(403);
    expect(res.text).toMatch(/This page had expired, so nothing was deleted/);
    await request(app).get(`/articles/${id}`).expect(200);
    await confirmDelete(app, id, confirmOf(res, sessionOf(app))).expect(303);
    await request(app).get(`/articles/${id}`).expect(410);
  });

  it('refuses a delete that names no revision (409): nothing deleted, the confirmation again, which deletes it', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, doomed);
    const form = await openDelete(app, id);
    for (const revision of [undefined, '', 'x']) {
      const fields = revision === undefined ? { _csrf: form.token } : { _csrf: form.token, _revision: revision };
      const res = await request(app).post(`/articles/${id}/delete`).set('Cookie', form.cookie).type('form').send(fields);
      expect(res.status, revision).toBe(409);
      expect(res.text).toMatch(/did not say which version of the article it was opened at, so nothing was deleted/);
      expect(res.text).toContain('“<strong dir="auto">Soon gone</strong>”');
      expect(res.text).toContain('name="_revision" value="1"');
    }
    await request(app).get(`/articles/${id}`).expect(200);
    expect(rows(fs, 'SELECT id FROM deleted_articles')).toEqual([]);
    const res = await request(app).post(`/articles/${id}/delete`).set('Cookie', form.cookie).type('form').send({ _csrf: form.token });
    await confirmDelete(app, id, confirmOf(res, sessionOf(app))).expect(303);
    await request(app).get(`/articles/${id}`).expect(410);
  });

  it('does not delete an article edited since the confirmation was opened (409), and asks again', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, doomed);
    const form = await openDelete(app, id);
    await saveEdit(app, await openEdit(app, id), { title: 'Soon gone?', content: 'Rewritten, worth keeping.' }).expect(303);
    const res = await confirmDelete(app, id, form).expect(409);
    expect(res.text).toMatch(/This article was changed since you opened this page, so it was not deleted/);
    expect(res.text).toContain('“<strong dir="auto">Soon gone?</strong>”');
    expect(res.text).toContain('name="_revision" value="2"');
    await request(app).get(`/articles/${id}`).expect(200);
    await confirmDelete(app, id, confirmOf(res, sessionOf(app))).expect(303);
    await request(app).get(`/articles/${id}`).expect(410);
  });
});

describe('delete, then read on a replica', () => {
  it('never shows the deleted article: the replica waits for the tombstone, then answers 410 and lists it no more', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 10n });
    other = new FakeLiteFS({ role: 'replica', position: 10n });
    const primaryApp = fs.app({ region: 'fra', instance: PRIMARY_ID, wrapStore: fs.committing() }).app;
    const replicaApp = other.app({ region: 'syd', instance: 'syd-1', waitMs: 4_000 }).app;
    const id = await publish(primaryApp, doomed);
    replicate(fs, other, fs.position()!);
    sessionOf(replicaApp);

    const form = await openDelete(replicaApp, id);
    const replayed = await confirmDelete(replicaApp, id, form).expect(409);
    expect(replayed.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
    const deleted = await confirmDelete(primaryApp, id, form).expect(303);
    const token = deleted.headers['ryw-token'] as string;
    expect(token).toBeDefined();

    setTimeout(() => replicate(fs, other!, fs.position()!), 300);
    const home = await request(replicaApp)
      .get(deleted.headers.location as string)
      .set('RYW-Token', token)
      .expect(200);
    expect(serverTiming(home.headers['server-timing']).desc).toBe('waited');
    expect(home.text).toContain('The article was deleted.');
    expect(home.text).not.toContain('Soon gone');
    const page = await request(replicaApp).get(`/articles/${id}`).set('RYW-Token', token).expect(410);
    expect(page.text).not.toContain('Nothing here will survive');
  });

  it('with the fallback "stale", shows the old page only marked stale', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 10n });
    other = new FakeLiteFS({ role: 'replica', position: 10n });
    const primaryApp = fs.app({ region: 'fra', instance: PRIMARY_ID, wrapStore: fs.committing() }).app;
    const replicaApp = other.app({ region: 'syd', instance: 'syd-1', waitMs: 100, fallback: 'stale' }).app;
    const id = await publish(primaryApp, doomed);
    replicate(fs, other, fs.position()!);
    const deleted = await confirmDelete(primaryApp, id, await openDelete(primaryApp, id)).expect(303);
    const page = await request(replicaApp)
      .get(`/articles/${id}`)
      .set('RYW-Token', deleted.headers['ryw-token'] as string)
      .expect(200);
    expect(page.text).toContain('Soon gone');
    expect(page.text).toMatch(/class="notice notice-stale" role="status">Your latest change is still on its way to this region \(syd\)/);
  });
});

describe('a delete sent from another site', () => {
  it('is refused with 403 and the confirmation again; nothing deleted', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, { title: 'Still here', content: 'Whatever another site says.' });
    const res = await confirmDelete(app, id, await openDelete(app, id))
      .set({ Origin: 'https://evil.example', Host: 'blog.example' })
      .expect(403);
    expect(res.text).toContain('Nothing was deleted');
    expect(rows(fs, 'SELECT id FROM deleted_articles')).toEqual([]);
    await request(app).get(`/articles/${id}`).expect(200);
  });
});
