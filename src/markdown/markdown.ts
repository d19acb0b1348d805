import MarkdownIt, { type MarkdownIt as MarkdownParser, type Token } from 'markdown-it';
import type { ArticleMarkup, RenderedArticle } from '../article.js';

/**
 * Articles are written in Markdown and shown through markdown-it, with raw
 * HTML off: `<script>` in an article is text, by construction, so no
 * sanitiser stands between an author and the page. Links and images go
 * through markdown-it's own validateLink(), which refuses `javascript:`,
 * `vbscript:`, `file:` and `data:` URLs (but `data:image/{gif,png,jpeg,webp}`).
 * `breaks`: a line break typed in the form is a line break on the page, as
 * it was when articles were plain text (theirs render as they did).
 */
export const MARKDOWN_OPTIONS = { html: false, linkify: true, breaks: true, typographer: false } as const;
/** Rendered articles kept per process, by id and revision: an article page renders once per revision, not per view. */
export const RENDER_CACHE_ENTRIES = 256;
/** Elements that hold a reader's text: each finds its own direction (`dir="auto"`), so an Arabic paragraph reads right to left. */
const TEXT_BLOCKS = new Set(['paragraph_open', 'heading_open', 'list_item_open', 'blockquote_open', 'th_open', 'td_open']);

/** markdown-it as the blog uses it: the options above, plus the attributes the blog adds (see blogAttributes). */
export function createMarkdownIt(): MarkdownParser {
  const md = new MarkdownIt(MARKDOWN_OPTIONS);
  md.core.ruler.push('blog_attributes', (state) => blogAttributes(state.tokens));
  return md;
}

/**
 * The article's title is the page's only <h1>: headings in the text start
 * at <h2> (`#` is h2, `######` stays h6), so the outline a screen reader
 * reads stays whole. Links are marked as the author's, not the site's
 * (`rel="nofollow ugc"`), and text blocks take their own direction.
 */
function blogAttributes(tokens: Token[]): void {
  for (const token of tokens) {
    if (token.type === 'heading_open' || token.type === 'heading_close') token.tag = `h${Math.min(6, Number(token.tag.slice(1)) + 1)}`;
    if (TEXT_BLOCKS.has(token.type)) token.attrSet('dir', 'auto');
    for (const child of token.children ?? []) {
      if (child.type === 'link_open') child.attrSet('rel', 'nofollow ugc');
      if (child.type === 'image') child.attrSet('loading', 'lazy');
    }
  }
}

const BLOCK_ENDS = new Set([
  'paragraph_close',
  'heading_close',
  'blockquote_close',
  'bullet_list_close',
  'ordered_list_close',
  'table_close',
  'hr',
]);

/** The words of inline tokens: text and code as written, images by their alt text, link targets left out. */
function inlineText(tokens: readonly Token[]): string {
  let text = '';
  for (const token of tokens) {
    if (token.type === 'text' || token.type === 'code_inline') text += token.content;
    else if (token.type === 'softbreak' || token.type === 'hardbreak') text += '\n';
    else if (token.type === 'image') text += inlineText(token.children ?? []);
  }
  return text;
}

/**
 * The text a reader reads, without the markup: what the search indexes and
 * excerpts are made of. Paragraphs, headings and code blocks are separated
 * by a blank line, table cells by spaces; a link keeps its text, not its URL.
 */
export function plainTextOf(tokens: readonly Token[]): string {
  const parts: string[] = [];
  for (const token of tokens) {
    if (token.type === 'inline') parts.push(inlineText(token.children ?? []));
    else if (token.type === 'fence' || token.type === 'code_block') parts.push(token.content.replace(/\n$/, ''), '\n\n');
    else if (token.type === 'list_item_close' || token.type === 'tr_close') parts.push('\n');
    else if (token.type === 'th_close' || token.type === 'td_close') parts.push(' ');
    else if (BLOCK_ENDS.has(token.type)) parts.push('\n\n');
  }
  return parts
    .join('')
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * The blog's Markdown: `render()` an article (HTML and text from one parse,
 * cached by id and revision, so that a page view costs a map lookup),
 * `text()` of any source. An article is at most MAX_CONTENT_LENGTH
 * characters (src/article.ts), which bounds a render: the worst input
 * measured takes tens of milliseconds (docs/benchmarks.md, "Markdown").
 */
export class Markdown implements ArticleMarkup {
  private readonly md = createMarkdownIt();
  private readonly rendered = new Map<string, RenderedArticle>();

  constructor(private readonly maxEntries = RENDER_CACHE_ENTRIES) {}

  readonly render = (article: { id: number; revision: number; content: string }): RenderedArticle => {
    const key = `${article.id}:${article.revision}`;
    const cached = this.rendered.get(key);
    if (cached !== undefined) {
      // Most recently used last: the map's order is the eviction order.
      this.rendered.delete(key);
      this.rendered.set(key, cached);
      return cached;
    }
    const env = {};
    const tokens = this.md.parse(article.content, env);
    const rendered = { html: this.md.renderer.render(tokens, this.md.options, env), text: plainTextOf(tokens) };
    this.rendered.set(key, rendered);
    if (this.rendered.size > this.maxEntries) this.rendered.delete(this.rendered.keys().next().value!);
    return rendered;
  };

  readonly text = (source: string): string => plainTextOf(this.md.parse(source, {}));
}
