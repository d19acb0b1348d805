import { timingSafeEqual, createHash } from 'node:crypto';
import { Router } from 'express';
import { AppError } from '../error.js';
import type { LiteFSNode } from '../litefs/node.js';
import { formatTxid } from '../position.js';
import type { Metrics } from './metrics.js';

/** What `GET /healthz` answers. */
export interface Health {
  region: string;
  instance: string;
  role: 'primary' | 'replica' | 'standalone';
  primary: string | null;
  position: string | null;
}

export function health(node: LiteFSNode): Health {
  const facts = node.facts();
  return {
    region: facts.region,
    instance: facts.instance,
    role: facts.role,
    primary: facts.primary,
    position: facts.position === null ? null : formatTxid(facts.position),
  };
}

/** Health and metrics: never wait, never carry tokens. */
export function opsRoutes(node: LiteFSNode, metrics: Metrics): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json(health(node));
  });
  router.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

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
    res.json(runMigrations());
  });
  return router;
}
