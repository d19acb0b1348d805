import { randomBytes } from 'node:crypto';
import express, { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import {
  DRAFT_ID_PATTERN,
  MAX_CONTENT_LENGTH,
  MAX_TITLE_LENGTH,
  mayEdit,
  validateArticle,
  type Article,
  type ArticleErrors,
  type ArticleLookup,
  type ArticleMarkup,
  type ArticleStore,
} from '../article.js';
import { AppError, isAppError } from '../error.js';
import { parseId } from './article-params.js';
import { requireAuthor, signInPath } from './auth.js';
import { confirmCommitted } from './committed.js';
import { cookieOptions } from './cookies.js';
import type { Csrf } from './csrf.js';
import { isDatabaseRefusal, setRetryAfter, type DatabaseRefusal } from './errors.js';
import { refuseBeforeRoute, refusedBeforeRoute } from './refused-early.js';
import { CROSS_SITE_MESSAGE, isCrossSite } from './same-site.js';
import type { Render } from './views.js';

/** Form bodies larger than this are refused (413) before parsing; the fields' own limits are far below. */
export const FORM_BODY_LIMIT = '256kb';
/** The form's hidden field that names its draft (see `ArticleInput.draftId`). */
export const DRAFT_FIELD = '_draft';
/** The edit and delete forms' hidden field: the revision the author started from (see `ArticleEdit`). */
export const REVISION_FIELD = '_revision';
const REVISION_PATTERN = /^[1-9][0-9]{0,14}$/;

/** A new draft id: 128 random bits, so that no two forms ever share one. */
export function newDraftId(): string {
  return randomBytes(16).toString('base64url');
}

const parseBody = express.urlencoded({ extended: false, limit: FORM_BODY_LIMIT });

/** The article forms' POST paths: new, edit, delete. */
export const ARTICLE_FORM_POST = /^\/(?:new|articles\/[1-9][0-9]{0,14}(?:\/delete)?)$/;

/**
 * Mount right after sessionMiddleware(): an article form posted while the
 * database is locked (the session lookup threw AppError('busy')) goes on to
 * its route, which answers 503 with the form and the author's text, instead
 * of to the error page, which would lose the text. Anything else is passed on.
 */
export const keepFormsWhenSessionBusy: ErrorRequestHandler = function keepFormsWhenSessionBusy(error: unknown, req, res, next) {
  if (req.method !== 'POST' || !ARTICLE_FORM_POST.test(req.path) || !isAppError(error, 'busy')) return next(error);
  refuseBeforeRoute(res, SESSION_BUSY);
  next();
};

/** What a form sent, as typed: shown again as it is whatever goes wrong. */
interface Typed {
  title: string;
  content: string;
  draftId: string | null;
  /** The revision the edit started from; null when missing or malformed. */
  revision: number | null;
}

function typedOf(req: Request): Typed {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const field = (name: string) => {
    const value = body[name];
    return typeof value === 'string' ? value : '';
  };
  const draft = field(DRAFT_FIELD);
  const revision = field(REVISION_FIELD);
  return {
    title: field('title'),
    content: field('content'),
    draftId: DRAFT_ID_PATTERN.test(draft) ? draft : null,
    revision: REVISION_PATTERN.test(revision) ? Number(revision) : null,
  };
}

const wantsJson = (req: Request) => req.accepts(['html', 'json']) === 'json';

/** The signed-out answer to a form: a JSON client gets JSON; a browser, the form again (the problem names the way to sign in). */
const SIGNED_OUT =
  'You are not signed in (or your session ended), so nothing was saved. Your text is still here: sign in in another tab, then send it again.';
const expired = (what: string) => `This form had expired, so nothing was ${what}. Your text is still here: send it again.`;
const crossSite = (what: string) => `${CROSS_SITE_MESSAGE} If you meant to ${what}, your text is still here: do it from this page.`;

/** What to tell an author whose write the database refused, by why (see refusedByDatabase()). */
interface Refusal {
  busy: string;
  unavailable: string;
}
/** A form's write refused: nothing saved, the text kept. */
const notSaved = (what: string, retry: string): Refusal => ({
  busy: `The database was busy and could not save your ${what} just now. Nothing was saved and your text is still here: ${retry} in a moment.`,
  unavailable: `The database could not save your ${what} just now (the primary may be changing). Nothing was saved and your text is still here: ${retry} in a few seconds.`,
});
const NOT_PUBLISHED = notSaved('article', 'try publishing again');
const NOT_CHANGED = notSaved('changes', 'try saving again');
const NOT_DELETED: Refusal = {
  busy: 'The database was busy and could not delete the article just now. Nothing was deleted: press Delete again in a moment.',
  unavailable:
    'The database could not delete the article just now (the primary may be changing). Nothing was deleted: press Delete again in a few seconds.',
};

/**
 * What a 503 for a write the primary committed but no standby confirmed in
 * time (RYW_DURABILITY=standby) tells the client to wait: a standby that is
 * only lagging catches up within a second or two.
 */
export const UNCONFIRMED_RETRY_AFTER_S = 2;
/** A write saved on the primary, not yet on a standby: sending the same form again is safe, and answers once confirmed. */
const unconfirmed = (what: string, again: string) =>
  `${what} saved on the primary but not yet confirmed elsewhere: no standby copy answered in time, so a failure of the primary right now could still lose it. Your text is still here: ${again} in a moment (it will not be saved twice).`;
const PUBLISH_UNCONFIRMED = unconfirmed('Your article is', 'press Publish again');
const EDIT_UNCONFIRMED = unconfirmed('Your changes are', 'press Save changes again');
const DELETE_UNCONFIRMED =
  'The article is deleted on the primary but not yet confirmed elsewhere: no standby copy answered in time, so a failure of the primary right now could still bring it back. Press Delete again in a moment.';

/** The session could not be looked up (keepFormsWhenSessionBusy): refused as a locked database is. */
const SESSION_BUSY = new AppError('busy', 'The session could not be looked up: the database is locked.') as DatabaseRefusal;

/** A deleted article: 410 Gone, on every replica that has its tombstone (the author's waits for it: read-your-writes). */
export function renderGone(render: Render, res: Response, deleted: Date): void {
  res.setHeader('Cache-Control', 'no-store');
  render(res, 'gone', { deleted }, 410);
}

export interface ArticleFormRoutesOptions {
  store: ArticleStore;
  csrf: Csrf;
  render: Render;
  markup: ArticleMarkup;
}

/**
 * Writing, editing and deleting articles: the signed-in author's. Any
 * signed-in author may publish; an article is edited and deleted by its own
 * author (articles from before authors existed, by any author: see
 * mayEdit()). Every refused form comes back with what was typed, and with
 * a fresh CSRF token, so that nothing is lost.
 */
export function articleFormRoutes({ store, csrf, render, markup }: ArticleFormRoutesOptions): Router {
  const router = Router();
  const limits = { maxTitle: MAX_TITLE_LENGTH, maxContent: MAX_CONTENT_LENGTH };
  const token = (req: Request, res: Response) => csrf.generateCsrfToken(req, res, { cookieOptions: cookieOptions(req) });

  interface EditorPage {
    /** The article being edited; null for a new one. */
    article: Article | null;
    title: string;
    content: string;
    draftId?: string | null;
    revision?: number;
    errors?: ArticleErrors;
    problem?: string;
    /** Shown as a sign-in link beside the problem. */
    signIn?: boolean;
    /** The draft was already published, with other text (a new article). */
    published?: Article;
    /** The article as now stored, when it changed since the edit began. */
    conflict?: { current: Article; html: string };
  }

  const showEditor = (req: Request, res: Response, status: number, page: EditorPage) =>
    render(
      res,
      'editor',
      {
        ...limits,
        ...page,
        action: page.article ? `/articles/${page.article.id}` : '/new',
        // A form shown again keeps its draft id: it is still the same draft.
        draftId: page.draftId ?? newDraftId(),
        errors: page.errors ?? {},
        signInHref: page.signIn ? signInPath(page.article ? `/articles/${page.article.id}/edit` : '/new') : null,
        csrfToken: token(req, res),
      },
      status,
    );

  /** The article an edit or delete URL names, if this author may change it; its tombstone if deleted; otherwise the refusal (404, 403). */
  const editable = (res: Response, found: ArticleLookup): Article | { deleted: Date } => {
    if (found.kind === 'missing') throw new AppError('not_found', 'There is no article with that id.');
    if (found.kind === 'deleted') return { deleted: found.deleted };
    if (!mayEdit(found.article, res.locals.author)) {
      throw new AppError('forbidden', `Only its author, ${found.article.author?.name ?? 'who wrote it'}, can edit or delete this article.`);
    }
    return found.article;
  };
  const isGone = (found: Article | { deleted: Date }): found is { deleted: Date } => !('id' in found);

  /**
   * The database refused a write form's work (a read of the article, the
   * session's lookup, or the write, whose store call returns only once it
   * has committed), so nothing was saved: say so with 503 and Retry-After,
   * never 303/201, and show the form again with everything typed (the
   * draft id too, so that a retry whose first try did land finds it), or
   * the confirmation again. Anything but such a refusal is thrown on.
   */
  const refusedByDatabase = (req: Request, res: Response, error: unknown, refusal: Refusal, again: (problem: string) => void): void => {
    if (!isDatabaseRefusal(error)) throw error;
    setRetryAfter(res, error);
    const problem = error.code === 'busy' ? refusal.busy : refusal.unavailable;
    // The form's script keeps its form on screen and shows the message.
    if (wantsJson(req)) res.status(503).json({ error: error.code, message: problem });
    else again(problem);
  };

  /**
   * Waits until the write just committed is durable (RYW_DURABILITY); if it
   * is not confirmed in time, answers 503 with Retry-After (and no token)
   * and the form again, and returns false. `saved` goes into a JSON answer:
   * an edit's new revision, which the page's script must send next time, or
   * its next save would be a conflict with the author's own.
   */
  const durable = async (
    req: Request,
    res: Response,
    problem: string,
    again: (problem: string) => void,
    saved: { revision?: number } = {},
  ): Promise<boolean> => {
    const confirmation = await confirmCommitted(res);
    if (confirmation.confirmed) return true;
    res.setHeader('Retry-After', String(UNCONFIRMED_RETRY_AFTER_S));
    if (wantsJson(req)) res.status(503).json({ error: 'unconfirmed', message: problem, ...saved });
    else again(problem);
    return false;
  };

  // --- Writing ----------------------------------------------------------------

  router.get('/new', requireAuthor, (req, res) => showEditor(req, res, 200, { article: null, title: '', content: '', draftId: null }));

  router.post('/new', parseBody, async (req, res) => {
    const typed = typedOf(req);
    const again = (status: number, page: Partial<EditorPage>) =>
      showEditor(req, res, status, { article: null, title: typed.title, content: typed.content, draftId: typed.draftId, ...page });
    if (!csrf.validateRequest(req)) {
      return again(403, { problem: isCrossSite(req) ? crossSite('publish this') : expired('saved') });
    }
    const early = refusedBeforeRoute(res);
    if (early) return refusedByDatabase(req, res, early, NOT_PUBLISHED, (problem) => again(503, { problem }));
    const author = res.locals.author;
    if (!author) {
      if (wantsJson(req)) return void res.status(401).json({ error: 'unauthorized', message: SIGNED_OUT });
      return again(401, { problem: SIGNED_OUT, signIn: true });
    }
    const checked = validateArticle(typed);
    if (!checked.ok) return again(400, { errors: checked.errors });
    let article: Article;
    try {
      article = store.create({ ...checked.value, authorId: author.id });
    } catch (error) {
      return refusedByDatabase(req, res, error, NOT_PUBLISHED, (problem) => again(503, { problem }));
    }
    if (article.title !== checked.value.title || article.content !== checked.value.content) {
      // The draft was published before with other text: the author went
      // back to the form and changed it. Publishing it over the first would
      // surprise them, and so would dropping the change: ask, with a new draft.
      return again(409, {
        draftId: null,
        published: article,
        problem:
          'You already published this draft, with different text. Nothing was changed, and your new text is still here: press Publish to publish it as a new article.',
      });
    }
    // Committed, now or by an earlier press of the same draft (this one found
    // it): either way the author's next page must show it, so the answer
    // carries a token, once durable. Unconfirmed, the form keeps its draft
    // id, so that sending it again finds this article rather than making another.
    if (!(await durable(req, res, PUBLISH_UNCONFIRMED, (problem) => again(503, { problem })))) return;
    const location = `/articles/${article.id}`;
    // The form's script (public/app.js) asks for JSON so that it can
    // keep the form on screen when publishing fails; browsers without it get the redirect.
    if (wantsJson(req)) res.status(201).location(location).json({ id: article.id, url: location });
    else res.redirect(303, location);
  });

  // --- Editing ----------------------------------------------------------------

  router.get('/articles/:id/edit', requireAuthor, (req, res) => {
    const article = editable(res, store.get(parseId(req.params.id)));
    if (isGone(article)) return renderGone(render, res, article.deleted);
    showEditor(req, res, 200, { article, title: article.title, content: article.content, revision: article.revision });
  });

  router.post('/articles/:id', parseBody, async (req, res) => {
    const id = parseId(req.params.id);
    const typed = typedOf(req);
    // Until the article is known, the form is shown as it came (its action needs only the id).
    const stub = { id } as Article;
    const again = (status: number, page: Partial<EditorPage>) =>
      showEditor(req, res, status, {
        article: stub,
        title: typed.title,
        content: typed.content,
        revision: typed.revision ?? undefined,
        ...page,
      });
    if (!csrf.validateRequest(req)) return again(403, { problem: isCrossSite(req) ? crossSite('save these changes') : expired('changed') });
    const early = refusedBeforeRoute(res);
    if (early) return refusedByDatabase(req, res, early, NOT_CHANGED, (problem) => again(503, { problem }));
    if (!res.locals.author) {
      if (wantsJson(req)) return void res.status(401).json({ error: 'unauthorized', message: SIGNED_OUT });
      return again(401, { problem: SIGNED_OUT, signIn: true });
    }
    /** Deleted while the author was editing: nothing is lost, the text can be published as a new article. */
    const deletedMeanwhile = () =>
      showEditor(req, res, 410, {
        article: null,
        title: typed.title,
        content: typed.content,
        draftId: null,
        problem:
          'This article was deleted while you were editing it, so nothing was saved. Your text is still here: publish it as a new article if you want to keep it.',
      });
    let found: ArticleLookup;
    try {
      found = store.get(id);
    } catch (error) {
      return refusedByDatabase(req, res, error, NOT_CHANGED, (problem) => again(503, { problem }));
    }
    const article = editable(res, found);
    if (isGone(article)) return deletedMeanwhile();
    const conflict = (current: Article, problem: string) =>
      again(409, { article: current, revision: current.revision, conflict: { current, html: markup.render(current).html }, problem });
    const checked = validateArticle(typed);
    if (!checked.ok) return again(400, { article, errors: checked.errors });
    if (typed.revision === null) {
      return conflict(
        article,
        'This form did not say which version of the article it started from, so nothing was saved. The article as it is now is shown below, and your text is in the form: save again to replace it.',
      );
    }
    // The article says exactly this already, at the revision the form names
    // (a form sent again after an unconfirmed save, which carries the saved
    // revision; or Save without a change): nothing to write, only to confirm.
    const unchanged =
      typed.revision === article.revision && article.title === checked.value.title && article.content === checked.value.content;
    let saved = article;
    if (!unchanged) {
      let result;
      try {
        result = store.update(id, { title: checked.value.title, content: checked.value.content, revision: typed.revision });
      } catch (error) {
        return refusedByDatabase(req, res, error, NOT_CHANGED, (problem) => again(503, { article, problem }));
      }
      if (result.kind === 'missing') throw new AppError('not_found', 'There is no article with that id.');
      if (result.kind === 'deleted') return deletedMeanwhile();
      if (result.kind === 'conflict') {
        const { current } = result;
        // The same text saved twice (a retry after a lost answer, a double
        // click): the first save went through, and this one asks for nothing more.
        if (current.title !== checked.value.title || current.content !== checked.value.content) {
          return conflict(
            current,
            'Someone saved a new version of this article while you were editing it, so your changes were not saved. Their version is shown below, and yours is in the form: combine them as you wish, then save again.',
          );
        }
        saved = current;
      } else saved = result.article;
    }
    // Saved now, or by the first of two presses of the same text: committed
    // either way. Unconfirmed, the form comes back at the saved revision: the
    // author's own save is the version their next press builds on, never a 409.
    const againSaved = (problem: string) => again(503, { article: saved, revision: saved.revision, problem });
    if (!(await durable(req, res, EDIT_UNCONFIRMED, againSaved, { revision: saved.revision }))) return;
    const location = `/articles/${id}`;
    if (wantsJson(req)) res.status(200).json({ id, url: location });
    else res.redirect(303, location);
  });

  // --- Deleting ---------------------------------------------------------------

  interface ConfirmPage {
    id: number;
    /** The article as read; null when it could not be (the database refused) or is deleted already. */
    article: Article | null;
    /** The revision the confirmation was opened at, for the hidden field. */
    revision: number | null;
    problem?: string;
    signIn?: boolean;
    /** It changed since the confirmation page was opened. */
    changed?: boolean;
  }
  const showConfirm = (req: Request, res: Response, status: number, page: ConfirmPage) =>
    render(
      res,
      'delete',
      {
        ...page,
        signInHref: page.signIn ? signInPath(`/articles/${page.id}/delete`) : null,
        csrfToken: token(req, res),
      },
      status,
    );
  const deleted = (req: Request, res: Response, id: number) => {
    if (wantsJson(req)) return void res.status(200).json({ id, deleted: true });
    res.redirect(303, `/?deleted=${id}`);
  };

  router.get('/articles/:id/delete', requireAuthor, (req, res) => {
    const id = parseId(req.params.id);
    const article = editable(res, store.get(id));
    if (isGone(article)) return deleted(req, res, id);
    showConfirm(req, res, 200, { id, article, revision: article.revision });
  });

  router.post('/articles/:id/delete', parseBody, async (req, res) => {
    const id = parseId(req.params.id);
    const typed = typedOf(req);
    /** The confirmation again: of the article as read, else (not read, or deleted) of its id, at the revision posted. */
    const again = (status: number, found: ArticleLookup | null, page: Omit<ConfirmPage, 'id' | 'article' | 'revision'>) => {
      const article = found?.kind === 'found' ? found.article : null;
      showConfirm(req, res, status, { id, article, revision: article?.revision ?? typed.revision, ...page });
    };
    let read: ArticleLookup | null = null;
    const refused = (error: unknown) => refusedByDatabase(req, res, error, NOT_DELETED, (problem) => again(503, read, { problem }));
    try {
      read = store.get(id);
    } catch (error) {
      return refused(error);
    }
    const found = read;
    if (found.kind === 'missing') throw new AppError('not_found', 'There is no article with that id.');
    if (!csrf.validateRequest(req)) {
      return again(403, found, {
        problem: isCrossSite(req)
          ? `${CROSS_SITE_MESSAGE} Nothing was deleted.`
          : 'This page had expired, so nothing was deleted. Press Delete again if you still mean it.',
      });
    }
    const early = refusedBeforeRoute(res);
    if (early) return refused(early);
    if (!res.locals.author) {
      const problem = 'You are not signed in (or your session ended), so nothing was deleted.';
      if (wantsJson(req)) return void res.status(401).json({ error: 'unauthorized', message: problem });
      return again(401, found, { problem, signIn: true });
    }
    const article = editable(res, found);
    /** Unconfirmed: the confirmation page again (of its id: the article is gone on the primary); Delete again is safe. */
    const deleteAgain = (problem: string) => again(503, null, { problem });
    if (isGone(article)) {
      // Deleted already (a retry, another tab): what was asked is done, and committed.
      if (!(await durable(req, res, DELETE_UNCONFIRMED, deleteAgain))) return;
      return deleted(req, res, id);
    }
    if (typed.revision === null) {
      // As an edit without one: it may have changed since the page was opened.
      return again(409, found, {
        changed: true,
        problem:
          'This page did not say which version of the article it was opened at, so nothing was deleted. Here it is as it is now: delete it?',
      });
    }
    let result;
    try {
      result = store.delete(id, typed.revision);
    } catch (error) {
      return refused(error);
    }
    if (result.kind === 'missing') throw new AppError('not_found', 'There is no article with that id.');
    if (result.kind === 'conflict') {
      return again(
        409,
        { kind: 'found', article: result.current },
        {
          changed: true,
          problem: 'This article was changed since you opened this page, so it was not deleted. Here it is as it is now: delete it anyway?',
        },
      );
    }
    // Deleted now, or by another press meanwhile (already_deleted): committed either way.
    if (!(await durable(req, res, DELETE_UNCONFIRMED, deleteAgain))) return;
    deleted(req, res, id);
  });

  return router;
}
