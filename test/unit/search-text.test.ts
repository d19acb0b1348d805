import { describe, expect, it } from 'vitest';
import { hasCjk, searchableText, segmentRun, withoutWordBreaks, WORD_BREAK } from '../../src/sqlite/search-text.js';

const B = WORD_BREAK;

describe('the text the search indexes', () => {
  it('cuts runs of Chinese and Japanese into words (ICU), with zero-width spaces', () => {
    expect(searchableText('東京都に住んでいます。')).toBe(`東京${B}都${B}に${B}住${B}んで${B}い${B}ます。`);
    expect(searchableText('北京市是中国的首都')).toBe(`北京市${B}是${B}中国${B}的${B}首都`);
    // Mixed with Latin in one run: cut there too, so "LiteFS" is a word of its own.
    expect(segmentRun('LiteFSの説明')).toBe(`LiteFS${B}の${B}説明`);
  });

  it('leaves text without CJK as it is, and drops zero-width spaces of its own first', () => {
    expect(searchableText('Replication, explained: read-your-writes.')).toBe('Replication, explained: read-your-writes.');
    expect(searchableText(`zero${B}width`)).toBe('zerowidth');
    expect(searchableText(`東${B}京`)).toBe('東京');
  });

  it('is made readable again for snippets and excerpts', () => {
    expect(withoutWordBreaks(searchableText('東京都に住んでいます'))).toBe('東京都に住んでいます');
  });

  it('knows a CJK word when it sees one (Korean too)', () => {
    for (const word of ['東京', 'ひらがな', 'カタカナ', '한국어', 'x東']) expect(hasCjk(word)).toBe(true);
    for (const word of ['replication', 'مرحبا', 'Ελληνικά']) expect(hasCjk(word)).toBe(false);
  });
});
