/**
 * Editing an article: its author's (any author's, for an article from
 * before authors existed), with optimistic concurrency (the form carries
 * the revision it started from), and nothing typed is ever lost.
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLiteFS, PRIMARY_ID, serverTiming } from '../support/fake-litefs.js';
import { formOf, openEdit, openForm, saveEdit, sessionOf, submitForm, type App } from '../support/forms.js';
import { replicate } from '../support/replicate.js';

let fs: FakeLiteFS;
let other: FakeLiteFS | undefined;
afterEach(() => {
  fs?.close();
  other?.close();
  other = undefined;
});

const unescapeHtml = (s: string) =>
  s.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&amp;', '&');
const titleField = (html: string) => unescapeHtml(/<input id="title" name="title" type="text" dir="auto" value="([^"]*)"/.exec(html)![1]!);
const contentField = (html: string) => unescapeHtml(/<textarea[^>]*>([\s\S]*?)<\/textarea>/.exec(html)![1]!);

/** Publishes through the form as `session` (default: the forms' author); returns the article's id. */
async function publish(app: App, fields: { title: string; content: string }, session?: string): Promise<number> {
  const form = await openForm(app, session);
  const res = await submitForm(app, form, { ...fields, _draft: form.draft }).expect(303);
  return Number(/^\/articles\/(\d+)$/.exec(res.headers.location as string)![1]);
}

function stored(fake: FakeLiteFS, id: number): { title: string; content: string; revision: number } | undefined {
  const db = new Database(fake.dbPath, { readonly: true });
  try {
    return db.prepare('SELECT title, content, revision FROM articles WHERE id = ?').get(id) as
      { title: string; content: string; revision: number } | undefined;
  } finally {
    db.close();
  }
}

const first = { title: 'Replication, explained', content: 'LiteFS ships **pages**.' };
const edited = { title: 'Replication, explained again', content: 'LiteFS ships *pages*, then positions.' };

describe('editing an article', () => {
  it('its author opens the form (the article and its revision), saves, and sees the new version', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const page = await request(app).get(`/articles/${id}`).set('Cookie', sessionOf(app)).expect(200);
    expect(page.text).toContain(`<a href="/articles/${id}/edit">Edit</a>`);
    const form = await openEdit(app, id);
    expect(form).toMatchObject({ action: `/articles/${id}`, revision: 1 });
    const editPage = await request(app).get(`/articles/${id}/edit`).set('Cookie', sessionOf(app)).expect(200);
    expect(titleField(editPage.text)).toBe(first.title);
    expect(contentField(editPage.text)).toBe(first.content);

    const saved = await saveEdit(app, form, edited).expect(303);
    expect(saved.headers.location).toBe(`/articles/${id}`);
    const after = await request(app).get(`/articles/${id}`).expect(200);
    expect(after.text).toContain('<h1 dir="auto">Replication, explained again</h1>');
    expect(after.text).toContain('<em>pages</em>, then positions.');
    expect(after.text).not.toContain('<strong>pages</strong>');
    expect(stored(fs, id)).toEqual({ ...edited, revision: 2 });
    // The list and the search have the new version too.
    expect((await request(app).get('/').expect(200)).text).toContain('Replication, explained again');
    expect((await request(app).get('/?search=positions').expect(200)).text).toContain(`href="/articles/${id}"`);
    expect((await request(app).get('/?search=ships+strong').expect(200)).text).toMatch(/No article matches/);
  });

  it('answers a JSON client (the editor script) 200 with the article URL', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const res = await saveEdit(app, await openEdit(app, id), edited)
      .set('Accept', 'application/json')
      .expect(200);
    expect(res.body).toEqual({ id, url: `/articles/${id}` });
  });

  it('signed out: the edit page sends to sign-in and back; a save is refused 401 with the text kept; nothing changes', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const page = await request(app).get(`/articles/${id}/edit`).expect(303);
    expect(page.headers.location).toBe(`/signin?next=%2Farticles%2F${id}%2Fedit`);
    // The form of a session that has ended since (its cookie no longer names one).
    const form = await openEdit(app, id);
    const signedOut = { ...form, cookie: form.cookie.replace(/session=[^;]+/, 'session=ended-session-000000000000000000000000000') };
    const res = await saveEdit(app, signedOut, edited).expect(401);
    expect(res.text).toMatch(/You are not signed in .*nothing was saved/);
    expect(res.text).toMatch(/<a href="\/signin\?next=%2Farticles%2F\d+%2Fedit" target="_blank"/);
    expect(titleField(res.text)).toBe(edited.title);
    expect(contentField(res.text)).toBe(edited.content);
    expect(res.text).toContain('name="_revision" value="1"');
    const json = await saveEdit(app, signedOut, edited).set('Accept', 'application/json').expect(401);
    expect(json.body).toMatchObject({ error: 'unauthorized', message: expect.stringMatching(/Your text is still here/) });
    expect(stored(fs, id)).toEqual({ ...first, revision: 1 });
  });

  it("another author's session: no Edit link, the edit page and a save are refused (403), nothing changes", async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const grace = sessionOf(app, 'Grace');
    const page = await request(app).get(`/articles/${id}`).set('Cookie', grace).expect(200);
    expect(page.text).not.toContain(`/articles/${id}/edit`);
    const refused = await request(app).get(`/articles/${id}/edit`).set('Cookie', grace).expect(403);
    expect(refused.text).toMatch(/Only its author, Form Writer, can edit or delete this article/);
    // Grace's own form, pointed at someone else's article.
    const mine = await openForm(app, grace);
    const res = await submitForm(app, { ...mine, action: `/articles/${id}` }, { ...edited, _revision: '1' }).expect(403);
    expect(res.text).toMatch(/Only its author/);
    expect(stored(fs, id)).toEqual({ ...first, revision: 1 });
  });

  it('an article from before authors existed may be edited by any author', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const id = fs.insertArticle('From the old blog', 'Plain text, then.');
    const { app } = fs.app();
    const grace = sessionOf(app, 'Grace');
    const form = await openEdit(app, id, grace);
    await saveEdit(app, form, { title: 'From the old blog', content: 'Markdown, now.' }).expect(303);
    expect(stored(fs, id)).toMatchObject({ content: 'Markdown, now.', revision: 2 });
  });

  it.each([
    ['without a CSRF token', (token: string) => ({ _csrf: '', token })],
    ['with a wrong CSRF token', (token: string) => ({ _csrf: `${token.slice(0, -2)}xx`, token })],
  ])('refuses a save %s (403), keeps the typed text with a fresh token, and saving from that page works', async (_name, tamper) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const form = await openEdit(app, id);
    const res = await request(app)
      .post(`/articles/${id}`)
      .set('Cookie', form.cookie)
      .type('form')
      .send({ ...edited, _revision: '1', _csrf: tamper(form.token)._csrf })
      .expect(403);
    expect(res.text).toMatch(/This form had expired, so nothing was changed. Your text is still here/);
    expect(titleField(res.text)).toBe(edited.title);
    expect(contentField(res.text)).toBe(edited.content);
    expect(stored(fs, id)).toEqual({ ...first, revision: 1 });
    const csrf = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
    await saveEdit(app, formOf(res.text, csrf), edited).expect(303);
    expect(stored(fs, id)).toEqual({ ...edited, revision: 2 });
  });

  it('re-renders with 400 when a field needs fixing, keeping the text and the revision', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const res = await saveEdit(app, await openEdit(app, id), { title: '  ', content: 'kept <b>as typed</b>' }).expect(400);
    expect(res.text).toMatch(/give your article a title/);
    expect(contentField(res.text)).toBe('kept <b>as typed</b>');
    expect(res.text).toContain('name="_revision" value="1"');
  });

  it('answers 404 for a missing article and 400 for a malformed id', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    await request(app).get('/articles/999/edit').set('Cookie', sessionOf(app)).expect(404);
    await request(app).get('/articles/x1/edit').set('Cookie', sessionOf(app)).expect(400);
    const form = await openForm(app);
    await submitForm(app, { ...form, action: '/articles/999' }, { ...edited, _revision: '1' }).expect(404);
  });
});

describe('two edits at once', () => {
  /** Two tabs open the same revision; the first saves. */
  async function conflict() {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const theirs = await openEdit(app, id);
    const mine = await openEdit(app, id);
    await saveEdit(app, theirs, { title: 'Their title', content: 'Their **bold** words.' }).expect(303);
    return { app, id, mine };
  }

  it('refuses the second (409) with both versions on the page: theirs as saved, mine in the form; nothing lost', async () => {
    const { app, id, mine } = await conflict();
    const res = await saveEdit(app, mine, edited).expect(409);
    expect(res.text).toMatch(/Someone saved a new version of this article while you were editing it, so your changes were not saved/);
    // Theirs: rendered, and its Markdown to copy from.
    const theirs = /<section class="conflict"[\s\S]*?<\/section>/.exec(res.text)![0];
    expect(theirs).toContain('Their title');
    expect(theirs).toContain('Their <strong>bold</strong> words.');
    expect(theirs).toContain('<pre class="source" dir="auto">Their **bold** words.</pre>');
    // Mine: in the form, as typed, now against their revision.
    expect(titleField(res.text)).toBe(edited.title);
    expect(contentField(res.text)).toBe(edited.content);
    expect(res.text).toContain('name="_revision" value="2"');
    expect(stored(fs, id)).toEqual({ title: 'Their title', content: 'Their **bold** words.', revision: 2 });
  });

  it('is resolved by saving from the conflict page: mine replaces theirs, knowingly', async () => {
    const { app, id, mine } = await conflict();
    const res = await saveEdit(app, mine, edited).expect(409);
    const again = formOf(res.text, mine.cookie);
    expect(again.revision).toBe(2);
    await saveEdit(app, again, { title: edited.title, content: `${edited.content}\n\nAnd their bold words.` }).expect(303);
    expect(stored(fs, id)).toEqual({ title: edited.title, content: `${edited.content}\n\nAnd their bold words.`, revision: 3 });
  });

  it('does not call the same save sent twice a conflict (a retry after a lost answer): saved once', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const form = await openEdit(app, id);
    await saveEdit(app, form, edited).expect(303);
    await saveEdit(app, form, edited).expect(303);
    expect(stored(fs, id)).toEqual({ ...edited, revision: 2 });
  });

  it('treats a save that names no revision as a conflict: both versions, nothing saved', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const form = await openEdit(app, id);
    const res = await submitForm(app, form, edited).expect(409);
    expect(res.text).toMatch(/did not say which version of the article it started from/);
    expect(res.text).toContain('<strong>pages</strong>');
    expect(contentField(res.text)).toBe(edited.content);
    expect(stored(fs, id)).toEqual({ ...first, revision: 1 });
  });

  it('keeps the text of an edit whose article was deleted meanwhile (410), in a form that publishes it anew', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const form = await openEdit(app, id);
    const confirm = await request(app).get(`/articles/${id}/delete`).set('Cookie', sessionOf(app)).expect(200);
    const token = /name="_csrf" value="([^"]+)"/.exec(confirm.text)![1]!;
    const csrf = (confirm.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
    await request(app)
      .post(`/articles/${id}/delete`)
      .set('Cookie', `${csrf}; ${sessionOf(app)}`)
      .type('form')
      .send({ _csrf: token, _revision: '1' })
      .expect(303);

    const res = await saveEdit(app, form, edited).expect(410);
    expect(res.text).toMatch(/This article was deleted while you were editing it, so nothing was saved. Your text is still here/);
    expect(res.text).toContain('<form class="editor" action="/new"');
    expect(contentField(res.text)).toBe(edited.content);
    const republished = await submitForm(app, formOf(res.text, form.cookie), {
      ...edited,
      _draft: formOf(res.text, form.cookie).draft,
    }).expect(303);
    expect(republished.headers.location).not.toBe(`/articles/${id}`);
  });
});

describe('edit, then read on a replica', () => {
  it('never shows the old version: the replica waits for the edit, then shows it', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 10n });
    other = new FakeLiteFS({ role: 'replica', position: 10n });
    const primaryApp = fs.app({ region: 'fra', instance: PRIMARY_ID, wrapStore: fs.committing() }).app;
    const replicaApp = other.app({ region: 'syd', instance: 'syd-1', waitMs: 4_000 }).app;
    const id = await publish(primaryApp, first);
    replicate(fs, other, fs.position()!);
    sessionOf(replicaApp);

    // The author edits through the replica: it replays the save to the primary, as Fly's edge does.
    const form = await openEdit(replicaApp, id);
    const replayed = await saveEdit(replicaApp, form, edited).expect(409);
    expect(replayed.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
    const saved = await saveEdit(primaryApp, form, edited).expect(303);
    const token = saved.headers['ryw-token'] as string;
    expect(token).toBeDefined();

    // The replica has not got the edit yet: the author's read waits for it.
    const started = performance.now();
    setTimeout(() => replicate(fs, other!, fs.position()!), 300);
    const page = await request(replicaApp).get(`/articles/${id}`).set('RYW-Token', token).expect(200);
    expect(serverTiming(page.headers['server-timing']).desc).toBe('waited');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(page.text).toContain('Replication, explained again');
    expect(page.text).not.toContain('<strong>pages</strong>');
    expect(page.text).toMatch(/This page waited \d+ ms for your latest change to reach region syd/);
    // A reader without the token is not held up, and may see the old version until it arrives.
    const home = await request(replicaApp).get('/').set('RYW-Token', token).expect(200);
    expect(home.text).toContain('Replication, explained again');
  });

  it('with the replica still behind when the wait runs out, replays the read to the primary, never the old version', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 10n });
    other = new FakeLiteFS({ role: 'replica', position: 10n });
    const primaryApp = fs.app({ region: 'fra', instance: PRIMARY_ID, wrapStore: fs.committing() }).app;
    const replicaApp = other.app({ region: 'syd', instance: 'syd-1', waitMs: 100, fallback: 'replay' }).app;
    const id = await publish(primaryApp, first);
    replicate(fs, other, fs.position()!);
    const saved = await saveEdit(primaryApp, await openEdit(primaryApp, id), edited).expect(303);
    const res = await request(replicaApp)
      .get(`/articles/${id}`)
      .set('RYW-Token', saved.headers['ryw-token'] as string)
      .expect(409);
    expect(res.headers['fly-replay']).toBe(`instance=${PRIMARY_ID};state=ryw`);
    expect(res.text).not.toContain('LiteFS ships');
  });
});

describe('an edit sent from another site', () => {
  it('is refused with 403, the typed text kept, nothing saved', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, first);
    const res = await saveEdit(app, await openEdit(app, id), edited)
      .set({ Origin: 'https://evil.example', Host: 'blog.example' })
      .expect(403);
    expect(res.text).toContain('another site');
    expect(titleField(res.text)).toBe(edited.title);
    expect(contentField(res.text)).toBe(edited.content);
    expect(stored(fs, id)).toMatchObject({ ...first, revision: 1 });
  });
});
