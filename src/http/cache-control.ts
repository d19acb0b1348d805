import type { RequestHandler, Response } from 'express';
import onHeaders from 'on-headers';
import type { Timing } from '../ryw/index.js';

/** A page made for one reader: their own cache may keep it, a shared one never. */
export const PER_READER = 'private';
/**
 * A page the same for every visitor (page-cache.ts): any cache may keep it,
 * but must ask again before each use, so that the read-your-writes decision
 * runs on every revalidation and a 304 is given only for the state now.
 */
export const SHARED_REVALIDATE = 'no-cache';
/** Nothing may keep it: errors, refusals, replays, health. */
export const UNCACHEABLE = 'no-store';

/** What the response looks like as its headers go out. */
export interface OutgoingFacts {
  status: number;
  /** It sets or clears a cookie (a CSRF token, a read-your-writes token). */
  setsCookie: boolean;
  /** The read-your-writes decision: anything but `none` means the page was shaped by the reader's token (notice, wait, replay). */
  timing: Timing | null;
  /** What the route set itself, if anything. */
  existing: string | null;
}

/**
 * The `Cache-Control` a response must carry, or null to leave it as the
 * route set it (public pages: the page cache marks those SHARED_REVALIDATE).
 * Never loosens what the route set.
 */
export function cacheControlFor({ status, setsCookie, timing, existing }: OutgoingFacts): string | null {
  if (existing?.includes(UNCACHEABLE)) return null;
  if (status >= 400) return UNCACHEABLE;
  if (setsCookie || (timing !== null && timing !== 'none')) return existing?.includes(PER_READER) ? null : PER_READER;
  return null;
}

/**
 * Decides `Cache-Control` as the headers go out, once every cookie is set, so
 * that no shared cache ever serves one reader's page (their form's CSRF
 * token, a notice about their write, their token cookie) to another, nor
 * keeps an error. Mount it before readYourWrites(): on-headers runs the last
 * registered listener first, so this one runs after the token cookie is set.
 */
export function cacheControl(): RequestHandler {
  return function cacheControlMiddleware(_req, res, next) {
    onHeaders(res, () => {
      const value = cacheControlFor(outgoing(res));
      if (value !== null) res.setHeader('Cache-Control', value);
    });
    next();
  };
}

function outgoing(res: Response): OutgoingFacts {
  const existing = res.getHeader('Cache-Control');
  return {
    status: res.statusCode,
    setsCookie: res.hasHeader('Set-Cookie'),
    timing: res.locals.ryw?.timing ?? null,
    existing: existing === undefined ? null : String(existing),
  };
}
