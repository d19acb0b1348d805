/**
 * Articles are Markdown, rendered by markdown-it with raw HTML off: what an
 * author types can make links, emphasis and code, never markup of its own,
 * nor a link that runs script. The search reads the text, not the markup.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLiteFS } from '../support/fake-litefs.js';
import { openForm, sessionOf, submitForm, type App } from '../support/forms.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

async function publish(app: App, fields: { title: string; content: string }, session?: string): Promise<string> {
  const form = await openForm(app, session);
  const res = await submitForm(app, form, { ...fields, _draft: form.draft }).expect(303);
  return res.headers.location as string;
}

/** The article's rendered content, from its page. */
async function contentOf(app: App, path: string): Promise<string> {
  const page = await request(app).get(path).expect(200);
  return /<div class="content" dir="auto">([\s\S]*?)<\/div>\n<\/article>/.exec(page.text)![1]!;
}

describe('Markdown in articles', () => {
  it('renders emphasis, clickable addresses, code blocks and headings under the title', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const path = await publish(app, {
      title: 'Markdown',
      content: [
        '# Why',
        '',
        'LiteFS is **fast** and *simple*; see https://fly.io/docs/litefs or [the code](https://github.com/superfly/litefs).',
        'A line break stays one.',
        '',
        '```ts',
        'const x = a < b && "<b>";',
        '```',
        '',
        'Inline `code <here>` too.',
      ].join('\n'),
    });
    const html = await contentOf(app, path);
    expect(html).toContain('<h2 dir="auto">Why</h2>');
    expect(html).toContain('<strong>fast</strong> and <em>simple</em>');
    expect(html).toContain('<a href="https://fly.io/docs/litefs" rel="nofollow ugc">https://fly.io/docs/litefs</a>');
    expect(html).toContain('<a href="https://github.com/superfly/litefs" rel="nofollow ugc">the code</a>');
    expect(html).toContain('.<br>\nA line break stays one.');
    expect(html).toContain('<pre><code class="language-ts">const x = a &lt; b &amp;&amp; &quot;&lt;b&gt;&quot;;\n</code></pre>');
    expect(html).toContain('<code>code &lt;here&gt;</code>');
  });

  it.each([
    ['a script element', '<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['an element with a handler', '<img src=x onerror=alert(1)>', '&lt;img src=x onerror=alert(1)&gt;'],
    ['a raw link', '<a href="javascript:alert(1)">x</a>', '&lt;a href=&quot;javascript:alert(1)&quot;&gt;x&lt;/a&gt;'],
    // (The address in it is made a link, as any address in text is.)
    ['an HTML block', '<div>\n<iframe src="https://evil.example"></iframe>\n</div>', '&lt;/iframe&gt;<br>\n&lt;/div&gt;'],
    ['an HTML comment', '<!-- hidden --> shown', '&lt;!-- hidden --&gt; shown'],
  ])('shows raw HTML as text: %s', async (_name, content, shown) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const html = await contentOf(app, await publish(app, { title: 'Raw HTML', content }));
    expect(html).toContain(shown);
    expect(html).not.toMatch(/<(script|img|iframe|div)\b/);
    expect(html).not.toMatch(/<a href="javascript:/i);
  });

  it.each([
    ['a javascript: link', '[click me](javascript:alert(1))'],
    ['a javascript: link in capitals', '[click me](JAVASCRIPT:alert(1))'],
    ['a javascript: link spelt with an entity', '[click me](&#106;avascript:alert(1))'],
    ['a javascript: link with a tab in it', '[click me](java\tscript:alert(1))'],
    ['a vbscript: link', '[click me](vbscript:msgbox(1))'],
    ['a data: HTML link', '[click me](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)'],
    ['a reference link to javascript:', '[click me][evil]\n\n[evil]: javascript:alert(1)'],
    ['a javascript: autolink', '<javascript:alert(1)>'],
    ['a javascript: image', '![click me](javascript:alert(1))'],
    ['an SVG data: image (it can hold script)', '![click me](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)'],
  ])('refuses %s: no link, no image, only text', async (_name, content) => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const html = await contentOf(app, await publish(app, { title: 'Links', content }));
    expect(html).not.toMatch(/<a\s/);
    expect(html).not.toMatch(/<img\s/);
    expect(html).not.toMatch(/(href|src)="\s*(javascript|vbscript|data):/i);
    expect(html).toMatch(/click me|javascript:alert/);
  });

  it('keeps images of the kinds browsers cannot script (data:image/png), with their alt text', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const html = await contentOf(app, await publish(app, { title: 'Image', content: '![a red dot](data:image/png;base64,iVBORw0KGgo=)' }));
    expect(html).toContain('<img src="data:image/png;base64,iVBORw0KGgo=" alt="a red dot" loading="lazy">');
  });

  it('shows an article from before Markdown (plain text) as it was: its paragraphs and line breaks', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const id = fs.insertArticle('Old', 'First line\nsecond line\n\nNext paragraph <b>not bold</b>.');
    const { app } = fs.app();
    const html = await contentOf(app, `/articles/${id}`);
    expect(html).toContain('<p dir="auto">First line<br>\nsecond line</p>');
    expect(html).toContain('<p dir="auto">Next paragraph &lt;b&gt;not bold&lt;/b&gt;.</p>');
  });
});

describe('the search reads the text, not the markup', () => {
  it('finds words of the text, not link targets or markup, and its snippets and excerpts have none', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const path = await publish(app, {
      title: 'Marked up',
      content: 'Read **the manual** at [our documentation](https://example.com/secretpath) or `fsync`.\n\n```\ncodeword()\n```',
    });
    const hits = (query: string) =>
      request(app)
        .get('/')
        .query({ search: query })
        .expect(200)
        .then((res) => res.text);
    expect(await hits('documentation')).toContain(`href="${path}"`);
    expect(await hits('codeword')).toContain(`href="${path}"`);
    expect(await hits('fsync')).toContain(`href="${path}"`);
    expect(await hits('secretpath')).toMatch(/No article matches/);
    expect(await hits('example')).toMatch(/No article matches/);
    const snippet = /<p class="snippet" dir="auto">([\s\S]*?)<\/p>/.exec(await hits('manual'))![1]!;
    expect(snippet).toContain('Read the <mark>manual</mark> at our documentation or fsync.');
    const home = await request(app).get('/').expect(200);
    expect(/<p class="excerpt" dir="auto">([^<]*)<\/p>/.exec(home.text)![1]).toBe(
      'Read the manual at our documentation or fsync. codeword()',
    );
  });
});

describe('right-to-left text', () => {
  it('marks user text dir="auto" (titles, content, excerpts, snippets, author names), so Arabic reads right to left', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    const path = await publish(
      app,
      { title: 'مرحبا بالعالم', content: 'هذه مقالة عن النسخ المتماثل.\n\n- أولا\n- ثانيا' },
      sessionOf(app, 'سارة'),
    );
    const page = await request(app).get(path).expect(200);
    expect(page.text).toContain('<h1 dir="auto">مرحبا بالعالم</h1>');
    expect(page.text).toContain('<p dir="auto">هذه مقالة عن النسخ المتماثل.</p>');
    expect(page.text).toContain('<li dir="auto">أولا</li>');
    expect(page.text).toContain('By <span class="author" dir="auto">سارة</span>');
    const home = await request(app).get('/').expect(200);
    expect(home.text).toContain(`<h2 class="article-title" dir="auto"><a href="${path}">مرحبا بالعالم</a></h2>`);
    expect(home.text).toContain('<p class="excerpt" dir="auto">هذه مقالة عن النسخ المتماثل. أولا ثانيا</p>');
    const search = await request(app).get('/').query({ search: 'مقالة' }).expect(200);
    expect(search.text).toContain('<h1>Search: <q dir="auto">مقالة</q></h1>');
    expect(search.text).toMatch(/<p class="snippet" dir="auto">هذه <mark>مقالة<\/mark>/);
    // The form, too, finds each field's direction from what is typed.
    const form = await request(app).get(`${path}/edit`).set('Cookie', sessionOf(app, 'سارة')).expect(200);
    expect(form.text).toMatch(/<input id="title" name="title" type="text" dir="auto"/);
    expect(form.text).toMatch(/<textarea id="content" name="content" rows="14" dir="auto"/);
  });
});
