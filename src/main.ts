import type { Server } from 'node:http';
import { pino } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createServer, DEFAULT_LIMITS, listen } from './http/listen.js';
import { createMetrics } from './http/metrics.js';
import { createApp, createMetricsApp } from './http/server.js';
import { liteFSFiles, readPosition } from './litefs/files.js';
import { LiteFSNode } from './litefs/node.js';
import { PositionWatcher } from './litefs/position-watcher.js';
import { SqliteArticleStore } from './sqlite/article-store.js';
import { SqliteDatabase } from './sqlite/database.js';
import { migrate } from './sqlite/migrations.js';

/** The only place that wires the pieces together. */
async function main(config: Config): Promise<void> {
  const log = pino({ name: 'litefs-ryw', base: { region: config.region, instance: config.instance } });
  const files = liteFSFiles(config.databaseDir, config.databaseName);
  const watcher = new PositionWatcher({
    readPosition: () => readPosition(files),
    events: config.litefsApi
      ? {
          api: config.litefsApi,
          database: config.databaseName,
          onState: (connected) => log.info({ api: config.litefsApi?.href }, connected ? 'following LiteFS events' : 'LiteFS events lost; polling the pos file while requests wait'),
        }
      : undefined,
  });
  const node = new LiteFSNode({ region: config.region, instance: config.instance }, files, watcher, config.onLiteFS);
  const { role } = node.role();
  if (!config.rywEnabled) log.warn('RYW_ENABLED=false: read-your-writes is off; readers may not see their own writes');
  if (config.ephemeralSecret) log.warn('RYW_SECRET is not set: using a per-process secret (fine standalone; tokens and forms will not survive a restart)');

  // A replica never creates or migrates the database: LiteFS brings both from the primary.
  const database = new SqliteDatabase(config.databasePath, { create: role !== 'replica' });
  const runMigrations = () => database.migrate();
  if (role !== 'replica') {
    const { from, to } = runMigrations();
    log.info({ from, to, path: config.databasePath }, 'database migrated');
  }

  // Searches run on a worker thread with its own read-only connection (SearchWorkers).
  const store = new SqliteArticleStore(database);
  const metrics = createMetrics(node);
  const app = createApp({
    node,
    metrics,
    publicMetrics: config.metricsPort === null ? { token: config.metricsToken } : null,
    store,
    log,
    secrets: config.secrets,
    waitMs: config.waitMs,
    fallback: config.fallback,
    ttlSeconds: config.ttlSeconds,
    rywEnabled: config.rywEnabled,
    migrate: config.migrateToken ? { token: config.migrateToken, run: runMigrations } : undefined,
  });

  const server: Server = createServer(app, DEFAULT_LIMITS);
  // Same host as the public listener (every interface): on Fly, only fly.toml's services are public.
  const metricsServer = config.metricsPort === null ? null : createServer(createMetricsApp(metrics, config.metricsToken), DEFAULT_LIMITS);
  const fatal = (error: unknown) => {
    log.fatal({ err: error }, 'could not listen');
    process.exit(1);
  };
  try {
    const { port } = await listen(server, config.port);
    log.info({ port, role, database: config.databasePath, litefsApi: config.litefsApi?.href ?? null }, `listening on http://localhost:${port}`);
    if (metricsServer) {
      const { port: metricsPort } = await listen(metricsServer, config.metricsPort!);
      log.info({ port: metricsPort }, `metrics on http://localhost:${metricsPort}/metrics`);
    }
  } catch (error) {
    fatal(error);
  }
  server.on('error', fatal);
  metricsServer?.on('error', fatal);

  const stop = (signal: string) => {
    log.info({ signal }, 'shutting down');
    watcher.close();
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    server.close(() => {
      // Searches still running were refused with the connections; stop their workers.
      void store.close().finally(() => {
        database.close();
        process.exit(0);
      });
    });
    server.closeAllConnections();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`litefs-ryw: ${error.message}`);
  process.exit(1);
}
await main(config);
