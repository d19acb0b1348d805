import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_CONTENT_LENGTH, MAX_TITLE_LENGTH, type ArticleStore } from '../../src/article.js';
import { MIGRATIONS } from '../../src/sqlite/migrations.js';
import { FakeLiteFS, PRIMARY_ID } from '../support/fake-litefs.js';
import { openForm, submitForm, type App, type Form } from '../support/forms.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

async function publish(app: App, fields: { title: string; content: string }, form?: Form) {
  return submitForm(app, form ?? (await openForm(app)), fields);
}

function expectStatus<T extends { status: number; text: string }>(res: T, status: number): T {
  expect(res.status, res.text.slice(0, 500)).toBe(status);
  return res;
}

const unescapeHtml = (s: string) =>
  s.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&amp;', '&');

describe('writing and reading articles', () => {
  it('publishes an article and redirects to its page (303)', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = expectStatus(
      await publish(app, { title: 'Distributed SQLite', content: 'LiteFS replicates it.\n\nSecond paragraph.' }),
      303,
    );
    const page = await request(app).get(res.headers.location!).expect(200);
    expect(page.text).toContain('<h1 dir="auto">Distributed SQLite</h1>');
    expect(page.text).toContain('<p dir="auto">Second paragraph.</p>');
  });

  it('lists articles newest first', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    expectStatus(await publish(app, { title: 'First post', content: 'one' }), 303);
    expectStatus(await publish(app, { title: 'Second post', content: 'two' }), 303);
    const home = await request(app).get('/').expect(200);
    expect(home.text.indexOf('Second post')).toBeGreaterThan(-1);
    expect(home.text.indexOf('Second post')).toBeLessThan(home.text.indexOf('First post'));
  });

  it("accepts the Go app's /articles?id=N", async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const id = fs.insertArticle('Old URL', 'still works');
    const { app } = fs.app();
    expect((await request(app).get(`/articles?id=${id}`).expect(200)).text).toContain('Old URL');
  });

  it.each(['abc', '0', '-1', '1.5', '99999999999999999999', '1e3'])('answers 400 for the malformed id %s', async (id) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = await request(app).get(`/articles/${id}`).expect(400);
    expect(res.text).toMatch(/positive whole numbers/);
    await request(app)
      .get(`/articles?id=${encodeURIComponent(id)}`)
      .expect(400);
  });

  it('answers 404 for a missing article', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = await request(app).get('/articles/12345').expect(404);
    expect(res.text).toMatch(/no article with that id/);
  });
});

describe('the form keeps what the author typed', () => {
  const content = 'Every word\n\nof this <em>matters</em> & stays.';

  it.each([
    ['an empty title', { title: '   ', content }, /give your article a title/],
    ['an over-long title', { title: 'T'.repeat(MAX_TITLE_LENGTH + 1), content }, /at most 200 characters/],
    ['empty content', { title: 'A title', content: '  \n ' }, /write something/],
    ['over-long content', { title: 'A title', content: 'c'.repeat(MAX_CONTENT_LENGTH + 1) }, /at most 20000 characters/],
  ])('re-renders with 400 on %s', async (_name, fields, message) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = expectStatus(await publish(app, fields), 400);
    expect(res.text).toMatch(message);
    const title = /<input id="title" name="title" type="text" dir="auto" value="([^"]*)"/.exec(res.text)![1]!;
    const body = /<textarea[^>]*>([\s\S]*?)<\/textarea>/.exec(res.text)![1]!;
    expect(unescapeHtml(title)).toBe(fields.title);
    expect(unescapeHtml(body)).toBe(fields.content);
    expect(res.text).toMatch(/name="_csrf" value="[^"]+"/); // ready to submit again
    expect((await request(app).get('/').expect(200)).text).not.toContain('A title');
  });

  it('answers 503 with Retry-After and the whole form when the database is read-only', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID, readonly: true });
    const res = expectStatus(await publish(app, { title: 'Written during a failover', content }), 503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.text).toMatch(/could not save your article just now/);
    expect(res.text).toContain('value="Written during a failover"');
    expect(unescapeHtml(/<textarea[^>]*>([\s\S]*?)<\/textarea>/.exec(res.text)![1]!)).toBe(content);
    expect(res.text).not.toMatch(/SQLITE|readonly database|at .*\.ts/);
  });
});

describe('CSRF', () => {
  it('refuses a post without a token (403) and keeps the text', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = await request(app).post('/new').type('form').send({ title: 'No token', content: 'kept' }).expect(403);
    expect(res.text).toMatch(/nothing was saved/);
    expect(res.text).toContain('value="No token"');
    expect(res.text).toContain('>kept</textarea>');
  });

  it('refuses a token that does not match the cookie', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const one = await openForm(app);
    const two = await openForm(app);
    expectStatus(await publish(app, { title: 'x', content: 'y' }, { ...one, cookie: two.cookie }), 403);
  });

  it('accepts a form rendered by a replica when it is replayed to the primary', async () => {
    const replicaDir = new FakeLiteFS({ role: 'replica' });
    fs = new FakeLiteFS({ role: 'primary' });
    try {
      const replica = replicaDir.app({ region: 'syd', instance: 'syd-1' }).app;
      const primary = fs.app({ region: 'fra', instance: PRIMARY_ID }).app;
      const form = await openForm(replica);
      expectStatus(await publish(replica, { title: 'From Sydney', content: 'hi' }, form), 409);
      const res = expectStatus(await publish(primary, { title: 'From Sydney', content: 'hi' }, form), 303);
      expect(res.headers.location).toMatch(/^\/articles\/\d+$/);
    } finally {
      replicaDir.close();
    }
  });
});

describe('escaping', () => {
  const evil = '<script>alert("x")</script> & <img src=x onerror=alert(1)>';

  it('escapes titles and content everywhere they are shown', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = expectStatus(await publish(app, { title: evil, content: evil }), 303);
    for (const [path, shown] of [
      [res.headers.location!, '&lt;script&gt;'],
      ['/', '&lt;script&gt;'],
      ['/?search=script', '&lt;<mark>script</mark>&gt;'], // highlighted, and still escaped
    ]) {
      const page = await request(app).get(path!).expect(200);
      expect(page.text).not.toContain('<script>');
      expect(page.text).not.toContain('<img src=x');
      expect(page.text).toContain(shown);
    }
  });

  it('escapes the search string itself', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const page = await request(app).get('/').query({ search: '"><script>x</script>' }).expect(200);
    expect(page.text).not.toContain('<script>x');
  });
});

describe('search', () => {
  it('finds articles by stem and highlights the matches', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    fs.insertArticle('Replicating SQLite databases', 'LiteFS replicates every transaction to the replicas.');
    fs.insertArticle('Cooking pasta', 'Boil water.');
    const { app } = fs.app();
    const page = await request(app).get('/').query({ search: 'replicate' }).expect(200);
    expect(page.text).toContain('<mark>Replicating</mark> SQLite databases');
    expect(page.text).toMatch(/LiteFS <mark>replicates<\/mark> every transaction/);
    expect(page.text).not.toContain('Cooking pasta');
  });

  it.each(['"', 'NEAR(', 'a OR', '*', 'title:x', '(((', 'AND', "'; DROP TABLE articles; --", '^'])(
    'treats %s as text, never an FTS syntax error',
    async (query) => {
      fs = new FakeLiteFS({ role: 'standalone' });
      fs.insertArticle('Quotes " and stars *', 'text');
      const { app } = fs.app();
      const page = await request(app).get('/').query({ search: query }).expect(200);
      expect(page.text).toMatch(/<h1>Search:/);
    },
  );

  it('shows the home page for an empty search', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const page = await request(app).get('/?search=%20%20').expect(200);
    expect(page.text).toContain('<h1>Articles</h1>');
  });
});

describe('POST /migrate/up', () => {
  it('does not exist without MIGRATE_TOKEN', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    await request(app).post('/migrate/up').set('Authorization', 'Bearer anything-at-all-123').expect(404);
  });

  it('needs the bearer token, then runs the migrations', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app({ migrateToken: 'migrate-token-0123456789' });
    await request(app).post('/migrate/up').expect(403);
    await request(app).post('/migrate/up').set('Authorization', 'Bearer wrong-token-0123456789').expect(403);
    const res = await request(app).post('/migrate/up').set('Authorization', 'Bearer migrate-token-0123456789').expect(200);
    // The fake directory is migrated already: nothing left to run.
    expect(res.body).toEqual({ from: MIGRATIONS.length, to: MIGRATIONS.length });
  });

  it('is replayed to the primary from a replica', async () => {
    fs = new FakeLiteFS({ role: 'replica' });
    const { app } = fs.app({ migrateToken: 'migrate-token-0123456789' });
    const res = await request(app).post('/migrate/up').set('Authorization', 'Bearer migrate-token-0123456789').expect(409);
    expect(res.headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
  });
});

describe('bad input', () => {
  it('answers an over-large form with 413 and a plain page', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const form = await openForm(app);
    const res = expectStatus(await publish(app, { title: 't', content: 'x'.repeat(300 * 1024) }, form), 413);
    expect(res.text).toMatch(/too large/);
  });

  it('answers a bug with a plain 500 page: no message, no stack trace', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const failing = (store: ArticleStore) =>
      ({
        create: store.create.bind(store),
        get: store.get.bind(store),
        search: store.search.bind(store),
        latest: store.latest.bind(store),
        index: store.index.bind(store),
        update: store.update.bind(store),
        delete: store.delete.bind(store),
        list() {
          throw new Error('secret detail at /srv/app/src/sqlite/article-store.ts:42');
        },
      }) satisfies ArticleStore;
    const { app } = fs.app({ wrapStore: failing });
    const res = await request(app).get('/').expect(500);
    expect(res.text).toMatch(/Something went wrong on our side/);
    expect(res.text).not.toMatch(/secret detail|article-store\.ts|at .*\.(ts|js):\d+/);
    // The process is still serving.
    await request(app).get('/healthz').expect(200);
  });
});
