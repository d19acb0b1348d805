import http from 'node:http';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../tools/cluster/tools.js';
import { DEFAULT_POLL_MS } from '../src/ryw/litefs/position-watcher.js';
import { signToken, tokenPayload, TOKEN_HEADER } from '../src/ryw/token.js';
import { BENCH_SECRET, FakeReplicaDir, startProcess, type AppProcess } from './support/app-process.js';
import { sleep, summarize, type Summary } from './support/stats.js';
import type { WaitingAppRequest, WaitingAppStats } from './support/waiting-app.js';
import type { BenchMode } from './types.js';

/**
 * 4. Many waiters: 1, 100 and 1,000 requests waiting at once on one replica
 * (the pos-file poller, no LiteFS API). From inside the app: pos-file reads
 * per second, event-loop delay, and memory held beyond the idle app; then the
 * time from the position arriving to every waiter's answer.
 */

/** The page every waiter asks for: an article (cheap to render), so the release time is the wake-up, not 1,000 renders of the home page. */
export const WAITER_PATH = '/articles/1';

export interface WaitersRow {
  readonly waiters: number;
  readonly fileReadsPerS: number;
  readonly eventLoopP99Ms: number;
  readonly eventLoopMaxMs: number;
  /** Heap and RSS held while they wait, beyond the same app idle (after GC). */
  readonly extraHeapBytes: number;
  readonly extraRssBytes: number;
  /** From writing the new position to each waiter's whole answer. */
  readonly release: Summary;
  readonly allWaited: boolean;
}

export interface ManyWaitersResult {
  readonly windowS: number;
  readonly pollMs: number;
  readonly rows: readonly WaitersRow[];
}

export async function benchManyWaiters(mode: BenchMode): Promise<ManyWaitersResult> {
  const windowS = mode.quick ? 0.5 : 3;
  let position = 1_000n;
  const dir = new FakeReplicaDir(60, position, { heard: false });
  let app: AppProcess | null = null;
  try {
    app = await startProcess(
      [process.execPath, '--expose-gc', '--import', 'tsx', join(PROJECT_ROOT, 'bench', 'support', 'waiting-app.ts')],
      { DATABASE_URL: `file:${dir.dbPath}`, FLY_REGION: 'ewr', FLY_MACHINE_ID: 'ewr-1', RYW_SECRET: BENCH_SECRET, RYW_WAIT_MS: '30000' },
      { ipc: true },
    );
    const child = app.child;
    const ask = <T>(message: WaitingAppRequest, key: string): Promise<T> =>
      new Promise((resolve) => {
        const onMessage = (reply: Record<string, unknown>) => {
          if (!(key in reply)) return;
          child.off('message', onMessage);
          resolve(reply[key] as T);
        };
        child.on('message', onMessage);
        child.send(message);
      });
    const stats = () => ask<WaitingAppStats>({ cmd: 'stats' }, 'stats');

    const rows: WaitersRow[] = [];
    for (const waiters of [1, 100, 1_000]) {
      await sleep(200);
      const idle = await stats();
      const target = position + 1n;
      const token = signToken(tokenPayload(target, Date.now()), [BENCH_SECRET]);
      const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
      // Settled as they come (a connection cut while waiting is a result, counted below), not left to crash the run unawaited.
      const answers = Array.from({ length: waiters }, () =>
        request(`${app!.url}${WAITER_PATH}`, { [TOKEN_HEADER]: token }, agent).catch((err: Error) => ({
          status: 0,
          decision: `error: ${err.message}`,
          doneAt: performance.now(),
        })),
      );

      const deadline = Date.now() + 30_000;
      while ((await stats()).waiting < waiters) {
        if (Date.now() > deadline) throw new Error(`only ${(await stats()).waiting} of ${waiters} requests ever waited`);
        await sleep(20);
      }
      await ask({ cmd: 'reset' }, 'reset');
      const before = await stats();
      const t0 = performance.now();
      await sleep(windowS * 1000);
      const after = await stats();
      const elapsedS = (performance.now() - t0) / 1000;

      const releasedAt = performance.now();
      dir.setPosition(target);
      position = target;
      const done = await Promise.all(answers);
      agent.destroy();
      const failed = done.filter((d) => d.status !== 200);
      if (failed.length > 0)
        mode.log(`waiters ${waiters}: ${failed.length} answered otherwise, e.g. ${failed[0]!.status} ${failed[0]!.decision ?? ''}`);
      const row: WaitersRow = {
        waiters,
        fileReadsPerS: (after.fileReads - before.fileReads) / elapsedS,
        eventLoopP99Ms: after.eventLoopP99Ms,
        eventLoopMaxMs: after.eventLoopMaxMs,
        extraHeapBytes: after.heapUsed - idle.heapUsed,
        extraRssBytes: after.rss - idle.rss,
        release: summarize(done.map((d) => d.doneAt - releasedAt)),
        allWaited: done.every((d) => d.status === 200 && d.decision === 'waited'),
      };
      mode.log(
        `waiters ${waiters}: ${Math.round(row.fileReadsPerS)} pos reads/s, event loop p99 ${row.eventLoopP99Ms.toFixed(1)} ms, +${Math.round(row.extraHeapBytes / 1024)} KiB heap, release p50 ${row.release.p50.toFixed(1)} ms max ${row.release.max.toFixed(1)} ms`,
      );
      rows.push(row);
    }
    return { windowS, pollMs: DEFAULT_POLL_MS, rows };
  } finally {
    await app?.stop();
    dir.remove();
  }
}

function request(
  url: string,
  headers: Record<string, string>,
  agent: http.Agent,
): Promise<{ status: number; decision: string | null; doneAt: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          decision: /ryw;desc=([a-z]+)/.exec(String(res.headers['server-timing'] ?? ''))?.[1] ?? null,
          doneAt: performance.now(),
        }),
      );
    });
    req.on('error', reject);
  });
}
