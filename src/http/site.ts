import type { IncomingMessage } from 'node:http';
import type { Site } from '../site.js';
import { isHttps } from './cookies.js';
import type { Render } from './views.js';

// A host name or address and a port, as a Host header should be: anything else is not used in a link.
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** The blog's public address, without a trailing slash: SITE_URL, or the request's own (see Site.url). */
export function baseUrl(req: IncomingMessage, site: Site): string {
  if (site.url) return site.url.href.replace(/\/+$/, '');
  const host = req.headers.host ?? '';
  return `${isHttps(req) ? 'https' : 'http'}://${HOST.test(host) ? host : 'localhost'}`;
}

/** What every page knows of the site (the layout's title, meta and OpenGraph tags): `it.site`. */
export interface SiteLocals extends Site {
  /** The public address (see baseUrl()), for absolute links. */
  base: string;
}

/**
 * Wraps the views' renderer so that every page, error pages included, has
 * the site's title and description and its public address (`it.site`).
 */
export function withSite(render: Render, site: Site): Render {
  return (res, view, data = {}, status) =>
    render(res, view, { site: { ...site, base: baseUrl(res.req, site) } satisfies SiteLocals, ...data }, status);
}
