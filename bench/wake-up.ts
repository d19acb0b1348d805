import http from 'node:http';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../tools/cluster/tools.js';
import { TOKEN_HEADER } from '../src/ryw/token.js';
import { formatTxid } from '../src/ryw/position.js';
import { liteFSFiles, readPosition } from '../src/ryw/litefs/files.js';
import { PositionWatcher } from '../src/ryw/litefs/position-watcher.js';
import { APP_COMMAND, BENCH_SECRET, startProcess, type AppProcess } from './support/app-process.js';
import { BENCH_WAIT_MS, type BenchCluster, type WrittenArticle } from './support/bench-cluster.js';
import { LiteFSEvents } from './support/litefs-events.js';
import { sleep, summarize, type Summary } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 3. Wake-up latency: a write on the primary, then at once a read with its
 * token on the ewr replica (lagging behind by a set amount). Measured from the
 * moment ewr's LiteFS announces the write's TXID on its `/events` stream to
 * the read's whole answer, for four ways of waiting, all on the same replica
 * and its same mount, taking turns write by write.
 *
 * That answer is split in two: our own PositionWatcher, run in this process
 * on a third subscription to the same stream, notes when it wakes a waiter
 * for each write (arrival → woken: the waiting itself), and the rest is the
 * answer after the wake (woken → answer: the page, which a woken read pays
 * like any other, plus the first read of the changed database).
 */

export const WAKE_MECHANISMS = [
  'ours: LiteFS /events',
  'ours: pos-file poller (5 ms)',
  'LiteFS proxy (1 ms poll)',
  'litefs-js 2.0.2 (30 ms poll)',
] as const;
export type WakeMechanism = (typeof WAKE_MECHANISMS)[number];
/** Writes per mechanism and lag: 100 in a full run, for a p99 that is not simply the slowest sample. */
export const WAKE_SAMPLES = { quick: 3, full: 100 } as const;
/** Every mechanism is asked for the same small page, so rendering weighs the same. */
const PATH = '/articles/1';

export interface WakeRow {
  readonly mechanism: WakeMechanism;
  readonly lagMs: number;
  readonly samples: number;
  /** Answers after the position arrived, served from the replica (200). */
  readonly served: number;
  /** Answers that gave up and replayed (409) or failed, and when, relative to the arrival. */
  readonly gaveUp: number;
  readonly gaveUpHow: string;
  /** Arrival → answer, over served answers (ms). */
  readonly wake: Summary;
  /** The same read again once the replica has it: the mechanism's cost with nothing to wait for. */
  readonly fresh: Summary;
  /** Request sent → answer, over every sample. */
  readonly total: Summary;
  /** Arrival → our PositionWatcher (in the bench process, same stream) woke a waiter for the same write (ms). */
  readonly woken: Summary;
  /** That wake → this mechanism's answer, over served answers (ms): what is left after the waiting. */
  readonly afterWake: Summary;
}

export interface WakeUpResult {
  readonly lags: readonly number[];
  readonly samplesPerCell: number;
  readonly rows: readonly WakeRow[];
}

interface Target {
  readonly mechanism: WakeMechanism;
  readonly url: string;
  readonly headers: (w: WrittenArticle) => Record<string, string>;
}

export async function benchWakeUp(bench: BenchCluster, mode: BenchMode): Promise<WakeUpResult> {
  const { cluster } = bench;
  const lags = [100, 20];
  const samplesPerCell = mode.quick ? WAKE_SAMPLES.quick : WAKE_SAMPLES.full;
  const ewr = cluster.nodes.find((n) => n.region === 'ewr')!;
  const events = new LiteFSEvents(ewr.litefsApiUrl);
  const sidecars: AppProcess[] = [];
  const ewrFiles = liteFSFiles(ewr.mountDir, 'app.db');
  const watcher = new PositionWatcher({
    readPosition: () => readPosition(ewrFiles),
    events: { api: new URL(ewr.litefsApiUrl), database: 'app.db' },
  });
  try {
    await events.connected;
    events.seed((await ewr.position())?.txid ?? 0n);
    const streamDeadline = performance.now() + 10_000;
    while (!watcher.streaming) {
      if (performance.now() > streamDeadline) throw new Error(`wake-up: no LiteFS /events stream from ${ewr.litefsApiUrl} within 10 s`);
      await sleep(10);
    }
    // A second copy of our app on ewr's mount without LITEFS_API: it polls the pos file.
    const poller = await startProcess(APP_COMMAND, {
      DATABASE_URL: `file:${join(ewr.mountDir, 'app.db')}`,
      FLY_REGION: 'ewr',
      FLY_MACHINE_ID: 'ewr-2',
      RYW_SECRET: BENCH_SECRET,
      RYW_WAIT_MS: String(BENCH_WAIT_MS),
    });
    sidecars.push(poller);
    const litefsJs = await startProcess([process.execPath, '--import', 'tsx', join(PROJECT_ROOT, 'bench', 'support', 'litefs-js-app.ts')], {
      LITEFS_DIR: ewr.mountDir,
      DATABASE_FILENAME: 'app.db',
    });
    sidecars.push(litefsJs);

    const targets: Target[] = [
      { mechanism: 'ours: LiteFS /events', url: `${ewr.appUrl}${PATH}`, headers: (w) => ({ [TOKEN_HEADER]: w.token }) },
      { mechanism: 'ours: pos-file poller (5 ms)', url: `${poller.url}${PATH}`, headers: (w) => ({ [TOKEN_HEADER]: w.token }) },
      {
        mechanism: 'LiteFS proxy (1 ms poll)',
        url: `${ewr.proxyUrl}${PATH}`,
        headers: (w) => ({ cookie: `__txid=${formatTxid(w.txid)}` }),
      },
      { mechanism: 'litefs-js 2.0.2 (30 ms poll)', url: `${litefsJs.url}${PATH}`, headers: (w) => ({ cookie: `txnum=${w.txid}` }) },
    ];
    const agent = new http.Agent({ keepAlive: true });
    // Warm every path once (JIT, connections) before anything counts.
    for (const t of targets) await get(t.url, {}, agent);

    const rows: WakeRow[] = [];
    for (const lagMs of lags) {
      await cluster.lag('ewr', lagMs);
      const cells = new Map<
        WakeMechanism,
        { wake: number[]; fresh: number[]; total: number[]; woken: number[]; afterWake: number[]; gaveUp: string[]; served: number }
      >();
      for (const t of targets) cells.set(t.mechanism, { wake: [], fresh: [], total: [], woken: [], afterWake: [], gaveUp: [], served: 0 });
      for (let i = 0; i < samplesPerCell; i++) {
        for (const t of targets) {
          const cell = cells.get(t.mechanism)!;
          const written = await bench.write();
          const arrived = events.reached(written.txid);
          const woken = watcher.waitFor(written.txid, 2 * BENCH_WAIT_MS).then((ok) => (ok ? performance.now() : NaN));
          const sentAt = performance.now();
          const answer = await get(t.url, t.headers(written), agent);
          const arrivedAt = await arrived;
          const wokenAt = await woken;
          if (arrivedAt === -Infinity || arrivedAt < sentAt) {
            mode.log(`wake-up ${t.mechanism}: ewr already had TXID ${written.txid} when the read was sent; sample dropped`);
            continue;
          }
          cell.total.push(answer.doneAt - sentAt);
          // NaN: the watcher missed the write for a whole second (its stream was down); nothing to split.
          if (!Number.isNaN(wokenAt)) cell.woken.push(wokenAt - arrivedAt);
          if (answer.status === 200) {
            cell.served++;
            cell.wake.push(answer.doneAt - arrivedAt);
            if (!Number.isNaN(wokenAt)) cell.afterWake.push(answer.doneAt - wokenAt);
          } else {
            cell.gaveUp.push(`${answer.status} at ${Math.round(answer.doneAt - arrivedAt)} ms`);
          }
          const again = await get(t.url, t.headers(written), agent);
          if (again.status === 200) cell.fresh.push(again.doneAt - again.sentAt);
          await sleep(10);
        }
      }
      for (const t of targets) {
        const cell = cells.get(t.mechanism)!;
        const row: WakeRow = {
          mechanism: t.mechanism,
          lagMs,
          samples: cell.total.length,
          served: cell.served,
          gaveUp: cell.gaveUp.length,
          gaveUpHow: describeGiveUps(cell.gaveUp),
          wake: summarize(cell.wake),
          fresh: summarize(cell.fresh),
          total: summarize(cell.total),
          woken: summarize(cell.woken),
          afterWake: summarize(cell.afterWake),
        };
        mode.log(
          `wake-up lag ${lagMs} ms, ${t.mechanism}: served ${row.served}/${row.samples}, wake p50 ${row.wake.p50.toFixed(2)} p99 ${row.wake.p99.toFixed(2)} max ${row.wake.max.toFixed(2)} ms (arrival → woken p50 ${row.woken.p50.toFixed(2)} p99 ${row.woken.p99.toFixed(2)}; woken → answer p50 ${row.afterWake.p50.toFixed(2)} p99 ${row.afterWake.p99.toFixed(2)}; fresh p50 ${row.fresh.p50.toFixed(2)} p99 ${row.fresh.p99.toFixed(2)})${row.gaveUp ? `; gave up ${row.gaveUpHow}` : ''}`,
        );
        rows.push(row);
      }
    }
    agent.destroy();
    return { lags, samplesPerCell, rows };
  } finally {
    await cluster.heal('ewr');
    watcher.close();
    events.close();
    for (const s of sidecars) await s.stop();
  }
}

/** "409 ×40 (−72 to −61 ms)": status, count, and when relative to the arrival. */
function describeGiveUps(list: readonly string[]): string {
  const byStatus = new Map<string, number[]>();
  for (const item of list) {
    const [status, , at] = item.split(' ');
    byStatus.set(status!, [...(byStatus.get(status!) ?? []), Number(at)]);
  }
  return [...byStatus]
    .map(([status, ats]) => `${status} ×${ats.length} (${Math.min(...ats)} to ${Math.max(...ats)} ms from arrival)`)
    .join(', ');
}

function get(url: string, headers: Record<string, string>, agent: http.Agent): Promise<{ status: number; sentAt: number; doneAt: number }> {
  return new Promise((resolve, reject) => {
    const sentAt = performance.now();
    const req = http.get(url, { headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sentAt, doneAt: performance.now() }));
    });
    req.on('error', reject);
  });
}
