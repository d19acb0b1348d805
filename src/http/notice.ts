import type { Render } from './views.js';

/**
 * Set by public/app.js just before it reloads a page that was served stale,
 * once its region has caught up: the page's own URL, for a minute.
 */
export const CAUGHT_UP_COOKIE = 'ryw-caught-up';

/**
 * Wraps the views' renderer so that the page a stale page reloads into says
 * the change has arrived (`it.caughtUp`), in the notice's slot, rather than
 * nothing: the reader was just told the page might not show their change,
 * and the slot staying where it was keeps the page from moving under them.
 * Only for that one page (its URL is the cookie's), once: the cookie is cleared.
 */
export function withCaughtUp(render: Render): Render {
  return (res, view, data = {}, status) => {
    const marked: unknown = (res.req.cookies as Record<string, unknown> | undefined)?.[CAUGHT_UP_COOKIE];
    if (marked === undefined) return render(res, view, data, status);
    res.clearCookie(CAUGHT_UP_COOKIE, { path: '/' });
    const caughtUp = marked === res.req.originalUrl && res.locals.ryw?.stale !== true;
    render(res, view, { ...data, caughtUp }, status);
  };
}
