/**
 * What the blog says of itself to feed readers, search engines and link
 * previews: an Atom feed, a sitemap, `<meta name=description>` and
 * OpenGraph tags, with the title and description SITE_TITLE and
 * SITE_DESCRIPTION set.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
// xml-js (feed writes with it, and it is a dev dependency of ours too): here it reads the XML back, strictly (sax in strict mode).
import { xml2js, type Element } from 'xml-js';
import { EXCERPT_LENGTH, MAX_CONTENT_LENGTH } from '../../src/article.js';
import { FEED_ENTRIES } from '../../src/http/feeds.js';
import { loadConfig } from '../../src/config.js';
import { DEFAULT_SITE_DESCRIPTION, DEFAULT_SITE_TITLE } from '../../src/site.js';
import { FakeLiteFS } from '../support/fake-litefs.js';
import { openEdit, openForm, saveEdit, sessionOf, submitForm, type App } from '../support/forms.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

async function publish(app: App, fields: { title: string; content: string }): Promise<number> {
  const form = await openForm(app);
  const res = await submitForm(app, form, { ...fields, _draft: form.draft }).expect(303);
  return Number(/\d+$/.exec(res.headers.location as string)![0]);
}

/** Parses XML strictly (throws on anything malformed) into its root element. */
function parseXml(text: string): Element {
  const document = xml2js(text, { compact: false }) as Element;
  return document.elements!.find((e) => e.type === 'element')!;
}
const children = (element: Element, name: string) => (element.elements ?? []).filter((e) => e.name === name);
const child = (element: Element, name: string) => children(element, name)[0];
const textOf = (element: Element | undefined) => (element?.elements ?? []).map((e) => e.text ?? e.cdata ?? '').join('');
/** An Atom `type="html"` text: what a feed reader shows, once the HTML is read. */
const htmlText = (s: string) =>
  s.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&apos;', "'").replaceAll('&amp;', '&');
const meta = (html: string, attribute: 'name' | 'property', key: string) =>
  new RegExp(`<meta ${attribute}="${key}" content="([^"]*)">`).exec(html)?.[1];

const site = { SITE_TITLE: 'Notes from the edge', SITE_DESCRIPTION: 'Writing from fra, syd & ewr.' };

describe('/feed.xml', () => {
  it('is a well-formed Atom feed of the newest articles, with their summaries, titles as plain text', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app({ env: site });
    const older = await publish(app, { title: 'Tom & <Jerry> "quoted"', content: 'First **post**.' });
    const newer = await publish(app, { title: 'Second', content: 'See https://fly.io.' });
    const res = await request(app).get('/feed.xml').set('Host', 'blog.example').expect(200);
    expect(res.headers['content-type']).toBe('application/atom+xml; charset=utf-8');
    const feed = parseXml(res.text);
    expect(feed.name).toBe('feed');
    expect(feed.attributes?.xmlns).toBe('http://www.w3.org/2005/Atom');
    expect(textOf(child(feed, 'title'))).toBe('Notes from the edge');
    expect(textOf(child(feed, 'subtitle'))).toBe('Writing from fra, syd & ewr.');
    expect(textOf(child(feed, 'id'))).toBe('http://blog.example/');
    expect(children(feed, 'link').map((l) => l.attributes)).toEqual([
      { rel: 'alternate', href: 'http://blog.example/' },
      { rel: 'self', href: 'http://blog.example/feed.xml' },
    ]);
    const entries = children(feed, 'entry');
    expect(entries.map((e) => textOf(child(e, 'id')))).toEqual([
      `http://blog.example/articles/${newer}`,
      `http://blog.example/articles/${older}`,
    ]);
    const first = entries[1]!;
    // Atom `type="html"`: a reader reads the text as HTML, so the title's own < and & must be escaped in it.
    expect(child(first, 'title')!.attributes?.type).toBe('html');
    expect(textOf(child(first, 'title'))).toBe('Tom &amp; &lt;Jerry&gt; &quot;quoted&quot;');
    expect(htmlText(textOf(child(first, 'title')))).toBe('Tom & <Jerry> "quoted"');
    // The summary: the article's plain text (the search's, no Markdown), escaped; a reader follows the link for the rest.
    expect(htmlText(textOf(child(first, 'summary')))).toBe('First post.');
    expect(child(first, 'link')!.attributes).toMatchObject({ href: `http://blog.example/articles/${older}` });
    expect(textOf(child(child(first, 'author')!, 'name'))).toBe('Form Writer');
    expect(new Date(textOf(child(first, 'published'))).toISOString()).toBe(textOf(child(first, 'published')));
    expect(htmlText(textOf(child(entries[0]!, 'summary')))).toBe('See https://fly.io.');
  });

  it(`carries at most ${FEED_ENTRIES} entries, and is valid for an empty blog`, async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    for (let i = 0; i < FEED_ENTRIES + 3; i++) fs.insertArticle(`Post ${i}`, 'text');
    const { app } = fs.app();
    expect(children(parseXml((await request(app).get('/feed.xml').expect(200)).text), 'entry')).toHaveLength(FEED_ENTRIES);
    fs.close();
    fs = new FakeLiteFS({ role: 'standalone' });
    const empty = parseXml((await request(fs.app().app).get('/feed.xml').expect(200)).text);
    expect(children(empty, 'entry')).toEqual([]);
    expect(textOf(child(empty, 'title'))).toBe(DEFAULT_SITE_TITLE);
  });

  it('carries each article as its summary, never its whole text: a feed of maximum-size articles stays small', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    // The costliest Markdown to render that fits (docs/benchmarks.md, "Markdown"), as words a summary can cut.
    const table = `|a|b|\n|-|-|\n${'|word|word|\n'.repeat(2_000)}`.slice(0, MAX_CONTENT_LENGTH);
    for (let i = 0; i < FEED_ENTRIES; i++) await publish(app, { title: `Table ${i}`, content: table });
    const res = await request(app).get('/feed.xml').expect(200);
    const entries = children(parseXml(res.text), 'entry');
    expect(entries).toHaveLength(FEED_ENTRIES);
    for (const entry of entries) {
      expect(child(entry, 'content')).toBeUndefined();
      expect(htmlText(textOf(child(entry, 'summary')))).toMatch(/^a b word word word .*…$/);
      expect([...htmlText(textOf(child(entry, 'summary')))].length).toBeLessThanOrEqual(EXCERPT_LENGTH + 1);
    }
    // Whole, these articles made a feed of megabytes; their summaries, a few kilobytes.
    expect(res.text.length).toBeLessThan(20_000);
  });

  it('follows every edit and deletion at once, and names the address each request came by', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const id = await publish(app, { title: 'Before', content: 'The first words.' });
    const feedOf = async (host = 'blog.example') => parseXml((await request(app).get('/feed.xml').set('Host', host).expect(200)).text);
    expect(textOf(child(child(await feedOf(), 'entry')!, 'title'))).toBe('Before');

    const form = await openEdit(app, id);
    await saveEdit(app, form, { title: 'After', content: 'The second words.' }).expect(303);
    const edited = child(await feedOf(), 'entry')!;
    expect(textOf(child(edited, 'title'))).toBe('After');
    expect(htmlText(textOf(child(edited, 'summary')))).toBe('The second words.');
    // The same articles asked for by another address: links to that one.
    expect(textOf(child(child(await feedOf('other.example'), 'entry')!, 'id'))).toBe(`http://other.example/articles/${id}`);
    expect(textOf(child(child(await feedOf(), 'entry')!, 'id'))).toBe(`http://blog.example/articles/${id}`);

    const page = await request(app).get(`/articles/${id}/delete`).set('Cookie', sessionOf(app)).expect(200);
    const csrf = (page.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
    await request(app)
      .post(`/articles/${id}/delete`)
      .set('Cookie', `${csrf}; ${sessionOf(app)}`)
      .type('form')
      .send({ _csrf: /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!, _revision: '2' })
      .expect(303);
    expect(children(await feedOf(), 'entry')).toEqual([]);
  });

  it('uses SITE_URL for its links when set, and never a malformed Host', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const id = fs.insertArticle('Post', 'text');
    const configured = fs.app({ env: { SITE_URL: 'https://blog.example' } }).app;
    const feed = await request(configured).get('/feed.xml').set('Host', 'fra-1.internal:8080').expect(200);
    expect(textOf(child(child(parseXml(feed.text), 'entry')!, 'id'))).toBe(`https://blog.example/articles/${id}`);
    const plain = fs.app().app;
    const spoofed = await request(plain).get('/feed.xml').set('Host', 'evil"><x').expect(200);
    expect(textOf(child(parseXml(spoofed.text), 'id'))).toBe('http://localhost/');
  });
});

describe('/sitemap.xml', () => {
  it('lists the home page and every article, with when each last changed', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const a = await publish(app, { title: 'One', content: 'x' });
    const b = await publish(app, { title: 'Two', content: 'y' });
    const res = await request(app).get('/sitemap.xml').set('Host', 'blog.example').expect(200);
    expect(res.headers['content-type']).toBe('application/xml; charset=utf-8');
    const urlset = parseXml(res.text);
    expect(urlset.name).toBe('urlset');
    expect(urlset.attributes?.xmlns).toBe('http://www.sitemaps.org/schemas/sitemap/0.9');
    const urls = children(urlset, 'url').map((u) => ({ loc: textOf(child(u, 'loc')), lastmod: textOf(child(u, 'lastmod')) }));
    expect(urls.map((u) => u.loc)).toEqual([
      'http://blog.example/',
      `http://blog.example/articles/${b}`,
      `http://blog.example/articles/${a}`,
    ]);
    for (const url of urls) expect(new Date(url.lastmod).toISOString()).toBe(url.lastmod);
  });
});

describe('meta and OpenGraph tags', () => {
  it('name the site on the home page, and each article on its page, escaped', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app({ env: site });
    const id = await publish(app, { title: 'Quotes " and <tags>', content: 'An **article** about [links](https://x.example) and more.' });
    const home = await request(app).get('/').set('Host', 'blog.example').expect(200);
    expect(home.text).toContain('<title>Notes from the edge</title>');
    expect(meta(home.text, 'name', 'description')).toBe('Writing from fra, syd &amp; ewr.');
    expect(meta(home.text, 'property', 'og:site_name')).toBe('Notes from the edge');
    expect(meta(home.text, 'property', 'og:title')).toBe('Notes from the edge');
    expect(meta(home.text, 'property', 'og:type')).toBe('website');
    expect(meta(home.text, 'property', 'og:url')).toBe('http://blog.example/');
    expect(home.text).toContain('<link rel="alternate" type="application/atom+xml" title="Notes from the edge" href="/feed.xml">');
    expect(home.text).toContain('<span dir="auto">Notes from the edge</span></a>');

    const page = await request(app).get(`/articles/${id}`).set('Host', 'blog.example').expect(200);
    expect(page.text).toContain('<title>Quotes &quot; and &lt;tags&gt; · Notes from the edge</title>');
    expect(meta(page.text, 'name', 'description')).toBe('An article about links and more.');
    expect(meta(page.text, 'property', 'og:title')).toBe('Quotes &quot; and &lt;tags&gt;');
    expect(meta(page.text, 'property', 'og:type')).toBe('article');
    expect(meta(page.text, 'property', 'og:url')).toBe(`http://blog.example/articles/${id}`);
    expect(page.text).toContain(`<link rel="canonical" href="http://blog.example/articles/${id}">`);
    expect(meta(page.text, 'property', 'article:published_time')).toMatch(/^\d{4}-\d\d-\d\dT/);
    // Nothing else a page can be tricked into: a search page has no address of its own to claim.
    const results = await request(app).get('/?search=%22%3E%3Cscript%3E').expect(200);
    expect(results.text).not.toContain('<script>');
    expect(meta(results.text, 'property', 'og:url')).toBeUndefined();
  });

  it('fall back to the defaults without SITE_TITLE and SITE_DESCRIPTION', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const home = await request(fs.app().app).get('/').expect(200);
    expect(home.text).toContain(`<title>${DEFAULT_SITE_TITLE}</title>`);
    expect(meta(home.text, 'name', 'description')).toBe(DEFAULT_SITE_DESCRIPTION);
  });

  it('are configured once, at start: a bad SITE_* stops with one line naming it', () => {
    expect(() => loadConfig({ SITE_TITLE: 'x'.repeat(101) })).toThrow(/^SITE_TITLE: must be at most 100 characters/);
    expect(() => loadConfig({ SITE_TITLE: '   ' })).toThrow(/^SITE_TITLE: must not be blank/);
    expect(() => loadConfig({ SITE_DESCRIPTION: 'y'.repeat(301) })).toThrow(/^SITE_DESCRIPTION: must be at most 300 characters/);
    expect(() => loadConfig({ SITE_URL: 'https://blog.example/path' })).toThrow(/^SITE_URL: must be an origin/);
    expect(() => loadConfig({ SITE_URL: 'ftp://blog.example' })).toThrow(/^SITE_URL: /);
    expect(loadConfig({ SITE_TITLE: ' Mon blog ', SITE_URL: 'https://blog.example' }).site).toEqual({
      title: 'Mon blog',
      description: DEFAULT_SITE_DESCRIPTION,
      url: new URL('https://blog.example/'),
    });
  });
});
