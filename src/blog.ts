import type { RequestListener } from 'node:http';
import type { Express } from 'express';
import { pino, type Logger } from 'pino';
import type { ArticleStore } from './article.js';
import type { Config } from './config.js';
import type { AuthRoutesOptions } from './http/auth.js';
import { AppError, isAppError } from './error.js';
import type { CsrfOptions } from './http/csrf.js';
import { createMetrics, type Metrics } from './http/metrics.js';
import { createApp, createMetricsApp, EXEMPT_PATHS } from './http/server.js';
import { ARTICLE_FORM_POST } from './http/articles.js';
import { AUTH_FORM_PATHS } from './http/auth.js';
import { unavailableReply } from './http/refused-early.js';
import { Markdown } from './markdown/markdown.js';
import { readYourWrites, type ReadYourWrites, type ReadYourWritesOptions, type Role } from './ryw/index.js';
import { SqliteArticleStore } from './sqlite/article-store.js';
import { SqliteAuthorStore } from './sqlite/author-store.js';
import { SqliteDatabase } from './sqlite/database.js';
import { markDurability } from './sqlite/durability-mark.js';
import { databaseGeneration } from './sqlite/generation.js';
import type { SearchWorkersOptions } from './sqlite/search-workers.js';

/** What tests and benchmarks may change of the blog they build; production takes none of it. */
export interface BlogOverrides {
  log?: Logger;
  /** Wraps the article store, e.g. to move a fake LiteFS position when a test's write commits. */
  wrapStore?: (store: ArticleStore) => ArticleStore;
  /** Knobs of the read-your-writes layer that the environment does not set (e.g. the poll interval). */
  ryw?: Pick<ReadYourWritesOptions, 'pollMs' | 'now' | 'writePaths' | 'tokens' | 'primaryWaitMs'>;
  /** CSRF token windows (tests shorten them). */
  csrf?: CsrfOptions;
  /** The clock of the database's busy back-off (tests step it instead of sleeping). */
  databaseClock?: () => number;
  /** Open the database read-only (a test of a replica's refusals). */
  readonly?: boolean;
  /** Migrate at start (default, as main.ts does); tests that lay out the database themselves say no. */
  migrateOnStart?: boolean;
  /** The search workers' deadline, pool and queue. */
  search?: Omit<SearchWorkersOptions, 'path'>;
  /** Sign-in limits, clock and scrypt's cost (tests lower it); `trustFlyClientIp` comes from the config (FLY_APP_NAME) unless given. */
  auth?: Pick<AuthRoutesOptions, 'limiter' | 'now' | 'passwordParams' | 'trustFlyClientIp'>;
}

/** The blog, built from its configuration: what main.ts serves, and what tests and benchmarks drive. */
export interface Blog {
  /** Every route; mount it elsewhere or add to it. */
  app: Express;
  /** What a server listens with: pages kept in the page cache answered before Express, the rest by `app`. */
  handler: RequestListener;
  /** The METRICS_PORT listener's app, or null when /metrics is on the public port. */
  metricsApp: Express | null;
  ryw: ReadYourWrites;
  database: SqliteDatabase;
  store: ArticleStore;
  metrics: Metrics;
  /** The role at start (a replica never creates or migrates the database). */
  role: Role;
  log: Logger;
  /** Stops following LiteFS, the search workers and the database. */
  close(): Promise<void>;
}

/**
 * The one wiring function: configuration in, the blog out. src/main.ts adds
 * only listening and signals; tests and benchmarks call this rather than
 * copying it. The blog uses the read-your-writes module exactly as another
 * Express app would (src/ryw/index.ts).
 */
export function createBlog(config: Config, overrides: BlogOverrides = {}): Blog {
  const log = overrides.log ?? pino({ name: 'litefs-ryw', base: { region: config.region, instance: config.instance } });
  const metrics = createMetrics();
  const ryw = readYourWrites({
    database: config.databasePath,
    secrets: config.secrets,
    // LITEFS_API unset: the pos file only (the README's contract), not LiteFS's default address.
    api: config.litefsApi,
    identity: { region: config.region, instance: config.instance },
    waitMs: config.waitMs,
    fallback: config.fallback,
    ttlSeconds: config.ttlSeconds,
    enabled: config.rywEnabled,
    exempt: EXEMPT_PATHS,
    // Every write route says when its transaction committed (markCommitted()): a
    // redirect to sign in, a refusal dressed as a 303, hands out no token.
    tokens: 'when-committed',
    observer: metrics,
    // The store reports a locked database as AppError('busy'), also while it fails fast after one.
    isBusy: (error) => isAppError(error, 'busy'),
    // A bad ?region= gets the blog's own error page; a write with no primary to go to
    // (a failover), the form again with everything typed (else the error page).
    replies: {
      invalid: ({ next }, message) => next(new AppError('invalid', message)),
      unavailable: unavailableReply([ARTICLE_FORM_POST, ...AUTH_FORM_PATHS]),
    },
    // RYW_DURABILITY=standby: a write is answered once a standby has it (res.locals.ryw.confirm() in the write routes).
    durability: {
      mode: config.durability.mode,
      standbys: config.durability.standbys ?? undefined,
      waitMs: config.durability.waitMs,
      // Only ever called while a write waits, long after the database below is open.
      mark: () => markDurability(database),
      onStandbyState: (standby, connected) =>
        log.info({ standby: standby.href }, connected ? 'following a standby' : 'lost a standby; reconnecting'),
    },
    onStreamState: (connected) =>
      log.info(
        { api: config.litefsApi?.href },
        connected ? 'following LiteFS events' : 'LiteFS events lost; polling the pos file while requests wait',
      ),
    ...overrides.ryw,
  });
  metrics.watch(ryw.node);
  metrics.watchStandbys(() => ryw.standbys());
  const { role } = ryw.node.role();
  if (config.durability.mode === 'standby' && config.durability.standbys === null) {
    // Fine on a replica, which never answers a write; a primary could confirm none.
    log.warn(
      { role },
      'RYW_DURABILITY=standby without RYW_STANDBYS: if this instance becomes primary, every write is refused with 503 (nothing can confirm it)',
    );
  }

  // A replica never creates or migrates the database: LiteFS brings both from the primary.
  const database = new SqliteDatabase(config.databasePath, {
    create: role !== 'replica',
    readonly: overrides.readonly ?? false,
    now: overrides.databaseClock,
  });
  const runMigrations = () => database.migrate();
  if (role !== 'replica' && !overrides.readonly && overrides.migrateOnStart !== false) {
    const { from, to } = runMigrations();
    log.info({ from, to, path: config.databasePath }, 'database migrated');
  }

  // Articles are Markdown; the search indexes their text (src/markdown).
  const markup = new Markdown();
  // Searches run on a worker thread with its own read-only connection (SearchWorkers).
  const sqliteStore = new SqliteArticleStore(database, { search: overrides.search, text: markup.text });
  const store = overrides.wrapStore ? overrides.wrapStore(sqliteStore) : sqliteStore;
  const authors = new SqliteAuthorStore(database);
  const { app, handler } = createApp({
    ryw,
    metrics,
    publicMetrics: config.metricsPort === null ? { token: config.metricsToken } : null,
    store,
    markup,
    site: config.site,
    authors,
    sessions: authors,
    auth: { trustFlyClientIp: config.trustFlyClientIp, ...overrides.auth },
    log,
    secrets: config.secrets,
    migrate: config.migrateToken ? { token: config.migrateToken, run: runMigrations } : undefined,
    csrf: overrides.csrf,
    // Keyed by the position and the database's generation; standalone, other processes (`npm run author`) write too.
    pageCache: {
      maxBytes: config.pageCacheMb * 1024 * 1024,
      generation: databaseGeneration(database, { otherWriters: !ryw.node.replicated }),
    },
  });
  const metricsApp = config.metricsPort === null ? null : createMetricsApp(metrics, config.metricsToken);

  return {
    app,
    handler,
    metricsApp,
    ryw,
    database,
    store,
    metrics,
    role,
    log,
    async close() {
      ryw.close();
      await sqliteStore.close();
      database.close();
    },
  };
}
