import type { Response } from 'express';
// For `res.locals.ryw`'s type (read-your-writes declares it on Express's Locals).
import type { Confirmation, RywLocals } from '../ryw/index.js';

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

/**
 * Marks the write committed (markCommitted()) and waits, before the answer,
 * until it is durable as RYW_DURABILITY asks: at once with `local`; with
 * `standby`, until a standby has it, or unconfirmed after
 * RYW_DURABILITY_WAIT_MS (the route then answers 503: saved on the primary,
 * not yet confirmed elsewhere; with `standby` only a confirmed answer
 * carries a token). Without the read-your-writes middleware it is confirmed.
 *
 * @example
 * const article = store.create(input);
 * if (!(await confirmCommitted(res)).confirmed) return unconfirmed(res);
 */
export async function confirmCommitted(res: Response): Promise<Confirmation> {
  markCommitted(res);
  const ryw: RywLocals | undefined = res.locals.ryw;
  // Without the middleware (or its confirm(), in locals made by hand) there is
  // nothing to wait for; with `standby` no token follows either way.
  return ryw?.confirm ? ryw.confirm() : { confirmed: true, waitedMs: 0 };
}
