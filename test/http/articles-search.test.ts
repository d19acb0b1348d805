/**
 * Search as readers type it: the last word also matches the start of longer
 * words (`replicat` finds "replication", which the Porter stemmer alone
 * cannot: it stems "replication" to "replic"), CJK words are found inside
 * the runs they are written in, and a search that finds nothing says what
 * to try.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeLiteFS } from '../support/fake-litefs.js';
import { openForm, submitForm, type App } from '../support/forms.js';

let fs: FakeLiteFS;
let app: App;
const ids: Record<string, string> = {};

async function publish(key: string, fields: { title: string; content: string }): Promise<void> {
  const form = await openForm(app);
  const res = await submitForm(app, form, { ...fields, _draft: form.draft }).expect(303);
  ids[key] = res.headers.location as string;
}

beforeAll(async () => {
  fs = new FakeLiteFS({ role: 'standalone' });
  app = fs.app().app;
  // Published through the form, so that the index holds the segmented text (as for every article written here).
  await publish('replication', { title: 'How it ships pages', content: 'Asynchronous replication of SQLite databases, with a primary.' });
  await publish('cooking', { title: 'Cooking pasta', content: 'Boil water, add the pasta, wait.' });
  await publish('tokyo', { title: '東京の暮らし', content: '東京都に住んでいます。毎朝、電車で通勤します。' });
  await publish('beijing', { title: '首都', content: '北京市是中国的首都。' });
});
afterAll(() => fs.close());

const search = (query: string) =>
  request(app)
    .get('/')
    .query({ search: query })
    .expect(200)
    .then((res) => res.text);
const found = (html: string) => [...html.matchAll(/<h2 class="article-title" dir="auto"><a href="(\/articles\/\d+)"/g)].map((m) => m[1]);

describe('prefixes: the last word also finds longer words it starts', () => {
  it.each(['replicat', 'replicati', 'Replicatio', 'databa', 'asynchro'])('%s finds the article on replication', async (query) => {
    expect(found(await search(query))).toEqual([ids.replication]);
  });

  it('highlights the whole word that matched', async () => {
    const html = await search('replicat');
    expect(html).toMatch(/<mark>replication<\/mark> of SQLite/);
  });

  it('needs the other words whole: "SQLite replicat" finds it, "replicat SQLit" does not', async () => {
    expect(found(await search('SQLite replicat'))).toEqual([ids.replication]);
    expect(found(await search('replication primar'))).toEqual([ids.replication]);
    expect(found(await search('replicat SQLit'))).toEqual([]);
  });

  it('reads a last word of fewer than 3 letters as a whole word ("pa" is not "pasta")', async () => {
    expect(found(await search('pa'))).toEqual([]);
    expect(found(await search('pas'))).toEqual([ids.cooking]);
  });

  it('still finds words by their stem ("replicate" finds "replication", "boiling" finds "Boil")', async () => {
    expect(found(await search('replicate'))).toEqual([ids.replication]);
    expect(found(await search('boiling'))).toEqual([ids.cooking]);
  });
});

describe('Chinese and Japanese: words inside runs without spaces', () => {
  it.each([
    ['東京', 'tokyo'],
    ['東京都', 'tokyo'],
    ['住んで', 'tokyo'],
    ['電車', 'tokyo'],
    ['北京', 'beijing'],
    ['中国', 'beijing'],
    ['首都', 'beijing'],
  ])('%s is found inside the sentence it is written in', async (query, key) => {
    expect(found(await search(query))).toEqual([ids[key]]);
  });

  it('highlights the word inside its run, and shows the snippet without the index’s word breaks', async () => {
    const html = await search('東京');
    expect(html).toContain('<mark>東京</mark>都に住んでいます。');
    expect(html).not.toContain('\u200b');
    expect(html).toContain('<mark>東京</mark>の暮らし');
  });

  it('finds nothing for a word that is not there', async () => {
    expect(found(await search('大阪'))).toEqual([]);
  });
});

describe('when nothing matched', () => {
  it('says so, and what to try: the spelling, a shorter word, or browsing', async () => {
    const html = await search('zebra');
    expect(html).toContain('No article matches <q dir="auto">zebra</q>.');
    expect(html).toMatch(/check the spelling, or type less of a word/);
    expect(html).toContain('<a href="/">browse every article</a>');
    expect(html).not.toMatch(/try fewer words/);
  });

  it('with several words, says that every word must match', async () => {
    const html = await search('pasta replication');
    expect(found(html)).toEqual([]);
    expect(html).toMatch(/Every word must be in an article for it to match: try fewer words/);
  });

  it('says nothing of the sort when something matched', async () => {
    expect(await search('pasta')).not.toMatch(/No article matches|try fewer words/);
  });
});
