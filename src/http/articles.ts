import { Router, type Response } from 'express';
import { excerptOf, mayEdit, type ArticleMarkup, type ArticleStore } from '../article.js';
import { AppError } from '../error.js';
import { articleFormRoutes, renderGone } from './article-forms.js';
import { pageLinks, pageRequest, parseId, queryString } from './article-params.js';
import type { Csrf } from './csrf.js';
import type { Render } from './views.js';

export {
  ARTICLE_FORM_POST,
  DRAFT_FIELD,
  FORM_BODY_LIMIT,
  REVISION_FIELD,
  keepFormsWhenSessionBusy,
  newDraftId,
  renderGone,
} from './article-forms.js';

export interface ArticleRoutesOptions {
  store: ArticleStore;
  csrf: Csrf;
  /** The views' renderer, with the site (withSite()) and the signed-in author (withSignedInAuthor()) on every page. */
  render: Render;
  /** Markdown to HTML and text (src/markdown). */
  markup: ArticleMarkup;
}

/** The blog: the list and search, article pages, and the forms to write, edit and delete. */
export function articleRoutes({ store, csrf, render, markup }: ArticleRoutesOptions): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    const search = queryString(req, 'search')?.trim() ?? '';
    const page = pageRequest(req);
    if (!search) {
      const articles = store.list(page);
      // After a deletion, the author lands here: say so, once it has really happened here.
      const deletedId = queryString(req, 'deleted');
      const deleted = deletedId !== undefined && /^[1-9][0-9]{0,14}$/.test(deletedId) && store.get(Number(deletedId)).kind === 'deleted';
      return render(res, 'home', { search, articles, links: pageLinks(articles), deleted, firstPage: !page.before && !page.after });
    }
    const results = await store.search(search, page);
    // The search as read (no control characters, cut when too long), also in the search box.
    render(res, 'search', {
      search: results.text,
      results,
      links: pageLinks(results, { search: results.text }),
      paged: Boolean(page.before || page.after),
    });
  });

  const showArticle = (res: Response, rawId: unknown) => {
    const found = store.get(parseId(rawId));
    if (found.kind === 'missing') throw new AppError('not_found', 'There is no article with that id.');
    if (found.kind === 'deleted') return renderGone(render, res, found.deleted);
    const { article } = found;
    const { html, text } = markup.render(article);
    render(res, 'article', { article, html, description: excerptOf(text, 200), mayEdit: mayEdit(article, res.locals.author) });
  };
  router.get('/articles/:id', (req, res) => showArticle(res, req.params.id));
  // The Go app's URLs: /articles?id=N.
  router.get('/articles', (req, res) => showArticle(res, queryString(req, 'id')));

  router.use(articleFormRoutes({ store, csrf, render, markup }));
  return router;
}
