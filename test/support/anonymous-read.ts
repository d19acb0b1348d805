import type { RequestHandler } from 'express';

/**
 * What readYourWrites() and sessionMiddleware() leave for a page cache
 * mounted after them, for a reader with no token and no session on a
 * replica: for tests of the cache without the layer in front of it.
 */
export const anonymousReadOnReplica: RequestHandler = (_req, res, next) => {
  res.locals.ryw = {
    timing: 'none',
    waitedMs: 0,
    stale: false,
    served: { region: 'syd', instance: 'syd-1', role: 'replica' },
    committed: false,
  };
  res.locals.author = null;
  next();
};
