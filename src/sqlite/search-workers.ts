import { Worker } from 'node:worker_threads';
import { AppError, type ErrorCode } from '../error.js';
import type { SearchPage, SearchQuery } from './search-statement.js';

/**
 * The longest a search may run. better-sqlite3 runs a statement on the
 * thread that calls it, so searches run on worker threads (this module) and
 * the event loop, health checks included (Fly's check gives up after 2 s),
 * never waits for one; past this, the worker is stopped and replaced and the
 * reader told (503). See docs/decisions/0006-search-off-the-main-thread.md.
 */
export const SEARCH_DEADLINE_MS = 2_000;
/** Worker threads, each with its own read-only connection: one leaves the other core to the event loop. */
export const SEARCH_WORKERS = 1;
/** Searches waiting for a worker beyond this are refused (503) at once rather than queued. */
export const MAX_QUEUED_SEARCHES = 16;
/** The longest a search waits for a worker (to finish another search, or to start) before it is refused (503). */
export const MAX_SEARCH_WAIT_MS = 2_000;

/** `workerData` of a search worker (src/sqlite/search-worker.ts). */
export interface SearchWorkerData {
  path: string;
}
export interface SearchRequest extends SearchQuery {
  id: number;
}
export type SearchReply =
  | { type: 'ready' }
  | { type: 'hits'; id: number; page: SearchPage }
  /** What the store would throw as an AppError (busy, unavailable). */
  | { type: 'refused'; id: number; code: ErrorCode; message: string }
  /** A bug. */
  | { type: 'failed'; id: number; message: string; stack?: string };

export interface SearchWorkersOptions {
  /** The SQLite file, opened read-only (and only once it exists) by each worker. */
  path: string;
  deadlineMs?: number;
  workers?: number;
  maxQueued?: number;
  maxWaitMs?: number;
}

interface Job {
  id: number;
  query: SearchQuery;
  resolve(page: SearchPage): void;
  reject(error: Error): void;
  timer?: NodeJS.Timeout;
}

interface Slot {
  worker: Worker | null;
  ready: boolean;
  job: Job | null;
}

// Under tsx (npm start) and vitest this module is TypeScript, and so is the
// worker beside it; built (dist/), both are JavaScript.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './search-worker.ts' : './search-worker.js', import.meta.url);

function spawn(data: SearchWorkerData): Worker {
  if (!WORKER_URL.pathname.endsWith('.ts')) return new Worker(WORKER_URL, { workerData: data });
  // Node 20 loads a worker's entry before the hooks of `--import tsx` in its
  // execArgv are in place, and fails on .ts: register them first, then import it.
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}

const timedOut = () => new AppError('unavailable', 'This search took too long and was stopped. Try again with fewer or less common words.');
const overloaded = () => new AppError('unavailable', 'Too many searches are running right now. Try again in a few seconds.');

/**
 * A small pool of search workers: one search at a time per worker, the rest
 * queued (at most MAX_QUEUED_SEARCHES, each for at most MAX_SEARCH_WAIT_MS);
 * a search past its deadline gets its worker terminated and replaced.
 */
export class SearchWorkers {
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly deadlineMs: number;
  private readonly maxQueued: number;
  private readonly maxWaitMs: number;
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: SearchWorkersOptions) {
    this.deadlineMs = options.deadlineMs ?? SEARCH_DEADLINE_MS;
    this.maxQueued = options.maxQueued ?? MAX_QUEUED_SEARCHES;
    this.maxWaitMs = options.maxWaitMs ?? MAX_SEARCH_WAIT_MS;
    this.slots = Array.from({ length: options.workers ?? SEARCH_WORKERS }, () => ({ worker: null, ready: false, job: null }));
  }

  /** Runs the search on a worker; rejects with AppError('busy' | 'unavailable') as the store's reads do. */
  search(query: SearchQuery): Promise<SearchPage> {
    if (this.closed) return Promise.reject(new AppError('unavailable', 'The server is shutting down.'));
    if (this.queue.length >= this.maxQueued) return Promise.reject(overloaded());
    return new Promise<SearchPage>((resolve, reject) => {
      const job: Job = { id: this.nextId++, query, resolve, reject };
      // A reader gets an answer within MAX_SEARCH_WAIT_MS + SEARCH_DEADLINE_MS.
      job.timer = setTimeout(() => {
        this.queue.splice(this.queue.indexOf(job), 1);
        reject(overloaded());
      }, this.maxWaitMs);
      this.queue.push(job);
      this.pump();
    });
  }

  /** Stops every worker; searches still waiting or running are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const refusal = new AppError('unavailable', 'The server is shutting down.');
    for (const job of this.queue.splice(0)) this.settle(job, refusal);
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.job) this.settle(slot.job, refusal);
        const worker = slot.worker;
        Object.assign(slot, { worker: null, ready: false, job: null });
        await worker?.terminate();
      }),
    );
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.job || this.queue.length === 0) continue;
      if (!slot.worker) this.start(slot);
      if (!slot.ready) continue;
      const job = this.queue.shift()!;
      clearTimeout(job.timer);
      slot.job = job;
      job.timer = setTimeout(() => this.overrun(slot, job), this.deadlineMs);
      slot.worker!.postMessage({ ...job.query, id: job.id } satisfies SearchRequest);
    }
    // An idle worker does not keep the process alive (a test's, a benchmark's); a busy one does, until it answers.
    for (const slot of this.slots) {
      if (slot.job || (slot.worker && this.queue.length > 0)) slot.worker?.ref();
      else slot.worker?.unref();
    }
  }

  private start(slot: Slot): void {
    const worker = spawn({ path: this.options.path });
    Object.assign(slot, { worker, ready: false, job: null });
    worker.on('message', (reply: SearchReply) => {
      if (slot.worker !== worker) return;
      if (reply.type === 'ready') slot.ready = true;
      else if (slot.job?.id === reply.id) {
        const job = slot.job;
        slot.job = null;
        if (reply.type === 'hits') this.settle(job, null, reply.page);
        else if (reply.type === 'refused') this.settle(job, new AppError(reply.code, reply.message));
        else this.settle(job, Object.assign(new Error(`search failed: ${reply.message}`), { stack: reply.stack }));
      }
      this.pump();
    });
    // An exception the worker did not catch, or an exit nobody asked for: a bug.
    const lost = (cause: unknown) => {
      if (slot.worker !== worker) return;
      const wasReady = slot.ready;
      const job = slot.job;
      Object.assign(slot, { worker: null, ready: false, job: null });
      const error = new Error('the search worker stopped', { cause });
      if (job) this.settle(job, error);
      // One that cannot even start would fail again at once: refuse what waits, start afresh on the next search.
      if (!wasReady) for (const waiting of this.queue.splice(0)) this.settle(waiting, error);
      this.pump();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`exit code ${code}`)));
  }

  private overrun(slot: Slot, job: Job): void {
    if (slot.job !== job) return;
    const worker = slot.worker;
    Object.assign(slot, { worker: null, ready: false, job: null });
    this.settle(job, timedOut());
    // Stops the statement too: it calls JavaScript for every match (search-statement.ts).
    void worker?.terminate();
    // A fresh worker at once, so that the next search does not wait for one to start.
    if (!this.closed) this.start(slot);
    this.pump();
  }

  private settle(job: Job, error: Error | null, page: SearchPage = { hits: [], more: false }): void {
    clearTimeout(job.timer);
    if (error) job.reject(error);
    else job.resolve(page);
  }
}
