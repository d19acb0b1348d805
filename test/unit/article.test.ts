import { describe, expect, it } from 'vitest';
import { excerptOf, mayEdit, validateArticle } from '../../src/article.js';

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

describe('excerpts', () => {
  it('are the text as it is when short, its white space made single spaces', () => {
    expect(excerptOf('One\n\ntwo  three')).toBe('One two three');
  });

  it('are cut after a whole word, ending in …', () => {
    const text = 'word '.repeat(100);
    const excerpt = excerptOf(text, 22);
    expect(excerpt).toBe('word word word word…');
    expect(excerptOf('A sentence, then more words here.', 13)).toBe('A sentence…');
  });

  it('cut text without spaces (Japanese) where it reaches the length, and never inside a character', () => {
    expect(excerptOf('東京都に住んでいます。毎朝、電車で通勤します。', 10)).toBe('東京都に住んでいます…');
    expect(excerptOf('😀'.repeat(20), 5)).toBe('😀😀😀😀😀…');
  });
});

describe('who may edit', () => {
  it('is the article’s author, or any author for one from before authors existed; never a reader', () => {
    const ada = { id: 1, name: 'Ada' };
    expect(mayEdit({ author: ada }, { id: 1 })).toBe(true);
    expect(mayEdit({ author: ada }, { id: 2 })).toBe(false);
    expect(mayEdit({ author: null }, { id: 2 })).toBe(true);
    expect(mayEdit({ author: null }, null)).toBe(false);
    expect(mayEdit({ author: ada }, undefined)).toBe(false);
  });
});
