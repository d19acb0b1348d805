import { fileURLToPath } from 'node:url';
import cookieParser from 'cookie-parser';
import express, { type Express, type Request } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { ArticleStore } from '../article.js';
import type { Fallback } from '../consistency.js';
import type { LiteFSNode } from '../litefs/node.js';
import { articleRoutes } from './articles.js';
import { createCsrf } from './csrf.js';
import { errorHandler, notFound } from './errors.js';
import { createMetrics } from './metrics.js';
import { migrateRoutes, opsRoutes } from './ops.js';
import { readYourWrites, replayWhenBusy } from './read-your-writes.js';
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
}

const isExempt = (req: Request) => EXEMPT_PATHS.some((path) => (path.endsWith('/') ? req.path.startsWith(path) : req.path === path));

export function createApp(options: AppOptions): Express {
  const { node, store, log } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  const metrics = createMetrics(node);
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
  app.use('/static', express.static(PUBLIC_DIR, { maxAge: '1h', index: false }));
  app.get('/favicon.ico', (_req, res) => res.sendFile('favicon.svg', { root: PUBLIC_DIR, headers: { 'Content-Type': 'image/svg+xml' } }));
  app.use(opsRoutes(node, metrics));
  if (options.migrate) app.use(migrateRoutes(options.migrate.token, options.migrate.run));
  app.use(articleRoutes({ store, csrf: createCsrf(options.secrets), render }));
  app.use(notFound);
  app.use(replayWhenBusy());
  app.use(errorHandler(render, log));
  return app;
}
