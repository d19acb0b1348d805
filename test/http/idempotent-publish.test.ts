/**
 * Publishing is idempotent per form: the form carries a random draft id
 * (`_draft`), the article is stored with it, and a second publish of the same
 * draft (a retry after a lost response, a double click, a restored draft)
 * lands on the first article instead of making another.
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { DRAFT_ID_PATTERN } from '../../src/article.js';
import { FakeLiteFS, PRIMARY_ID } from '../support/fake-litefs.js';
import { formOf, openForm, sessionOf, submitForm, type App, type Form } from '../support/forms.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

function publish(app: App, form: Form, fields: { title: string; content: string; _draft?: string }) {
  return submitForm(app, form, { _draft: form.draft, ...fields });
}

function countArticles(fake: FakeLiteFS): number {
  const db = new Database(fake.dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM articles').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const article = { title: 'Posted from Sydney', content: 'Every word of it.\n\nTwice over, never twice stored.' };

describe('the draft id', () => {
  it('is a fresh random id in every form', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const one = await openForm(app);
    const two = await openForm(app);
    expect(one.draft).toMatch(DRAFT_ID_PATTERN);
    expect(two.draft).toMatch(DRAFT_ID_PATTERN);
    expect(one.draft).not.toBe(two.draft);
  });

  it('stays the same when the form is shown again to fix a field, and that draft publishes once', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const invalid = await publish(app, form, { title: '  ', content: article.content }).expect(400);
    const again = formOf(invalid.text, form.cookie);
    expect(again.draft).toBe(form.draft);
    const first = await publish(app, again, article).expect(303);
    const second = await publish(app, again, article).expect(303);
    expect(second.headers.location).toBe(first.headers.location);
    expect(countArticles(fs)).toBe(1);
  });
});

describe('publishing one draft twice', () => {
  it('lands on the same article and stores one', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const first = await publish(app, form, article).expect(303);
    const retry = await publish(app, form, article).expect(303);
    expect(first.headers.location).toMatch(/^\/articles\/\d+$/);
    expect(retry.headers.location).toBe(first.headers.location);
    expect(countArticles(fs)).toBe(1);
    const home = await request(app).get('/').expect(200);
    expect(home.text.split(article.title)).toHaveLength(2); // listed once
  });

  it('stores one when both presses arrive at once', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const answers = await Promise.all([1, 2, 3].map(() => publish(app, form, article)));
    expect(answers.map((a) => a.status)).toEqual([303, 303, 303]);
    expect(new Set(answers.map((a) => a.headers.location)).size).toBe(1);
    expect(countArticles(fs)).toBe(1);
  });

  it('is recognised with the title trimmed and line ends normalised, as stored', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const first = await publish(app, form, article).expect(303);
    const retry = await publish(app, form, { title: `  ${article.title} `, content: article.content.replaceAll('\n', '\r\n') }).expect(303);
    expect(retry.headers.location).toBe(first.headers.location);
    expect(countArticles(fs)).toBe(1);
  });

  it('with changed text: 409, nothing changed, the new text kept, a link to the first, and a new draft to publish it', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const first = await publish(app, form, article).expect(303);
    const edited = { title: article.title, content: `${article.content}\n\nA paragraph added after going back.` };
    const conflict = await publish(app, form, edited);
    expect(conflict.status, conflict.text.slice(0, 300)).toBe(409);
    expect(conflict.headers['fly-replay']).toBeUndefined(); // a conflict, not a replay
    expect(conflict.text).toMatch(/already published this draft/);
    expect(conflict.text).toContain(`href="${first.headers.location}"`);
    expect(conflict.text).toContain('A paragraph added after going back.</textarea>');
    const next = formOf(conflict.text, form.cookie);
    expect(next.draft).not.toBe(form.draft);
    expect(countArticles(fs)).toBe(1);
    expect((await request(app).get(first.headers.location!).expect(200)).text).not.toContain('A paragraph added');

    const second = await publish(app, next, edited).expect(303);
    expect(second.headers.location).not.toBe(first.headers.location);
    expect(countArticles(fs)).toBe(2);
  });
});

describe('without a usable draft id', () => {
  it.each([
    ['none', undefined],
    ['a malformed one', 'not a draft id!'],
    ['a too short one', 'abc'],
  ])('with %s every publish stores an article (nothing to recognise it by), and none is refused', async (_name, draft) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const fields = { ...article, _draft: draft ?? '' };
    const send = () => submitForm(app, form, draft === undefined ? article : fields);
    const one = await send().expect(303);
    const two = await send().expect(303);
    expect(one.headers.location).not.toBe(two.headers.location);
    expect(countArticles(fs)).toBe(2);
  });
});

describe('a form rendered by a replica and replayed to the primary', () => {
  it('publishes once however often it is replayed', async () => {
    const replicaDir = new FakeLiteFS({ role: 'replica' });
    fs = new FakeLiteFS({ role: 'primary' });
    try {
      const replica = replicaDir.app({ region: 'syd', instance: 'syd-1' }).app;
      const primary = fs.app({ region: 'fra', instance: PRIMARY_ID }).app;
      const form = await openForm(replica);
      const replayed = await publish(replica, form, article).expect(409);
      expect(replayed.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
      const first = await publish(primary, form, article).expect(303);
      const again = await publish(primary, form, article).expect(303);
      expect(again.headers.location).toBe(first.headers.location);
      expect(countArticles(fs)).toBe(1);
    } finally {
      replicaDir.close();
    }
  });
});

describe('the form script asks for JSON', () => {
  it('gets 201 with the article URL (in Location too), and the token on the primary', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const form = await openForm(app);
    const res = await publish(app, form, article).set('Accept', 'application/json').expect(201);
    expect(res.body).toEqual({ id: expect.any(Number), url: `/articles/${res.body.id}` });
    expect(res.headers.location).toBe(res.body.url);
    expect(res.headers['ryw-token']).toBeDefined();
    expect((res.headers['set-cookie'] as unknown as string[]).some((c) => c.startsWith('ryw='))).toBe(true);
    const retry = await publish(app, form, article).set('Accept', 'application/json').expect(201);
    expect(retry.body.url).toBe(res.body.url);
    expect(countArticles(fs)).toBe(1);
  });

  it('gets the form back as HTML when a field needs fixing', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const res = await publish(app, form, { title: '', content: 'kept' }).set('Accept', 'application/json').expect(400);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toContain('>kept</textarea>');
  });
});

describe('the pages load their script and styles from the app only', () => {
  it('links /static/app.js and /static/app.css, serves both, and allows scripts from its own origin only', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const page = await request(app).get('/new').set('Cookie', sessionOf(app)).expect(200);
    expect(page.text).toContain('<script src="/static/app.js" defer></script>');
    expect(page.text).not.toMatch(/<script>|<script (?![^>]*src="\/static\/)/); // no inline script
    expect(page.text).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another origin
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    await request(app)
      .get('/static/app.js')
      .expect(200)
      .expect('content-type', /javascript/);
    await request(app).get('/static/app.css').expect(200).expect('content-type', /css/);
    await request(app).get('/static/favicon.svg').expect(200).expect('content-type', /svg/);
  });
});
