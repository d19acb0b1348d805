import type { RequestListener } from 'node:http';
import { fileURLToPath } from 'node:url';
import cookieParser from 'cookie-parser';
import express, { type ErrorRequestHandler, type Express } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { ArticleMarkup, ArticleStore } from '../article.js';
import type { AuthorStore, SessionStore } from '../author.js';
import { AppError, isAppError } from '../error.js';
import type { ReadYourWrites } from '../ryw/index.js';
import type { Site } from '../site.js';
import { ARTICLE_FORM_POST, articleRoutes, keepFormsWhenSessionBusy } from './articles.js';
import { AUTH_FORM_PATHS, authRoutes, SESSION_COOKIE, sessionMiddleware, withSignedInAuthor, type AuthRoutesOptions } from './auth.js';
import { cacheControl } from './cache-control.js';
import { stringCookiesOnly } from './cookies.js';
import { createCsrf, type CsrfOptions } from './csrf.js';
import { errorHandler, notFound, statusOf } from './errors.js';
import { feedRoutes } from './feeds.js';
import type { Metrics } from './metrics.js';
import { metricsRoutes, migrateRoutes, opsRoutes } from './ops.js';
import { CAUGHT_UP_COOKIE, withCaughtUp } from './notice.js';
import { precompressedStatic } from './compression-static.js';
import { createPageCache } from './page-cache.js';
import { sameSiteWrites } from './same-site.js';
import { withSite } from './site.js';
import { createRenderer } from './views.js';

export const VIEWS_DIR = fileURLToPath(new URL('../../views', import.meta.url));
export const PUBLIC_DIR = fileURLToPath(new URL('../../public', import.meta.url));
/** Paths served without consistency work: they never wait and never set tokens. */
export const EXEMPT_PATHS = ['/healthz', '/metrics', '/static/', '/favicon.ico'];
/** How long browsers and shared caches may keep a static file without asking again. */
export const STATIC_CACHE_CONTROL = 'public, max-age=3600';
/** Requests slower than this are logged: past any wait budget, something stalled. */
export const SLOW_REQUEST_MS = 1_000;

export interface AppOptions {
  /** The read-your-writes layer (src/ryw), built with EXEMPT_PATHS and the metrics as its observer: see createBlog(). */
  ryw: ReadYourWrites;
  store: ArticleStore;
  /** Articles' Markdown to HTML and text (src/markdown). */
  markup: ArticleMarkup;
  /** The site's title, description and address (SITE_*). */
  site: Site;
  /** Authors and their sessions (one SqliteAuthorStore holds both). */
  authors: AuthorStore;
  sessions: SessionStore;
  /** Sign-in knobs: limits, the clock, scrypt's cost (tests lower it), whether to believe `Fly-Client-IP`. */
  auth?: Pick<AuthRoutesOptions, 'limiter' | 'now' | 'passwordParams' | 'trustFlyClientIp'>;
  log: Logger;
  /** RYW_SECRET: CSRF keys are derived from it. */
  secrets: readonly string[];
  /** Enables `POST /migrate/up` with this bearer token. */
  migrate?: { token: string; run: () => { from: number; to: number } };
  /** The registry the layer counts into; a METRICS_PORT listener serves the same one. */
  metrics: Metrics;
  /**
   * `/metrics` on this app: open (default), behind a bearer token, or not
   * at all (`null`: it is served on METRICS_PORT by createMetricsApp()).
   */
  publicMetrics?: { token: string | null } | null;
  /** CSRF token windows (tests shorten them); see createCsrf(). */
  csrf?: CsrfOptions;
  /**
   * The rendered-page cache (page-cache.ts): its bound (PAGE_CACHE_MB; 0
   * keeps nothing) and the database's generation (see databaseGeneration()).
   * Without it nothing is cached.
   */
  pageCache?: { maxBytes: number; generation: () => string | null };
}

/** The blog's app, and what a server listens with: cached pages answered before Express (PageCache.answer()), the rest by the app. */
export interface BlogApp {
  app: Express;
  handler: RequestListener;
}

export function createApp(options: AppOptions): BlogApp {
  const { ryw, store, log, metrics } = options;
  const { node } = ryw;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  const csrf = createCsrf(options.secrets, options.csrf);
  const pages = createPageCache({
    maxBytes: options.pageCache?.maxBytes ?? 0,
    node,
    generation: options.pageCache?.generation ?? (() => null),
    site: options.site,
    // A signed-in visitor's page names them, and a reloaded stale page says "caught up" to that reader alone.
    lane: { immediate: (req) => ryw.immediate(req), visitorCookies: [SESSION_COOKIE, CAUGHT_UP_COOKIE] },
  });
  metrics.watchPageCache(pages.stats);
  // Every page's nav says who is signed in (res.locals.author, from sessionMiddleware()),
  // and its head the site's title and description (withSite()).
  // A stale page reloaded once its region caught up says so (withCaughtUp()).
  // A page with nothing of one visitor's is marked shareable (pages.shareable()), as the route gave it.
  const render = pages.shareable(
    withSite(
      withCaughtUp(
        withSignedInAuthor(
          createRenderer(VIEWS_DIR, () => {
            const { role } = node.role();
            return { region: node.identity.region, instance: node.identity.instance, role };
          }),
          csrf,
        ),
      ),
      options.site,
    ),
  );

  app.use(
    helmet({
      contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } },
    }),
  );
  app.use((req, res, next) => {
    const started = performance.now();
    res.once('finish', () => {
      const ms = performance.now() - started;
      if (ms < SLOW_REQUEST_MS) return;
      const consistency = res.locals.ryw;
      log.warn(
        {
          method: req.method,
          path: req.path,
          status: res.statusCode,
          ms: Math.round(ms),
          decision: consistency?.timing,
          waitedMs: Math.round(consistency?.waitedMs ?? 0),
        },
        'slow request',
      );
    });
    next();
  });
  // The read-your-writes layer reads its own cookie from the Cookie header; CSRF
  // tokens are verified by csrf-csrf: no signed cookies here.
  app.use(cookieParser());
  app.use(stringCookiesOnly);
  // Before readYourWrites(), so that it sees the token cookie readYourWrites() sets (see cacheControl()).
  app.use(cacheControl());
  app.use(ryw.middleware);
  // Every write route: after readYourWrites(), so a replica replays a write and the primary refuses it.
  // The article form's own CSRF check refuses it instead (csrf.ts), so that the form comes back with the text.
  app.use(sameSiteWrites({ formPaths: [ARTICLE_FORM_POST, ...AUTH_FORM_PATHS] }));
  // From memory, compressed once at start; anything else in public/ from disk.
  app.use('/static', precompressedStatic(PUBLIC_DIR, STATIC_CACHE_CONTROL).middleware);
  app.use('/static', express.static(PUBLIC_DIR, { maxAge: '1h', index: false }));
  app.get('/favicon.ico', (_req, res) => res.sendFile('favicon.svg', { root: PUBLIC_DIR, headers: { 'Content-Type': 'image/svg+xml' } }));
  const publicMetrics = options.publicMetrics === undefined ? { token: null } : options.publicMetrics;
  app.use(opsRoutes(node, publicMetrics === null ? null : { metrics, token: publicMetrics.token }));
  if (options.migrate) app.use(migrateRoutes(options.migrate.token, options.migrate.run));
  // Public, the same for every reader: before the session lookup.
  app.use(feedRoutes({ store, markup: options.markup, site: options.site }));
  // After readYourWrites(): on a replica, a reader who just signed in (on the
  // primary) carries a token, which the middleware has waited for, so the
  // session row is here when this looks it up. After the static files and
  // ops routes, which need no session.
  app.use(sessionMiddleware({ sessions: options.sessions, render, csrf, now: options.auth?.now }));
  // After every decision: the read-your-writes one (a reader behind has waited or
  // been replayed) and who the visitor is. Before the routes, which it skips on a hit.
  app.use(pages.middleware);
  // An article form posted while the database is locked comes back with its text (503), not as an error page.
  app.use(keepFormsWhenSessionBusy);
  app.use(authRoutes({ authors: options.authors, sessions: options.sessions, csrf, render, ...options.auth }));
  app.use(articleRoutes({ store, csrf, render, markup: options.markup }));
  app.use(notFound);
  app.use(ryw.busyHandler);
  app.use(errorHandler(render, log));
  const handler: RequestListener = (req, res) => {
    let answered = false;
    try {
      answered = pages.answer(req, res);
    } catch (error) {
      // Never expected; outside Express, a throw would end the process: the app answers instead.
      log.error({ err: error, method: req.method, url: req.url }, 'page cache lane failed');
      if (res.headersSent) return void res.destroy();
    }
    if (!answered) app(req, res);
  };
  return { app, handler };
}

/**
 * The app of the METRICS_PORT listener: `GET /metrics` (behind `token` when
 * set) and nothing else, so that the public port need not serve it.
 */
export function createMetricsApp(metrics: Metrics, token: string | null): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(metricsRoutes({ metrics, token }));
  app.use(notFound);
  const plainError: ErrorRequestHandler = (error: unknown, _req, res, next) => {
    if (res.headersSent) return next(error);
    const appError = isAppError(error) ? error : new AppError('internal', 'Something went wrong.');
    res.status(statusOf(appError)).set('Cache-Control', 'no-store').type('text/plain').send(`${appError.message}\n`);
  };
  app.use(plainError);
  return app;
}
