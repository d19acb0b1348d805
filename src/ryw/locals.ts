import type { Role, Timing } from './decide.js';
import type { Confirmation } from './durability.js';

/** What read-your-writes leaves on `res.locals.ryw` for the routes and views. */
export interface RywLocals {
  /** What happened to this request, as `Server-Timing: ryw;desc=…` says. */
  timing: Timing;
  /** How long it waited for the replica to catch up. */
  waitedMs: number;
  /** Served from a replica still behind the reader's token: say so on the page. */
  stale: boolean;
  /** Where it was served from; null on exempt paths (nothing was asked of the node). */
  served: { region: string; instance: string; role: Role } | null;
  /**
   * Set by the route once its write committed (with `tokens: 'when-committed'`,
   * only then is a token handed out).
   */
  committed: boolean;
  /**
   * Awaited by a write route after its commit, before it answers: resolves at
   * once with durability `local`; with `standby`, once a standby has the
   * position committed now (or not, at the deadline). With `standby`, only a
   * confirmed write's answer carries a token. See ReadYourWrites.confirm().
   * Always set by the middleware (optional only for locals made elsewhere,
   * e.g. in tests; with `standby`, a token follows only what it confirmed).
   */
  confirm?: () => Promise<Confirmation>;
  /**
   * The reader's token named a write this database does not have and never
   * will: lost in a failover (its TXID is ahead of the primary, or holds
   * another write now: lostInFailover(); see evidenceOfLoss()). Dropped; the
   * page should say so plainly. Unset otherwise.
   */
  lostWrite?: boolean;
}

declare global {
  // Express's own way to type `res.locals` (declaration merging).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      /** Set by readYourWrites().middleware on every request it sees. */
      ryw?: RywLocals;
    }
  }
}
