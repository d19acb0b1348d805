import type { Response } from 'express';
import { Eta } from 'eta';
import type { Role } from '../ryw/index.js';

export type Render = (res: Response, view: string, data?: Record<string, unknown>, status?: number) => void;

/** What every page says about where it was served from. */
export interface ServedFrom {
  region: string;
  instance: string;
  role: Role;
}

/**
 * Eta templates from `views/`; `<%= %>` escapes, and no template uses the raw
 * form (`<%~ %>`) on user text, with one exception: an article's body, which
 * is HTML rendered by src/markdown/ with raw HTML off (safe by construction,
 * tested in test/http/articles-markdown.test.ts). Each page gets `served` and `consistency` (what
 * read-your-writes left in `res.locals.ryw`) to say where it came from and
 * whether it waited or is stale.
 */
export function createRenderer(viewsDir: string, servedFrom: () => ServedFrom): Render {
  const eta = new Eta({ views: viewsDir, cache: true });
  return (res, view, data = {}, status = 200) => {
    const consistency = res.locals.ryw ?? null;
    // The middleware already read the role for this request; exempt paths read it here.
    const served = consistency?.served ?? servedFrom();
    const html = eta.render(view, { ...data, served, consistency });
    res.status(status).type('html').send(html);
  };
}
