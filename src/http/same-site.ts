import type { Request, RequestHandler } from 'express';
import { AppError } from '../error.js';
import { READ_METHODS } from '../ryw/index.js';

export const CROSS_SITE_MESSAGE = 'This request came from another site, so nothing was changed.';

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * Whether a state-changing request was sent by a page of another origin than
 * the host it was sent to. The browser's `Origin` decides; where it says
 * nothing (absent, or `null`, which browsers send for a form posted from a page
 * with `Referrer-Policy: no-referrer`, as helmet sets on ours) `Sec-Fetch-Site:
 * cross-site` does. Requests with neither (curl, API clients, old browsers)
 * are not refused here: the CSRF check still applies to them.
 *
 * Only `Host` is compared, never the scheme: Fly's edge (and the local edge
 * router) terminate TLS and keep the browser's `Host` and `Origin`, also when
 * they replay a write from a replica to the primary, so same-site stays
 * same-site on every hop.
 */
export function isCrossSite(req: Request): boolean {
  // RFC 9110's safe methods never write: never refused for where they came from (OPTIONS is also a CORS preflight).
  if (READ_METHODS.has(req.method)) return false;
  const origin = req.get('origin');
  if (origin !== undefined && origin !== 'null') return !sameHost(origin, req.get('host'));
  return req.get('sec-fetch-site') === 'cross-site';
}

function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const defaultPort = DEFAULT_PORTS[url.protocol];
  if (defaultPort === undefined) return false;
  const [hostname, port = defaultPort] = splitHost(host.toLowerCase());
  return url.hostname === hostname && (url.port || defaultPort) === port;
}

/** `example.com:8080` → [`example.com`, `8080`]; `[::1]:80` → [`[::1]`, `80`]. */
function splitHost(host: string): [string, string?] {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
  return match ? [match[1]!, match[2]] : [host];
}

export interface SameSiteWritesOptions {
  /**
   * POST paths whose CSRF check refuses cross-site requests itself (see
   * createCsrf()), so that the form is shown again with the author's text
   * rather than an error page.
   */
  formPaths?: readonly (string | RegExp)[];
}

/**
 * Refuses (403, a plain message) every state-changing request sent from
 * another site, whatever route it is for. Mounted after readYourWrites(): on
 * a replica a write is replayed to the primary first, and refused there.
 *
 * @example
 * app.use(sameSiteWrites({ formPaths: ['/new'] }));
 */
export function sameSiteWrites(options: SameSiteWritesOptions = {}): RequestHandler {
  const formPaths = options.formPaths ?? [];
  const isFormPath = (path: string) => formPaths.some((form) => (typeof form === 'string' ? form === path : form.test(path)));
  return function sameSiteWritesMiddleware(req, _res, next) {
    if (!isCrossSite(req) || (req.method === 'POST' && isFormPath(req.path))) return next();
    throw new AppError('forbidden', CROSS_SITE_MESSAGE);
  };
}
