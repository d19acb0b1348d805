import type { Request, Response } from 'express';
import { AppError } from '../error.js';
import { defaultReplies, READ_METHODS, type Replies } from '../ryw/index.js';
import type { DatabaseRefusal } from './errors.js';

/**
 * Form posts refused before their route ran, for a reason the route answers
 * as it answers a database refusal (503, `Retry-After`, the form with
 * everything typed): the session could not be looked up (the database was
 * locked), or no primary was known to send the write to. Each form route
 * asks refusedBeforeRoute() right after its CSRF check and writes nothing.
 */
const refused = new WeakMap<Response, DatabaseRefusal>();

export function refuseBeforeRoute(res: Response, refusal: DatabaseRefusal): void {
  refused.set(res, refusal);
}

export function refusedBeforeRoute(res: Response): DatabaseRefusal | undefined {
  return refused.get(res);
}

/**
 * A write the layer could not send to a primary (none named even after its
 * wait, in a failover or while LiteFS reconnects; or one it must not replay
 * to, a loop): nothing was written anywhere. `unavailable`, as the
 * database's own refusal of a write, in the layer's words.
 */
export function refusedWrite(why: string): DatabaseRefusal {
  return new AppError('unavailable', `${why} Nothing was saved: try again in a few seconds.`) as DatabaseRefusal;
}

/**
 * The blog's `replies.unavailable` for readYourWrites(): a write refused
 * there (no primary, even after the wait) goes on to its form's route, which
 * shows the form again with everything typed (`formPaths`: the POSTs whose
 * routes ask refusedBeforeRoute()); any other write gets the blog's error
 * page. Reads (the `error` fallback) keep the layer's plain 503.
 */
export function unavailableReply(formPaths: readonly (string | RegExp)[]): Replies['unavailable'] {
  const isFormPost = (req: Request) =>
    req.method === 'POST' && formPaths.some((form) => (typeof form === 'string' ? form === req.path : form.test(req.path)));
  return (ctx, why) => {
    const { req, res, next } = ctx;
    if (READ_METHODS.has(req.method)) return defaultReplies.unavailable(ctx, why);
    const refusal = refusedWrite(why);
    if (!isFormPost(req)) return next(refusal);
    refuseBeforeRoute(res, refusal);
    next();
  };
}
