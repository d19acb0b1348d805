import type { Server } from 'node:http';
import { createBlog } from './blog.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createServer, DEFAULT_LIMITS, listen, shutdown } from './http/listen.js';

/** Serves the blog that createBlog() wires: the listeners and the signals, nothing else. */
async function main(config: Config): Promise<void> {
  const blog = createBlog(config);
  const { log, role } = blog;
  if (!config.rywEnabled) log.warn('RYW_ENABLED=false: read-your-writes is off; readers may not see their own writes');
  if (config.ephemeralSecret)
    log.warn('RYW_SECRET is not set: using a per-process secret (fine standalone; tokens and forms will not survive a restart)');

  const server: Server = createServer(blog.handler, DEFAULT_LIMITS);
  // Same host as the public listener (every interface): on Fly, only fly.toml's services are public.
  const metricsServer = blog.metricsApp === null ? null : createServer(blog.metricsApp, DEFAULT_LIMITS);
  const fatal = (error: unknown) => {
    log.fatal({ err: error }, 'could not listen');
    process.exit(1);
  };
  try {
    const { port } = await listen(server, config.port);
    log.info(
      { port, role, database: config.databasePath, litefsApi: config.litefsApi?.href ?? null },
      `listening on http://localhost:${port}`,
    );
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
    log.info({ signal }, 'shutting down: answering the requests in flight');
    const servers = [server, ...(metricsServer ? [metricsServer] : [])];
    void Promise.all(servers.map((s) => shutdown(s)))
      // Searches still running were answered or cut with their connections; stop their workers.
      .then(() => blog.close())
      .finally(() => process.exit(0));
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
