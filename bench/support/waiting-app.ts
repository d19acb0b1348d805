/**
 * The app wired by createBlog(), as src/main.ts serves it (a replica over a LiteFS
 * directory, the pos-file poller since no LITEFS_API is given), plus what the
 * many-waiters benchmark needs to see from inside: pos-file reads, event-loop
 * delay and memory, over IPC. Started by bench/many-waiters.ts only.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { createBlog } from '../../src/blog.js';
import { loadConfig } from '../../src/config.js';
import type { LiteFSNode } from '../../src/ryw/litefs/litefs-node.js';

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
const blog = createBlog(config, { log: pino({ level: 'silent' }) });
const node = blog.ryw.node as LiteFSNode;
const server = createServer(blog.handler).listen(config.port, '127.0.0.1', () => {
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
    fileReads: node.stats().fileReads,
    waiting: node.stats().waiting,
    eventLoopP99Ms: delay.percentile(99) / 1e6,
    eventLoopMaxMs: delay.max / 1e6,
    heapUsed: memory.heapUsed,
    rss: memory.rss,
  };
  process.send?.({ stats });
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void blog.close().finally(() => process.exit(0));
});
