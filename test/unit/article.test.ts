import { describe, expect, it } from 'vitest';
import { validateArticle } from '../../src/article.js';

describe('validating an article', () => {
  it('trims the title but keeps the content as typed, with Windows line ends made plain', () => {
    expect(validateArticle({ title: '  Hello  ', content: '  indented\r\n\r\nnext  ' })).toEqual({
      ok: true,
      value: { title: 'Hello', content: '  indented\n\nnext  ', draftId: null },
    });
  });

  it('drops control characters (the search uses two as match markers), keeping newlines and tabs', () => {
    const result = validateArticle({ title: 'A\u0002B\u0003\u0000C', content: 'x\u0002y\u0003\tz\nw\u007f' });
    expect(result).toEqual({ ok: true, value: { title: 'ABC', content: 'xy\tz\nw', draftId: null } });
  });

  it('counts a title of only control characters as empty', () => {
    const result = validateArticle({ title: '\u0001\u0002', content: 'text' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.title).toMatch(/give your article a title/);
  });

  it('ignores a malformed draft id rather than losing the article', () => {
    const result = validateArticle({ title: 't', content: 'c', draftId: 'short' });
    expect(result).toEqual({ ok: true, value: { title: 't', content: 'c', draftId: null } });
  });
});
