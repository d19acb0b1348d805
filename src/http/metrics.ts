import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PageCacheStats } from './page-cache.js';
import {
  TIMINGS,
  type Confirmation,
  type ReadYourWritesObserver,
  type ReplicaNode,
  type Timing,
  type TokenRejection,
} from '../ryw/index.js';

/** Wait histogram buckets, in seconds: from "already there" to past any sane budget. */
export const WAIT_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Durability wait buckets, in seconds: a standby next door answers in ms; the default budget is 1 s (RYW_DURABILITY_WAIT_MS). */
export const DURABILITY_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface Metrics extends ReadYourWritesObserver {
  durability(confirmation: Confirmation): void;
  registry: Registry;
  /** Reports this node's position, waiters and wake-ups (the node comes from readYourWrites(), which takes this as its observer). */
  watch(node: ReplicaNode): void;
  /** Reports the page cache's hits, misses, evictions and size (page-cache.ts), read when scraped. */
  watchPageCache(stats: () => PageCacheStats): void;
  /** Reports the standbys followed for durable writes (ReadYourWrites.standbys()), read when scraped. */
  watchStandbys(count: () => { known: number; streaming: number } | null): void;
}

/** Prometheus metrics for every consistency decision, wait, dropped token and the node's position. */
export function createMetrics(): Metrics {
  let node: ReplicaNode | null = null;
  let pageCache: (() => PageCacheStats) | null = null;
  let standbys: (() => { known: number; streaming: number } | null) | null = null;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const decisions = new Counter({
    name: 'ryw_decisions_total',
    help: 'Requests by read-your-writes decision (the desc of Server-Timing: ryw).',
    labelNames: ['decision'],
    registers: [registry],
  });
  for (const timing of TIMINGS) decisions.inc({ decision: timing }, 0);
  const waits = new Histogram({
    name: 'ryw_wait_seconds',
    help: 'Time requests spent waiting for this replica to reach their token.',
    buckets: WAIT_BUCKETS_S,
    registers: [registry],
  });
  const durabilityWaits = new Histogram({
    name: 'ryw_durability_wait_seconds',
    help: 'Time writes waited for a standby to confirm them (RYW_DURABILITY=standby), confirmed or not.',
    buckets: DURABILITY_BUCKETS_S,
    registers: [registry],
  });
  const durabilityTimeouts = new Counter({
    name: 'ryw_durability_timeouts_total',
    help: 'Writes committed on the primary that were not confirmed (answered 503, no token), by reason: timeout (no standby had it in time), no-standbys (none configured), not-primary (the lease was lost), no-position.',
    labelNames: ['reason'],
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'ryw_tokens_dropped_total',
    help: 'Tokens dropped, by reason: forged, malformed, expired, oversized, future (issued beyond the allowed clock skew), or lineage (from an older lineage of the database).',
    labelNames: ['reason'],
    registers: [registry],
  });
  new Gauge({
    name: 'litefs_position_txid',
    help: "This node's replication position (LiteFS TXID); absent when unknown.",
    registers: [registry],
    collect() {
      const position = node?.replicated ? node.position() : null;
      if (position === null) this.reset();
      else this.set(Number(position));
    },
  });
  new Counter({
    name: 'ryw_wakeups_total',
    help: "Waiting requests woken, by source: LiteFS's event stream or the pos-file poll.",
    labelNames: ['source'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [source, count] of Object.entries(node?.stats().woken ?? {})) this.inc({ source }, count);
    },
  });
  new Gauge({
    name: 'ryw_standbys',
    help: 'Standbys followed for durable writes (RYW_DURABILITY=standby), by state: known (listed or found by DNS) and streaming (following this primary: able to confirm a write now; 0 on a primary means every write is refused). Absent with RYW_DURABILITY=local.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const count = standbys?.() ?? null;
      if (count === null) return;
      this.set({ state: 'known' }, count.known);
      this.set({ state: 'streaming' }, count.streaming);
    },
  });
  new Gauge({
    name: 'ryw_waiting_requests',
    help: 'Requests waiting for this replica to catch up right now.',
    registers: [registry],
    collect() {
      this.set(node?.stats().waiting ?? 0);
    },
  });

  // The cache counts in plain numbers on its hot path; these read them when scraped.
  const pageCacheCounter = (name: string, help: string, value: (stats: PageCacheStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        if (pageCache) this.inc(value(pageCache()));
      },
    });
  pageCacheCounter('page_cache_hits_total', 'Shareable pages answered from the page cache (a 304 included).', (s) => s.hits);
  pageCacheCounter('page_cache_misses_total', 'Shareable pages rendered because the cache did not hold them.', (s) => s.misses);
  new Counter({
    name: 'page_cache_evictions_total',
    help: 'Pages dropped from the cache: to stay within PAGE_CACHE_MB (full), or because the position or generation moved (moved).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      if (!pageCache) return;
      const { evictions } = pageCache();
      this.inc({ reason: 'full' }, evictions.full);
      this.inc({ reason: 'moved' }, evictions.moved);
    },
  });
  const pageCacheGauge = (name: string, help: string, value: (stats: PageCacheStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        if (pageCache) this.set(value(pageCache()));
      },
    });
  pageCacheGauge(
    'page_cache_bytes',
    'Bytes the page cache holds (bodies in every coding, keys and a fixed cost per entry).',
    (s) => s.bytes,
  );
  pageCacheGauge('page_cache_entries', 'Pages the page cache holds.', (s) => s.entries);
  pageCacheGauge('page_cache_max_bytes', 'The page cache bound (PAGE_CACHE_MB); 0: off.', (s) => s.maxBytes);

  return {
    registry,
    watch(watched: ReplicaNode) {
      node = watched;
    },
    watchStandbys(count) {
      standbys = count;
    },
    watchPageCache(stats: () => PageCacheStats) {
      pageCache = stats;
    },
    decided(timing: Timing, waitedMs: number) {
      decisions.inc({ decision: timing });
      if (timing === 'waited' || waitedMs > 0) waits.observe(waitedMs / 1000);
    },
    dropped(reason: TokenRejection | 'lineage') {
      dropped.inc({ reason });
    },
    durability(confirmation: Confirmation) {
      durabilityWaits.observe(confirmation.waitedMs / 1000);
      // A client that left is not a standby's fault.
      if (!confirmation.confirmed && confirmation.reason !== 'aborted') durabilityTimeouts.inc({ reason: confirmation.reason });
    },
  };
}
