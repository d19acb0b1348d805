/**
 * The home page and search results come in pages of HOME_PAGE_SIZE, linked
 * by keyset cursors (`?before=` / `?after=` an article's time and id), so
 * that clicking Older (then Newer) reaches every article, and a page shows
 * the same articles however many are published meanwhile.
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { HOME_PAGE_SIZE } from '../../src/article.js';
import { FakeLiteFS } from '../support/fake-litefs.js';
import { openForm, submitForm, type App } from '../support/forms.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

/** Seeds `count` articles, an hour apart, some pairs at the same instant (ids break the tie); returns their ids, oldest first. */
function seed(fake: FakeLiteFS, count: number, content = (i: number) => `Article number ${i}.`): number[] {
  const db = new Database(fake.dbPath);
  try {
    const insert = db.prepare('INSERT INTO articles (title, content, created, updated) VALUES (?, ?, ?, ?)');
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      // Every third article shares its time with the one before it.
      const at = new Date(Date.UTC(2024, 0, 1) + (i - Math.floor(i / 3)) * 3_600_000).toISOString();
      ids.push(Number(insert.run(`Title ${i}`, content(i), at, at).lastInsertRowid));
    }
    return ids;
  } finally {
    db.close();
  }
}

const unescapeHtml = (s: string) => s.replaceAll('&amp;', '&');
const listed = (html: string) =>
  [
    ...(/<ol class="articles[^"]*">([\s\S]*?)<\/ol>/.exec(html)?.[1] ?? '').matchAll(
      /<h2 class="article-title" dir="auto"><a href="\/articles\/(\d+)"/g,
    ),
  ].map((m) => Number(m[1]));
const link = (html: string, rel: 'newer' | 'older') => {
  const href = new RegExp(`<a class="${rel}" rel="(?:prev|next)" href="([^"]+)"`).exec(html)?.[1];
  return href === undefined ? null : unescapeHtml(href);
};

/** Follows one kind of link from `start` until there is none; the ids of each page, in order. */
async function walk(app: App, start: string, rel: 'newer' | 'older'): Promise<{ pages: number[][]; last: string }> {
  const pages: number[][] = [];
  let path: string | null = start;
  let last = start;
  while (path !== null && pages.length < 100) {
    const res = await request(app).get(path).expect(200);
    pages.push(listed(res.text));
    last = path;
    path = link(res.text, rel);
  }
  return { pages, last };
}

describe('the home page in pages', () => {
  it(`shows ${HOME_PAGE_SIZE} articles a page, newest first, and Older links reach every one, once; Newer links lead back`, async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const ids = seed(fs, 2 * HOME_PAGE_SIZE + 5);
    const { app } = fs.app();
    const home = await request(app).get('/').expect(200);
    expect(link(home.text, 'newer')).toBeNull(); // the first page
    const { pages, last } = await walk(app, '/', 'older');
    expect(pages.map((page) => page.length)).toEqual([HOME_PAGE_SIZE, HOME_PAGE_SIZE, 5]);
    // Newest first, ties by id, each once: exactly the seeded articles, in reverse.
    expect(pages.flat()).toEqual([...ids].reverse());

    const back = await walk(app, last, 'newer');
    expect(back.pages.map((page) => page[0])).toEqual([pages[2]![0], pages[1]![0], pages[0]![0]]);
    expect(back.pages.at(-1)).toEqual(pages[0]);
  });

  it('keeps a page the same when an article is published meanwhile', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    seed(fs, 2 * HOME_PAGE_SIZE + 5);
    const { app } = fs.app();
    const home = await request(app).get('/').expect(200);
    const second = link(home.text, 'older')!;
    expect(second).toMatch(/^\/\?before=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\.\d+$/);
    const before = listed((await request(app).get(second).expect(200)).text);

    const form = await openForm(app);
    const published = await submitForm(app, form, { title: 'Brand new', content: 'Fresh.', _draft: form.draft }).expect(303);
    const newId = Number(/\d+$/.exec(published.headers.location as string)![0]);

    expect(listed((await request(app).get(second).expect(200)).text)).toEqual(before);
    const now = await request(app).get('/').expect(200);
    expect(listed(now.text)[0]).toBe(newId);
    // Newer from the second page is the page just before it, as it was; the new article is one Newer further.
    const firstBefore = listed(home.text);
    const newer = await request(app)
      .get(link((await request(app).get(second).expect(200)).text, 'newer')!)
      .expect(200);
    expect(listed(newer.text)).toEqual(firstBefore);
    const newest = await request(app).get(link(newer.text, 'newer')!).expect(200);
    expect(listed(newest.text)).toEqual(listed(now.text));
    expect(link(newest.text, 'newer')).toBeNull();
  });

  it('says so on a page past the last article, with a way back', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    seed(fs, 3);
    const { app } = fs.app();
    const res = await request(app).get('/?before=2000-01-01T00:00:00.000Z.1').expect(200);
    expect(res.text).toContain('No articles on this page. <a href="/">See the newest articles.</a>');
  });

  it.each([
    ['a word', '?before=yesterday'],
    ['a date without an id', '?before=2024-01-01T00:00:00.000Z'],
    ['an id of 0', '?after=2024-01-01T00:00:00.000Z.0'],
    ['a month 13', '?before=2024-13-01T00:00:00.000Z.4'],
    ['February 30', '?before=2024-02-30T00:00:00.000Z.4'],
    ['an empty one', '?after='],
    ['both directions', '?before=2024-01-01T00:00:00.000Z.4&after=2024-01-01T00:00:00.000Z.2'],
    ['one given twice', '?before=2024-01-01T00:00:00.000Z.4&before=2024-01-01T00:00:00.000Z.2'],
    ['one on a search', '?search=lag&after=nope'],
  ])('answers a malformed page link (%s) with 400 and a clear message, never a 500', async (_name, query) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const res = await request(app).get(`/${query}`).expect(400);
    expect(res.text).toMatch(/That page link is malformed|Give \?before= or \?after=, not both|Give \?before= once/);
    expect(res.text).not.toMatch(/at .*\.ts:\d+|TypeError|SQLITE/);
    const json = await request(app).get(`/${query}`).set('Accept', 'application/json').expect(400);
    expect(json.body).toMatchObject({ error: 'invalid', message: expect.stringMatching(/\?before=|\?after=/) });
  });
});

describe('search results in pages', () => {
  it('walks every match by Older links (the search kept in them), newest first, then back by Newer', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    // Every other article speaks of lag; the others of something else.
    const ids = seed(fs, 2 * HOME_PAGE_SIZE + 10, (i) => (i % 2 === 0 ? `Replica lag number ${i}.` : `Nothing relevant ${i}.`));
    const matching = ids.filter((_, i) => i % 2 === 0).reverse();
    const { app } = fs.app();
    const { pages, last } = await walk(app, '/?search=lag', 'older');
    expect(pages.map((page) => page.length)).toEqual([HOME_PAGE_SIZE, matching.length - HOME_PAGE_SIZE]);
    expect(pages.flat()).toEqual(matching);
    expect(last).toMatch(/^\/\?search=lag&before=/);
    const back = await walk(app, last, 'newer');
    expect(back.pages.at(-1)).toEqual(pages[0]);
  });
});
