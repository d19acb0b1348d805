/**
 * Read-your-writes for Express apps on LiteFS-replicated SQLite: the one
 * public entry of this module. Everything an app needs is exported here;
 * nothing here knows of the blog.
 *
 * @example
 * import { readYourWrites } from './ryw/index.js';
 * const ryw = readYourWrites({ database: '/litefs/app.db', secrets: [secret] });
 * app.use(ryw.middleware);
 * // …routes…
 * app.use(ryw.busyHandler);
 */
import './locals.js';

export {
  readYourWrites,
  databasePath,
  isSqliteBusy,
  DEFAULT_EXEMPT_PATHS,
  DEFAULT_FALLBACK,
  DEFAULT_LITEFS_API,
  DEFAULT_PRIMARY_WAIT_MS,
  DEFAULT_REGION,
  DEFAULT_TTL_S,
  DEFAULT_WAIT_MS,
  DEFAULT_WRITE_PATHS,
  READ_METHODS,
  REGION_PATTERN,
  RETRY_AFTER_S,
  type ImmediateRead,
  type ReadYourWrites,
  type ReadYourWritesObserver,
  type ReadYourWritesOptions,
} from './middleware.js';
export { defaultReplies, type Replies, type ReplayReason, type ReplyContext } from './replies.js';
export type { RywLocals } from './locals.js';
export type { NodeIdentity, ReplicaNode, WakeSource } from './node.js';
export { Waiters } from './waiters.js';
export { FALLBACKS, TIMINGS, LINEAGE_MARGIN_MS, type Fallback, type NodeFacts, type Role, type Timing, type Token } from './decide.js';
export { TOKEN_COOKIE, TOKEN_HEADER, MAX_CLOCK_SKEW_MS, type TokenRejection } from './token.js';
export { formatTxid, parseTxid, type Position } from './position.js';
export { isHttps, readCookie, tokenCookieOptions } from './cookies.js';
export { isOnLiteFS, LiteFSNode, type LiteFSNodeOptions } from './litefs/litefs-node.js';
export {
  DEFAULT_DURABILITY_MODE,
  DEFAULT_DURABILITY_WAIT_MS,
  DEFAULT_STANDBY_PORT,
  DEFAULT_STANDBYS_RESOLVE_MS,
  DURABILITY_MODES,
  type Confirmation,
  type DurabilityMode,
  type DurabilityOptions,
  type StandbyList,
  type UnconfirmedReason,
} from './durability.js';
export { Standbys, standbyUrl, type StandbysOptions } from './litefs/standbys.js';
