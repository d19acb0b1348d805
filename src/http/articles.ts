import { randomBytes } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import {
  validateArticle,
  DRAFT_ID_PATTERN,
  MAX_CONTENT_LENGTH,
  MAX_TITLE_LENGTH,
  type Article,
  type ArticleErrors,
  type ArticleStore,
} from '../article.js';
import { AppError, isAppError } from '../error.js';
import { cookieOptions } from './cookies.js';
import type { createCsrf } from './csrf.js';
import { BUSY_RETRY_AFTER_S, UNAVAILABLE_RETRY_AFTER_S } from './errors.js';
import { CROSS_SITE_MESSAGE, isCrossSite } from './same-site.js';
import type { Render } from './views.js';

/** Form bodies larger than this are refused (413) before parsing; the fields' own limits are far below. */
export const FORM_BODY_LIMIT = '256kb';
const ID_PATTERN = /^[1-9][0-9]{0,14}$/;
/** The form's hidden field that names its draft (see `ArticleInput.draftId`). */
export const DRAFT_FIELD = '_draft';

/** A new draft id: 128 random bits, so that no two forms ever share one. */
export function newDraftId(): string {
  return randomBytes(16).toString('base64url');
}

function parseId(raw: unknown): number {
  if (typeof raw !== 'string' || !ID_PATTERN.test(raw)) {
    throw new AppError('invalid', 'Article ids are positive whole numbers, like /articles/42.');
  }
  return Number(raw);
}

function queryString(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined || typeof value === 'string') return value;
  throw new AppError('invalid', `Give ?${name}= once, as plain text.`);
}

export interface ArticleRoutesOptions {
  store: ArticleStore;
  csrf: ReturnType<typeof createCsrf>;
  render: Render;
}

/** The blog: the list and search, article pages, and the form to write one. */
export function articleRoutes({ store, csrf, render }: ArticleRoutesOptions): Router {
  const router = Router();
  const limits = { maxTitle: MAX_TITLE_LENGTH, maxContent: MAX_CONTENT_LENGTH };

  const showForm = (
    req: Request,
    res: Response,
    status: number,
    form: { title: string; content: string; draftId: string | null; errors?: ArticleErrors; problem?: string; published?: Article },
  ) =>
    render(
      res,
      'new',
      {
        ...limits,
        ...form,
        // A form shown again keeps its draft id: it is still the same draft.
        draftId: form.draftId ?? newDraftId(),
        errors: form.errors ?? {},
        csrfToken: csrf.generateCsrfToken(req, res, { cookieOptions: cookieOptions(req) }),
      },
      status,
    );

  router.get('/', async (req, res) => {
    const search = queryString(req, 'search')?.trim() ?? '';
    if (!search) return render(res, 'home', { search, articles: store.list() });
    const results = await store.search(search);
    // The search as read (no control characters, cut when too long), also in the search box.
    render(res, 'search', { search: results.text, results });
  });

  const showArticle = (res: Response, rawId: unknown) => {
    const article = store.get(parseId(rawId));
    if (!article) throw new AppError('not_found', 'There is no article with that id.');
    render(res, 'article', { article });
  };
  router.get('/articles/:id', (req, res) => showArticle(res, req.params.id));
  // The Go app's URLs: /articles?id=N.
  router.get('/articles', (req, res) => showArticle(res, queryString(req, 'id')));

  router.get('/new', (req, res) => showForm(req, res, 200, { title: '', content: '', draftId: null }));

  router.post('/new', express.urlencoded({ extended: false, limit: FORM_BODY_LIMIT }), (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const draft = body[DRAFT_FIELD];
    const typed = {
      title: typeof body.title === 'string' ? body.title : '',
      content: typeof body.content === 'string' ? body.content : '',
      draftId: typeof draft === 'string' && DRAFT_ID_PATTERN.test(draft) ? draft : null,
    };
    if (!csrf.validateRequest(req)) {
      return showForm(req, res, 403, {
        ...typed,
        problem: isCrossSite(req)
          ? `${CROSS_SITE_MESSAGE} If you meant to publish this, your text is still here: publish it from this page.`
          : 'This form had expired, so nothing was saved. Your text is still here: publish again.',
      });
    }
    const checked = validateArticle(typed);
    if (!checked.ok) return showForm(req, res, 400, { ...typed, errors: checked.errors });
    try {
      const article = store.create(checked.value);
      if (article.title !== checked.value.title || article.content !== checked.value.content) {
        // The draft was published before with other text: the author went
        // back to the form and changed it. Publishing it over the first would
        // surprise them, and so would dropping the change: ask, with a new draft.
        return showForm(req, res, 409, {
          ...typed,
          draftId: null,
          published: article,
          problem: 'You already published this draft, with different text. Nothing was changed, and your new text is still here: press Publish to publish it as a new article.',
        });
      }
      const location = `/articles/${article.id}`;
      // The form's script (public/app.js) asks for JSON so that it can
      // keep the form on screen when publishing fails; browsers without it get the redirect.
      if (req.accepts(['html', 'json']) === 'json') res.status(201).location(location).json({ id: article.id, url: location });
      else res.redirect(303, location);
    } catch (error) {
      if (!isAppError(error, 'unavailable') && !isAppError(error, 'busy')) throw error;
      // The store returns only once the article is committed, so nothing was:
      // say so, never 303/201, and keep everything typed (the draft id too,
      // so that a retry whose first try did land finds that article).
      const busy = error.code === 'busy';
      res.setHeader('Retry-After', String(busy ? BUSY_RETRY_AFTER_S : UNAVAILABLE_RETRY_AFTER_S));
      const problem = busy
        ? 'The database was busy and could not save your article just now. Nothing was saved and your text is still here: try publishing again in a moment.'
        : 'The database could not save your article just now (the primary may be changing). Nothing was saved and your text is still here: try publishing again in a few seconds.';
      // The form's script keeps its form on screen and shows the message.
      if (req.accepts(['html', 'json']) === 'json') res.status(503).json({ error: error.code, message: problem });
      else showForm(req, res, 503, { ...typed, problem });
    }
  });

  return router;
}
