import type { Response } from 'express';
// For `res.locals.ryw`'s type (read-your-writes declares it on Express's Locals).
import type { RywLocals } from '../ryw/index.js';

/**
 * Tells read-your-writes that this request's write has committed, so that
 * (with `tokens: 'when-committed'`) its answer carries a token for the new
 * position. Call it right after the transaction commits, and never on a
 * refusal: an answer that wrote nothing (a wrong password, a redirect to sign
 * in) would send the reader's next page waiting for a position it did not move.
 * Without the read-your-writes middleware (no `res.locals.ryw`) it does nothing.
 *
 * @example
 * sessions.createSession(session, new Date());
 * markCommitted(res);
 */
export function markCommitted(res: Response): void {
  const ryw: RywLocals | undefined = res.locals.ryw;
  if (ryw) ryw.committed = true;
}
