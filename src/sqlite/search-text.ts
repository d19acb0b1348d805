/**
 * Chinese and Japanese are written without spaces, and FTS5's unicode61
 * tokenizer makes one token of a whole run of such characters: `東京` was
 * not found in `東京都に住んでいます`. So the text the search indexes has a
 * zero-width space between the words of such runs, as ICU's word segmenter
 * (Intl.Segmenter, full ICU in Node 20) finds them, and a search is
 * segmented the same way: `東京都` is searched as the phrase `東京 都`. The
 * zero-width space separates tokens for unicode61 (it is neither a letter
 * nor a digit) and is invisible in the snippets made from that text, which
 * drop it anyway (search-statement.ts).
 */

/** What separates the words of a CJK run in the indexed text. */
export const WORD_BREAK = '\u200b';
// One locale, whatever the machine's: the index and the searches must cut alike (ICU cuts Chinese and Japanese with one dictionary).
const SEGMENTER = new Intl.Segmenter('ja', { granularity: 'word' });
// What unicode61 reads as a word (see search-query.ts).
const WORD_RUN = /[\p{L}\p{N}\p{M}\p{Co}]+/gu;
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const WORD_BREAKS = /\u200b/g;

/** Whether a word holds Chinese, Japanese or Korean characters (then its last part is searched as a prefix as it is). */
export function hasCjk(word: string): boolean {
  return CJK.test(word);
}

/** A run of letters cut into the words ICU finds in it, joined by WORD_BREAK; runs without CJK are left as they are. */
export function segmentRun(run: string): string {
  if (!CJK.test(run)) return run;
  return Array.from(SEGMENTER.segment(run), (part) => part.segment).join(WORD_BREAK);
}

/** The text as the search indexes it: CJK runs cut into words (see above); zero-width spaces of its own dropped first. */
export function searchableText(text: string): string {
  return text.replace(WORD_BREAKS, '').replace(WORD_RUN, segmentRun);
}

/** Indexed text made readable again (snippets, excerpts). */
export function withoutWordBreaks(text: string): string {
  return text.replace(WORD_BREAKS, '');
}
