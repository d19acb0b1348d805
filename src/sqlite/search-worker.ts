import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { AppError } from '../error.js';
import { SqliteDatabase } from './database.js';
import { prepareSearch } from './search-statement.js';
import type { SearchReply, SearchRequest, SearchWorkerData } from './search-workers.js';

/**
 * A search worker thread (started by SearchWorkers): its own read-only
 * connection to the database, opened on first use like the app's (on a fresh
 * replica the file does not exist yet: AppError('unavailable') until it
 * does), with the same short busy timeout and back-off (SqliteDatabase), so
 * that a locked replica answers 'busy' and the read goes to the primary.
 */

if (!parentPort) throw new Error('search-worker.ts runs as a worker thread (see SearchWorkers)');
const port = parentPort;
const database = new SqliteDatabase((workerData as SearchWorkerData).path, { readonly: true });
let prepared: { db: Database.Database; search: ReturnType<typeof prepareSearch> } | null = null;

function run({ id: _id, ...query }: SearchRequest) {
  return database.guard(() => {
    const db = database.handle();
    if (prepared?.db !== db) {
      prepared?.search.close();
      prepared = { db, search: prepareSearch(db) };
    }
    return prepared.search.run(query);
  });
}

function answer(request: SearchRequest): SearchReply {
  const { id } = request;
  try {
    return { type: 'hits', id, page: run(request) };
  } catch (error) {
    if (error instanceof AppError) return { type: 'refused', id, code: error.code, message: error.message };
    // A replica whose first transaction has not brought the schema yet.
    if (error instanceof Error && /no such table/.test(error.message)) {
      return { type: 'refused', id, code: 'unavailable', message: 'The database is still being set up.' };
    }
    const { message, stack } = error instanceof Error ? error : { message: String(error), stack: undefined };
    return { type: 'failed', id, message, stack };
  }
}

port.on('message', (request: SearchRequest) => port.postMessage(answer(request)));
port.postMessage({ type: 'ready' } satisfies SearchReply);
