import type { Role, Timing } from './decide.js';

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
