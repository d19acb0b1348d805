/** What the blog says of itself: in every page's title and meta tags, the feed and the sitemap. */
export interface Site {
  /** SITE_TITLE. */
  title: string;
  /** SITE_DESCRIPTION: the home page's `<meta name=description>`, the feed's subtitle. */
  description: string;
  /**
   * SITE_URL: the blog's public address, which feeds, the sitemap and
   * OpenGraph tags need whole. Null: each request's own (its Host, and https
   * when the edge says so), which is right behind Fly's edge and locally.
   */
  url: URL | null;
}

export const DEFAULT_SITE_TITLE = 'LiteFS blog';
export const DEFAULT_SITE_DESCRIPTION =
  'Articles written from many regions, on SQLite replicated by LiteFS: every author always sees their own writes.';
export const DEFAULT_SITE: Site = { title: DEFAULT_SITE_TITLE, description: DEFAULT_SITE_DESCRIPTION, url: null };
