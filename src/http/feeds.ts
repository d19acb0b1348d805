import { Router } from 'express';
import { Feed } from 'feed';
import { excerptOf, HOME_PAGE_SIZE, type ArticleMarkup, type ArticleStore } from '../article.js';
import type { Site } from '../site.js';
import { baseUrl } from './site.js';

/** The newest articles `/feed.xml` carries, whole: as many as the home page shows. */
export const FEED_ENTRIES = HOME_PAGE_SIZE;
/** The sitemap protocol's limit for one file; a blog this size would need a sitemap index. */
export const SITEMAP_MAX_URLS = 50_000;

// What XML 1.0 cannot carry at all (most control characters, lone surrogates, U+FFFE and U+FFFF): dropped.
const NOT_XML = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu;
const xmlText = (text: string) => text.replace(NOT_XML, '');
const escapeXml = (text: string) =>
  xmlText(text)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');

const lastChange = (articles: readonly { updated: Date }[]): Date | undefined =>
  articles.reduce<Date | undefined>((latest, a) => (latest && latest > a.updated ? latest : a.updated), undefined);

export interface FeedRoutesOptions {
  store: ArticleStore;
  markup: ArticleMarkup;
  site: Site;
}

/** `/feed.xml` (Atom, by the `feed` package) and `/sitemap.xml`: neither lists a deleted article. */
export function feedRoutes({ store, markup, site }: FeedRoutesOptions): Router {
  const router = Router();

  router.get('/feed.xml', (req, res) => {
    const base = baseUrl(req, site);
    const articles = store.latest(FEED_ENTRIES);
    const feed = new Feed({
      id: `${base}/`,
      title: xmlText(site.title),
      description: xmlText(site.description),
      link: `${base}/`,
      feedLinks: { atom: `${base}/feed.xml` },
      // The feed changed when its newest change did (an empty blog: now).
      updated: lastChange(articles) ?? new Date(),
      generator: false,
      copyright: '',
    });
    for (const article of articles) {
      const { html, text } = markup.render(article);
      const url = `${base}/articles/${article.id}`;
      feed.addItem({
        // The package marks titles and summaries type="html": plain text goes in escaped, as HTML.
        title: escapeXml(article.title),
        id: url,
        link: url,
        date: article.updated,
        published: article.created,
        description: escapeXml(excerptOf(text)),
        content: xmlText(html),
        author: article.author ? [{ name: xmlText(article.author.name) }] : undefined,
      });
    }
    res.type('application/atom+xml; charset=utf-8').send(feed.atom1());
  });

  router.get('/sitemap.xml', (req, res) => {
    const base = baseUrl(req, site);
    const articles = store.index(SITEMAP_MAX_URLS - 1);
    const url = (loc: string, lastmod?: Date) =>
      `  <url><loc>${escapeXml(loc)}</loc>${lastmod ? `<lastmod>${lastmod.toISOString()}</lastmod>` : ''}</url>`;
    const lines = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
      // The home page changes with any article.
      url(`${base}/`, lastChange(articles)),
      ...articles.map((article) => url(`${base}/articles/${article.id}`, article.updated)),
      '</urlset>',
    ];
    res.type('application/xml; charset=utf-8').send(`${lines.join('\n')}\n`);
  });

  return router;
}
