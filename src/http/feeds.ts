import { Router } from 'express';
import { Feed } from 'feed';
import { HOME_PAGE_SIZE, type ArticleMarkup, type ArticleStore, type ArticleSummary } from '../article.js';
import type { Site } from '../site.js';
import { baseUrl } from './site.js';

/** The newest articles `/feed.xml` carries, by their summaries: as many as the home page shows. */
export const FEED_ENTRIES = HOME_PAGE_SIZE;
/**
 * The newest articles a sitemap lists. The protocol allows 50,000 in a file,
 * but building that many held the event loop for ~190 ms (31 ms at 10,000);
 * at 5,000 it stays in the tens of milliseconds. Older articles are still
 * reachable by crawlers through the home page's keyset pages.
 */
export const SITEMAP_MAX_URLS = 5_000;

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
  /** Unused: the feed carries summaries, not rendered articles (see feedRoutes()). */
  markup?: ArticleMarkup;
  site: Site;
}

/** The Atom XML of these summaries, linked at this address. */
function atomOf(site: Site, base: string, articles: readonly ArticleSummary[]): string {
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
    const url = `${base}/articles/${article.id}`;
    feed.addItem({
      // The package marks titles and summaries type="html": plain text goes in escaped, as HTML.
      title: escapeXml(article.title),
      id: url,
      link: url,
      date: article.updated,
      published: article.created,
      description: escapeXml(article.excerpt),
      author: article.author ? [{ name: xmlText(article.author.name) }] : undefined,
    });
  }
  return feed.atom1();
}

/**
 * `/feed.xml` (Atom, by the `feed` package) and `/sitemap.xml`: neither lists a deleted article.
 *
 * The feed carries each article's summary (the plain-text excerpt the home
 * page shows, stored for the search), not its rendered HTML: rendering 20
 * articles' Markdown and writing megabytes of XML held the event loop for
 * most of a second at every cold request (docs/benchmarks.md, "The feed").
 * Feed readers link to the article for the rest. The sitemap reads only
 * ids and dates (store.index()).
 */
export function feedRoutes({ store, site }: FeedRoutesOptions): Router {
  const router = Router();

  router.get('/feed.xml', (req, res) => {
    // No cache: the home page's query (under a millisecond for 20) and a few
    // kilobytes of XML (a few tenths) cost less than keeping one right.
    const articles = store.list({}, FEED_ENTRIES).items;
    res.type('application/atom+xml; charset=utf-8').send(atomOf(site, baseUrl(req, site), articles));
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
