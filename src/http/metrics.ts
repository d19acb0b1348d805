import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { TIMINGS, type ReadYourWritesObserver, type ReplicaNode, type Timing, type TokenRejection } from '../ryw/index.js';

/** Wait histogram buckets, in seconds: from "already there" to past any sane budget. */
export const WAIT_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface Metrics extends ReadYourWritesObserver {
  registry: Registry;
  /** Reports this node's position, waiters and wake-ups (the node comes from readYourWrites(), which takes this as its observer). */
  watch(node: ReplicaNode): void;
}

/** Prometheus metrics for every consistency decision, wait, dropped token and the node's position. */
export function createMetrics(): Metrics {
  let node: ReplicaNode | null = null;
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
    name: 'ryw_waiting_requests',
    help: 'Requests waiting for this replica to catch up right now.',
    registers: [registry],
    collect() {
      this.set(node?.stats().waiting ?? 0);
    },
  });

  return {
    registry,
    watch(watched: ReplicaNode) {
      node = watched;
    },
    decided(timing: Timing, waitedMs: number) {
      decisions.inc({ decision: timing });
      if (timing === 'waited' || waitedMs > 0) waits.observe(waitedMs / 1000);
    },
    dropped(reason: TokenRejection | 'lineage') {
      dropped.inc({ reason });
    },
  };
}
