/**
 * The app wired exactly as src/main.ts wires it (a replica over a LiteFS
 * directory, the pos-file poller since no LITEFS_API is given), plus what the
 * many-waiters benchmark needs to see from inside: pos-file reads, event-loop
 * delay and memory, over IPC. Started by bench/many-waiters.ts only.
 */
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { createApp } from '../../src/http/server.js';
import { liteFSFiles, readPosition } from '../../src/litefs/files.js';
import { LiteFSNode } from '../../src/litefs/node.js';
import { PositionWatcher } from '../../src/litefs/position-watcher.js';
import { SqliteArticleStore } from '../../src/sqlite/article-store.js';
import { SqliteDatabase } from '../../src/sqlite/database.js';

export type WaitingAppRequest = { readonly cmd: 'stats' } | { readonly cmd: 'reset' };
export interface WaitingAppStats {
  readonly fileReads: number;
  readonly waiting: number;
  readonly eventLoopP99Ms: number;
  readonly eventLoopMaxMs: number;
  readonly heapUsed: number;
  readonly rss: number;
}

const config = loadConfig();
const files = liteFSFiles(config.databaseDir, config.databaseName);
const watcher = new PositionWatcher({ readPosition: () => readPosition(files) });
const node = new LiteFSNode({ region: config.region, instance: config.instance }, files, watcher, config.onLiteFS);
const database = new SqliteDatabase(config.databasePath, { create: false });
const app = createApp({
  node,
  store: new SqliteArticleStore(database),
  log: pino({ level: 'silent' }),
  secrets: config.secrets,
  waitMs: config.waitMs,
  fallback: config.fallback,
  ttlSeconds: config.ttlSeconds,
  rywEnabled: config.rywEnabled,
});
const server = app.listen(config.port, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ listening: port });
});
// Connections that wait are many and long: the defaults would not close them, but say so.
server.keepAliveTimeout = 60_000;

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();

process.on('message', (message: WaitingAppRequest) => {
  if (message.cmd === 'reset') {
    delay.reset();
    process.send?.({ reset: true });
    return;
  }
  // Collect garbage first when allowed (--expose-gc): memory then means what is still held.
  (globalThis as { gc?: () => void }).gc?.();
  const memory = process.memoryUsage();
  const stats: WaitingAppStats = {
    fileReads: watcher.fileReads,
    waiting: watcher.waiting,
    eventLoopP99Ms: delay.percentile(99) / 1e6,
    eventLoopMaxMs: delay.max / 1e6,
    heapUsed: memory.heapUsed,
    rss: memory.rss,
  };
  process.send?.({ stats });
});
process.on('SIGTERM', () => {
  watcher.close();
  server.close();
  server.closeAllConnections();
  database.close();
  process.exit(0);
});
