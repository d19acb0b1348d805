import { timingSafeEqual, createHash } from 'node:crypto';
import { Router } from 'express';
import { AppError } from '../error.js';
import { formatTxid, type ReplicaNode } from '../ryw/index.js';
import { markCommitted } from './committed.js';
import type { Metrics } from './metrics.js';

/**
 * What `GET /healthz` answers: only what a health check (Fly's, the local
 * edge's status page) needs. Names of instances and of the primary are for
 * the operator's logs and pages, not for anyone who can reach the port.
 */
export interface Health {
  /** Always `ok` while the process answers: a failover is no reason for Fly to restart machines. */
  status: 'ok';
  role: 'primary' | 'replica' | 'standalone';
  position: string | null;
  /**
   * `known` while writes have somewhere to go (this node takes them, or a
   * replica names the primary); null while none is named (a failover, a
   * replica cut off). Never the primary's name (see above).
   */
  primary: 'known' | null;
}

export function health(node: ReplicaNode): Health {
  const facts = node.facts();
  return {
    status: 'ok',
    role: facts.role,
    position: facts.position === null ? null : formatTxid(facts.position),
    primary: facts.role === 'replica' && facts.primary === null ? null : 'known',
  };
}

/** Health, and metrics unless they are served elsewhere (`metrics: null`): never wait, never carry tokens. */
export function opsRoutes(node: ReplicaNode, metrics: MetricsAccess | null): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json(health(node));
  });
  if (metrics) router.use(metricsRoutes(metrics));
  return router;
}

/** Who may read `/metrics`: everyone who reaches the port, or only with `Authorization: Bearer <token>`. */
export interface MetricsAccess {
  metrics: Metrics;
  token: string | null;
}

/** `GET /metrics` in Prometheus's text format, behind a bearer token when one is set (METRICS_TOKEN). */
export function metricsRoutes({ metrics, token }: MetricsAccess): Router {
  const router = Router();
  const expected = token === null ? null : digest(token);
  router.get('/metrics', async (req, res) => {
    if (expected !== null && !bearerMatches(req.get('authorization'), expected)) {
      throw new AppError('forbidden', 'A valid metrics token is required.');
    }
    res
      .set('Cache-Control', 'no-store')
      .set('Content-Type', metrics.registry.contentType)
      .send(await metrics.registry.metrics());
  });
  return router;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Compares digests: equal lengths, and no timing hint of the token. */
function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const given = /^Bearer (.+)$/.exec(header ?? '')?.[1];
  return given !== undefined && timingSafeEqual(digest(given), expected);
}

/**
 * `POST /migrate/up`, only with `Authorization: Bearer <MIGRATE_TOKEN>`; it is
 * mounted only when a token is configured. On a replica the write is replayed
 * to the primary before it gets here.
 */
export function migrateRoutes(token: string, runMigrations: () => { from: number; to: number }): Router {
  const router = Router();
  const expected = digest(token);
  router.post('/migrate/up', (req, res) => {
    const given = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
    // Compare digests: equal lengths, and no timing hint of the token.
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      throw new AppError('forbidden', 'A valid migration token is required.');
    }
    const result = runMigrations();
    markCommitted(res);
    res.json(result);
  });
  return router;
}
