import { fileURLToPath } from 'node:url';
import cookieParser from 'cookie-parser';
import express, { type ErrorRequestHandler, type Express, type Request } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { ArticleStore } from '../article.js';
import type { Fallback } from '../consistency.js';
import { AppError, isAppError } from '../error.js';
import type { LiteFSNode } from '../litefs/node.js';
import { articleRoutes } from './articles.js';
import { cacheControl } from './cache-control.js';
import { stringCookiesOnly } from './cookies.js';
import { createCsrf, type CsrfOptions } from './csrf.js';
import { errorHandler, notFound, statusOf } from './errors.js';
import { createMetrics, type Metrics } from './metrics.js';
import { metricsRoutes, migrateRoutes, opsRoutes } from './ops.js';
import { readYourWrites, replayWhenBusy } from './read-your-writes.js';
import { sameSiteWrites } from './same-site.js';
import { createRenderer } from './views.js';

export const VIEWS_DIR = fileURLToPath(new URL('../../views', import.meta.url));
export const PUBLIC_DIR = fileURLToPath(new URL('../../public', import.meta.url));
/** Paths served without consistency work: they never wait and never set tokens. */
export const EXEMPT_PATHS = ['/healthz', '/metrics', '/static/', '/favicon.ico'];
/** Requests slower than this are logged: past any wait budget, something stalled. */
export const SLOW_REQUEST_MS = 1_000;

export interface AppOptions {
  node: LiteFSNode;
  store: ArticleStore;
  log: Logger;
  secrets: readonly string[];
  waitMs: number;
  fallback: Fallback;
  ttlSeconds: number;
  /** Read-your-writes on (default) or off; see readYourWrites(). */
  rywEnabled?: boolean;
  /** Enables `POST /migrate/up` with this bearer token. */
  migrate?: { token: string; run: () => { from: number; to: number } };
  writePaths?: readonly string[];
  /** The registry to count into (default: a new one); main passes its own so that a METRICS_PORT listener serves the same counts. */
  metrics?: Metrics;
  /**
   * `/metrics` on this app: open (default), behind a bearer token, or not
   * at all (`null`: it is served on METRICS_PORT by createMetricsApp()).
   */
  publicMetrics?: { token: string | null } | null;
  /** CSRF token windows (tests shorten them); see createCsrf(). */
  csrf?: CsrfOptions;
}

const isExempt = (req: Request) => EXEMPT_PATHS.some((path) => (path.endsWith('/') ? req.path.startsWith(path) : req.path === path));

export function createApp(options: AppOptions): Express {
  const { node, store, log } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  const metrics = options.metrics ?? createMetrics(node);
  const render = createRenderer(VIEWS_DIR, () => {
    const { role } = node.role();
    return { region: node.identity.region, instance: node.identity.instance, role };
  });

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
      const consistency = res.locals.consistency as { timing?: string; waitedMs?: number } | undefined;
      log.warn({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms), decision: consistency?.timing, waitedMs: Math.round(consistency?.waitedMs ?? 0) }, 'slow request');
    });
    next();
  });
  // Tokens are verified by readYourWrites itself (size first, then cookie-parser's
  // signedCookie against every secret), CSRF tokens by csrf-csrf: no signed cookies here.
  app.use(cookieParser());
  app.use(stringCookiesOnly);
  // Before readYourWrites(), so that it sees the token cookie readYourWrites() sets (see cacheControl()).
  app.use(cacheControl());
  app.use(
    readYourWrites({
      node,
      secrets: options.secrets,
      waitMs: options.waitMs,
      fallback: options.fallback,
      ttlSeconds: options.ttlSeconds,
      enabled: options.rywEnabled,
      writePaths: options.writePaths,
      exempt: isExempt,
      observer: metrics,
    }),
  );
  // Every write route: after readYourWrites(), so a replica replays a write and the primary refuses it.
  // The article form's own CSRF check refuses it instead (csrf.ts), so that the form comes back with the text.
  app.use(sameSiteWrites({ formPaths: ['/new'] }));
  app.use('/static', express.static(PUBLIC_DIR, { maxAge: '1h', index: false }));
  app.get('/favicon.ico', (_req, res) => res.sendFile('favicon.svg', { root: PUBLIC_DIR, headers: { 'Content-Type': 'image/svg+xml' } }));
  const publicMetrics = options.publicMetrics === undefined ? { token: null } : options.publicMetrics;
  app.use(opsRoutes(node, publicMetrics === null ? null : { metrics, token: publicMetrics.token }));
  if (options.migrate) app.use(migrateRoutes(options.migrate.token, options.migrate.run));
  app.use(articleRoutes({ store, csrf: createCsrf(options.secrets, options.csrf), render }));
  app.use(notFound);
  app.use(replayWhenBusy());
  app.use(errorHandler(render, log));
  return app;
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
