import { describe, expect, it } from 'vitest';
import { Markdown, MARKDOWN_OPTIONS } from '../../src/markdown/markdown.js';

describe('the blog’s Markdown', () => {
  it('has raw HTML off and addresses made links (the options the safety rests on)', () => {
    expect(MARKDOWN_OPTIONS).toMatchObject({ html: false, linkify: true });
  });

  it('renders once per revision: a page view of the same revision is served from the cache', () => {
    const markdown = new Markdown();
    const one = markdown.render({ id: 1, revision: 1, content: 'Hello *world*' });
    expect(one.html).toBe('<p dir="auto">Hello <em>world</em></p>\n');
    expect(markdown.render({ id: 1, revision: 1, content: 'ignored: the revision is what counts' })).toBe(one);
    expect(markdown.render({ id: 1, revision: 2, content: 'Hello **again**' }).html).toBe(
      '<p dir="auto">Hello <strong>again</strong></p>\n',
    );
  });

  it('keeps at most its bound, dropping the least recently used', () => {
    const markdown = new Markdown(2);
    const a = markdown.render({ id: 1, revision: 1, content: 'a' });
    markdown.render({ id: 2, revision: 1, content: 'b' });
    expect(markdown.render({ id: 1, revision: 1, content: 'a' })).toBe(a); // 1 is now the most recent
    markdown.render({ id: 3, revision: 1, content: 'c' }); // drops 2
    expect(markdown.render({ id: 1, revision: 1, content: 'a' })).toBe(a);
    expect(markdown.render({ id: 2, revision: 1, content: 'b, again' }).html).toContain('b, again');
  });

  it('makes plain text of it: words as read, no markup, no link targets; blocks apart', () => {
    const markdown = new Markdown();
    const text = markdown.text(
      [
        '## A *heading*',
        '',
        'See [the docs](https://example.com/hidden "a title") and ![a diagram](data:image/png;base64,AA) or <https://fly.io>.',
        '',
        '> quoted',
        '',
        '- one',
        '- two',
        '',
        '| a | b |',
        '|---|---|',
        '| 1 | 2 |',
        '',
        '```js',
        'let x = 1;',
        '```',
        '',
        '<b>raw</b> &amp; entity',
      ].join('\n'),
    );
    expect(text).toBe(
      'A heading\n\nSee the docs and a diagram or https://fly.io.\n\nquoted\n\none\n\ntwo\n\na b\n1 2\n\nlet x = 1;\n\n<b>raw</b> & entity',
    );
    expect(text).not.toContain('example.com');
  });

  it('starts the text’s headings at h2, under the page’s h1', () => {
    const { html } = new Markdown().render({ id: 1, revision: 1, content: '# One\n\n###### Six' });
    expect(html).toBe('<h2 dir="auto">One</h2>\n<h6 dir="auto">Six</h6>\n');
  });
});
