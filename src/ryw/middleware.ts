import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { hostname } from 'node:os';
import { parse as parseQuery } from 'node:querystring';
import { basename, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import onHeaders from 'on-headers';
import { tokenCookieOptions, readCookie } from './cookies.js';
import {
  decide,
  decideWhenBusy,
  evidenceOfLoss,
  lostInFailover,
  ofOlderLineage,
  RYW_REPLAY_STATE,
  type Decision,
  type Fallback,
  type NodeFacts,
  type RequestFacts,
  type Role,
  type Timing,
  type Token,
} from './decide.js';
import {
  DEFAULT_DURABILITY_MODE,
  DEFAULT_DURABILITY_WAIT_MS,
  type Confirmation,
  type DurabilityMode,
  type DurabilityOptions,
} from './durability.js';
import { formatFlyReplay, FLY_REPLAY, FLY_REPLAY_SRC, parseReplaySource, type ReplayTarget } from './fly-replay.js';
import { isOnLiteFS, LiteFSNode } from './litefs/litefs-node.js';
import { Standbys } from './litefs/standbys.js';
import type { RywLocals } from './locals.js';
import type { NodeIdentity, ReplicaNode } from './node.js';
import { defaultReplies, type Replies, type ReplayReason } from './replies.js';
import type { Position } from './position.js';
import { signToken, tokenPayload, TokenVerifier, TOKEN_COOKIE, TOKEN_HEADER, type TokenCheck, type TokenRejection } from './token.js';

/** The longest a replica makes a reader wait for their token, before the fallback. */
export const DEFAULT_WAIT_MS = 500;
/**
 * The longest a write waits on a replica that names no primary (a failover)
 * for one to be named, before 503: a bound on the hang, not a cover for the
 * whole failover (about 3 s with a 1 s Consul TTL, about 20 s with LiteFS's
 * defaults). A handoff or a reconnection is over well within it.
 */
export const DEFAULT_PRIMARY_WAIT_MS = 2_000;
/** What a replica does when the wait runs out: replay the read to the primary. */
export const DEFAULT_FALLBACK: Fallback = 'replay';
/** How long a token lives: by then every healthy replica is long past the write. */
export const DEFAULT_TTL_S = 300;
/** LiteFS's HTTP API, as LiteFS serves it by default (`http.addr: ":20202"`). */
export const DEFAULT_LITEFS_API = 'http://127.0.0.1:20202';
/** Where this process runs, when not told: a region of its own, and the host's name. */
export const DEFAULT_REGION = 'local';
/** GETs that write: none unless told. */
export const DEFAULT_WRITE_PATHS: readonly string[] = [];
/** Paths that never wait and never carry or set tokens: none unless told (health checks are the usual ones). */
export const DEFAULT_EXEMPT_PATHS: readonly string[] = [];
/** What a client is told to wait before retrying a 503. */
export const RETRY_AFTER_S = 1;
/** What parseurl does not take as it is (see immediate()): it hands such URLs to url.parse. */
const NOT_PLAIN_URL = /[\t\n\f\r #\u00a0\ufeff]/;
/** A `?region=` must look like a Fly.io region code. */
export const REGION_PATTERN = /^[a-z0-9]{2,12}$/;

/**
 * The methods that never write (RFC 9110's safe methods): served where they
 * land, and never answered with a token. Every other method is a write.
 */
export const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** Told of every decision and every dropped token, e.g. to count them in metrics. */
export interface ReadYourWritesObserver {
  decided(timing: Timing, waitedMs: number): void;
  /** `lineage`: valid, but issued by an older lineage of the database, so never to be met. */
  dropped(reason: TokenRejection | 'lineage'): void;
  /** Every write confirmed (or not) with durability `standby`: the wait, and whether a standby had it in time. */
  durability?(confirmation: Confirmation): void;
}

export interface ReadYourWritesOptions {
  /**
   * The database LiteFS replicates, in its mount: a path or a `file:` URL.
   * `.primary`, `<db>-pos` and `.lag` are read beside it. Without LiteFS's
   * files (and with `api: null`) the app runs standalone: no tokens, no waits.
   */
  database?: string | URL;
  /** The node, instead of `database`: another replication system, or an in-memory fake in tests. */
  node?: ReplicaNode;
  /** Comma-free secrets: the first signs tokens, all verify (rotation). The same on every instance. */
  secrets: readonly string[];
  /**
   * LiteFS's HTTP API, whose `/events` stream wakes waiting readers at once
   * (default DEFAULT_LITEFS_API, used only when LiteFS's files are there).
   * Null: the pos file only, polled while someone waits.
   */
  api?: string | URL | null;
  /** This instance, for `fly-replay` loop guards and pages (default: DEFAULT_REGION and the host name). */
  identity?: Partial<NodeIdentity>;
  waitMs?: number;
  /** How long a write on a replica that names no primary waits for one (default DEFAULT_PRIMARY_WAIT_MS), then 503. */
  primaryWaitMs?: number;
  fallback?: Fallback;
  ttlSeconds?: number;
  /** GETs that write, e.g. `/unsubscribe`: they go to the primary like any POST. */
  writePaths?: readonly string[];
  /** Requests that never wait and never carry or set tokens: paths (a trailing `/` is a prefix) or a test. */
  exempt?: readonly string[] | ((req: Request) => boolean);
  observer?: ReadYourWritesObserver;
  /** What the layer answers itself (replays, 503s, a bad `?region=`): plain text unless overridden. */
  replies?: Partial<Replies>;
  /**
   * Whether an error a route threw means "the database is locked" (on a
   * replica, LiteFS applying a transaction): such a read is replayed to the
   * primary. Default: SQLite's BUSY, LOCKED or PROTOCOL anywhere in the
   * error's `cause` chain.
   */
  isBusy?: (error: unknown) => boolean;
  /**
   * When a write on the primary gets a token: after any 2xx/3xx answer
   * (`after-success`, the default: every successful write request committed
   * something), or only when its route set `res.locals.ryw.committed = true`
   * after its transaction committed (`when-committed`: an answer that wrote
   * nothing, e.g. a redirect to sign in, hands out no token).
   */
  tokens?: 'after-success' | 'when-committed';
  /**
   * False turns read-your-writes off (no tokens issued or honoured) while
   * writes are still replayed to the primary: the baseline for benchmarks and
   * a checker's proof that it can fail.
   */
  enabled?: boolean;
  /** How often the pos file is read while someone waits without the event stream. */
  pollMs?: number;
  /** Told when LiteFS's event stream connects or is lost. */
  onStreamState?: (connected: boolean) => void;
  /** The clock tokens are issued and expired by (unix ms). */
  now?: () => number;
  /**
   * When a write may be answered (see ./durability.ts): `local` (default) at
   * once; `standby` only once a standby candidate has applied it, followed
   * through each standby's `/events` stream. With `standby`, an answer
   * carries a token only once `confirm()` confirmed it.
   */
  durability?: DurabilityOptions & {
    /** The database's file name, for the standbys' `tx` events (default: the `database` option's). */
    database?: string;
  };
}

/** What `readYourWrites()` gives an app. */
export interface ReadYourWrites {
  /** Mount before the routes. */
  middleware: RequestHandler;
  /** Mount after the routes, before the app's error handler: replays a read a locked replica database refused. */
  busyHandler: ErrorRequestHandler;
  /** The node the layer decides on: its role and position, e.g. for a health check. */
  node: ReplicaNode;
  /** `local` or `standby`, as configured. */
  durability: DurabilityMode;
  /**
   * Awaited after a write committed and before answering: with `local` it
   * resolves at once; with `standby`, as soon as a standby has applied the
   * position committed now, or unconfirmed after the durability wait. Given
   * the response, a confirmed write's answer carries a token for exactly
   * that position (with `standby`, no other answer carries one). Routes
   * reach it as `res.locals.ryw.confirm()`.
   *
   * @example
   * store.create(article);
   * const confirmation = await ryw.confirm(res);
   * if (!confirmation.confirmed) return res.status(503).set('Retry-After', '1').send('Saved on the primary only: send it again.');
   */
  confirm(res?: Response): Promise<Confirmation>;
  /** The standbys followed (durability `standby`): how many are known, how many could confirm now. */
  standbys(): { known: number; streaming: number } | null;
  /**
   * What the middleware would decide for this read, when that is to serve it
   * here at once with nothing to tell the reader (`none`, or `fresh`: its
   * token is met); null for anything else (a wait, a replay, a token to
   * drop, a write). For a server that answers such reads without Express
   * (e.g. from a page cache): it calls `served()` when it does, and hands
   * every other request to the app, where the middleware decides it again.
   */
  immediate(req: IncomingMessage): ImmediateRead | null;
  /** Stops following LiteFS (its event stream, any poll) and gives up on every wait. */
  close(): void;
}

/** A read the layer would serve at once (see ReadYourWrites.immediate()). */
export interface ImmediateRead {
  timing: 'none' | 'fresh';
  /** The role of this node as it judged the read. */
  role: Role;
  /** The `Server-Timing` entry the middleware would have appended. */
  serverTiming: string;
  /** Counts the decision (the observer), as the middleware would have: call it once the answer is given. */
  served(): void;
}

/** A request as the layer judged it before any wait (see judge() in readYourWrites()). */
interface Judged {
  request: RequestFacts;
  carried: CarriedTokens;
  facts: NodeFacts;
  decision: Decision;
  /** The token cookie is to be cleared: refused, or of an older lineage. */
  clearCookie: boolean;
  /** How many valid tokens were dropped as of an older lineage. */
  olderLineage: number;
  /** One of those names a write lost in a failover, on evidence: the reader is to be told. */
  lostWrite: boolean;
}

/** The request as the middleware saw it, for the busy handler. */
const decidedOn = new WeakMap<Response, RequestFacts>();
/** The position a standby confirmed for a response's write: its token's (durability `standby`). */
const confirmedFor = new WeakMap<Response, Position>();

/**
 * Read-your-writes for an Express app on LiteFS: replays writes to the
 * primary, issues a signed position token after each write served on the
 * primary, and on a replica serves, waits, replays, serves stale or refuses
 * a read carrying a token, as `decide()` says. Every response gets a
 * `Server-Timing: ryw;desc=…;dur=…` entry (appended to any others).
 *
 * @example
 * const ryw = readYourWrites({ database: '/litefs/app.db', secrets: [process.env.RYW_SECRET!] });
 * app.use(ryw.middleware);
 * app.get('/', (req, res) => res.send(`served ${res.locals.ryw?.timing}`));
 * app.use(ryw.busyHandler);
 */
export function readYourWrites(options: ReadYourWritesOptions): ReadYourWrites {
  if (options.secrets.length === 0 || options.secrets.some((secret) => secret.length === 0)) {
    throw new TypeError('readYourWrites: give at least one non-empty secret');
  }
  const node = options.node ?? liteFSNodeFor(options);
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  const primaryWaitMs = options.primaryWaitMs ?? DEFAULT_PRIMARY_WAIT_MS;
  const fallback = options.fallback ?? DEFAULT_FALLBACK;
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_TTL_S;
  const writePaths = new Set(options.writePaths ?? DEFAULT_WRITE_PATHS);
  const exempt = exemptTest(options.exempt ?? DEFAULT_EXEMPT_PATHS);
  // For immediate(), which judges a bare request.
  const exemptPaths = typeof options.exempt === 'function' ? null : exemptPathTest(options.exempt ?? DEFAULT_EXEMPT_PATHS);
  const replies: Replies = { ...defaultReplies, ...options.replies };
  const isBusy = options.isBusy ?? isSqliteBusy;
  const now = options.now ?? Date.now;
  const enabled = options.enabled ?? true;
  const issueOn = options.tokens === 'when-committed' ? 'commit' : 'success';
  const { observer, secrets } = options;
  const verifier = new TokenVerifier(secrets);
  const durability = options.durability?.mode ?? DEFAULT_DURABILITY_MODE;
  const durabilityWaitMs = options.durability?.waitMs ?? DEFAULT_DURABILITY_WAIT_MS;
  const standbys = durability === 'standby' ? standbysFor(options, node) : null;

  const confirm = async (res?: Response): Promise<Confirmation> => {
    if (durability === 'local') return { confirmed: true, waitedMs: 0 };
    const started = performance.now();
    const outcome = (confirmation: Confirmation) => {
      observer?.durability?.(confirmation);
      // Beside `ryw`: what the durability wait cost this answer, for the benchmarks and the checker.
      if (res && !res.headersSent) {
        const desc = confirmation.confirmed ? 'confirmed' : confirmation.reason;
        appendServerTimingEntry(res, `durable;desc=${desc};dur=${Math.round(confirmation.waitedMs)}`);
      }
      return confirmation;
    };
    if (standbys === null) return outcome({ confirmed: false, reason: 'no-standbys', waitedMs: 0 });
    // A node that lost the lease committed on a lineage no standby follows: nothing it says could be confirmed.
    if (node.role().role !== 'primary') return outcome({ confirmed: false, reason: 'not-primary', waitedMs: 0 });
    // Read after the commit: this write's TXID or a later one (waiting for a later one only costs a little more).
    const position = node.committedPosition();
    if (position === null) return outcome({ confirmed: false, reason: 'no-position', waitedMs: 0 });
    const gone = new AbortController();
    const abort = () => gone.abort();
    res?.once('close', abort);
    const confirmed = await standbys.waitFor(position, durabilityWaitMs, gone.signal);
    res?.off('close', abort);
    const waitedMs = performance.now() - started;
    if (!confirmed) return outcome({ confirmed: false, reason: gone.signal.aborted || standbys.closed ? 'aborted' : 'timeout', waitedMs });
    if (res) confirmedFor.set(res, position);
    return outcome({ confirmed: true, waitedMs });
  };

  /**
   * A request as the layer judges it before any wait: the tokens it carries
   * (each on its own: one of an older lineage is dropped, and its cookie
   * cleared, without costing a valid one beside it), the node's facts, and
   * the decision. Tells no observer: the caller does, once it acts on it.
   */
  const judge = (method: string, path: string, region: string | null, headers: IncomingHttpHeaders): Judged => {
    const write = !READ_METHODS.has(method) || writePaths.has(path);
    const carried = node.replicated && enabled ? readTokens(headers, verifier, now(), ttlSeconds) : noTokens;
    const tokens = carried.valid.map((carriedToken) => carriedToken.token);
    const highest = tokens.reduce<Token | null>((best, token) => (best === null || token.position > best.position ? token : best), null);
    // Without a token the position does not matter: no file is read for it.
    const facts = node.facts({ position: highest !== null, tokenPosition: highest?.position });
    let clearCookie = carried.cookieRejected;
    let olderLineage = 0;
    let lostWrite = false;
    if (!write) {
      for (const { token, fromCookie } of carried.valid) {
        // A lost write is a token of an older lineage that only its checksum tells apart.
        if (!lostInFailover(token, facts) && !ofOlderLineage(token, facts)) continue;
        olderLineage++;
        // Told only on evidence of a lost write (see evidenceOfLoss()); any other such drop is silent.
        if (evidenceOfLoss(token, facts)) lostWrite = true;
        clearCookie ||= fromCookie;
      }
    }
    const source = parseReplaySource(headerOf(headers, FLY_REPLAY_SRC));
    const request: RequestFacts = {
      write,
      tokens,
      region,
      replayedFrom: source?.instance ?? null,
      replayedForToken: source?.state === RYW_REPLAY_STATE,
    };
    return { request, carried, facts, clearCookie, olderLineage, lostWrite, decision: decide(request, facts, fallback) };
  };

  const immediate = (req: IncomingMessage): ImmediateRead | null => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    // Only a read, of a plain path (not an absolute-form URL) that Express's
    // parseurl reads as it is (a `#` or white space sends it to url.parse,
    // which cuts or changes it), pinned to no region.
    if (!READ_METHODS.has(method) || !url.startsWith('/') || NOT_PLAIN_URL.test(url)) return null;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (q !== -1 && parseQuery(url.slice(q + 1)).region !== undefined) return null;
    // Exempt paths are answered without the layer's counting: never here (a test of Express's own cannot be asked).
    if (exemptPaths === null || exemptPaths(path)) return null;
    const judged = judge(method, path, null, req.headers);
    const { decision } = judged;
    // A GET of writePaths is a write: the middleware's to replay or hand a token.
    if (judged.request.write) return null;
    if (decision.kind !== 'serve' || (decision.timing !== 'none' && decision.timing !== 'fresh')) return null;
    // Anything the reader is to be told (a token dropped, a cookie cleared) is the middleware's to say.
    if (judged.carried.rejected.length > 0 || judged.clearCookie || judged.olderLineage > 0) return null;
    const { timing } = decision;
    return { timing, role: judged.facts.role, serverTiming: SERVER_TIMING_AT_ONCE[timing], served: () => observer?.decided(timing, 0) };
  };

  const replay = (req: Request, res: Response, next: NextFunction, target: ReplayTarget, reason: ReplayReason) => {
    res.setHeader(FLY_REPLAY, formatFlyReplay(target));
    replies.replay({ req, res, next }, { target, reason });
  };

  const middleware = async function readYourWritesMiddleware(req: Request, res: Response, next: NextFunction) {
    const locals: RywLocals = { timing: 'none', waitedMs: 0, stale: false, served: null, committed: false, confirm: () => confirm(res) };
    res.locals.ryw = locals;
    if (exempt(req)) {
      // As the headers go out, like every other entry: a route may set its own meanwhile.
      onHeaders(res, () => appendServerTiming(res, 'none', 0));
      return next();
    }

    let issue = false;
    onHeaders(res, () => {
      // Only a write the app answered with success (it committed before
      // answering) moved the position the reader must see; with
      // `tokens: 'when-committed'`, only one whose route said it committed.
      if (issue && res.statusCode >= 200 && res.statusCode < 400 && (issueOn === 'success' || locals.committed)) {
        // With `standby`, only a position a standby confirmed: a token never
        // claims a write that a failover could still lose.
        const position = durability === 'standby' ? (confirmedFor.get(res) ?? null) : node.committedPosition();
        if (position !== null) {
          const token = signToken(tokenPayload(position, now(), node.checksumAt?.(position) ?? null), secrets);
          res.cookie(TOKEN_COOKIE, token, { ...tokenCookieOptions(req), maxAge: ttlSeconds * 1000 });
          res.setHeader(TOKEN_HEADER, token);
          locals.timing = 'issued';
        }
      }
      appendServerTiming(res, locals.timing, locals.waitedMs);
      observer?.decided(locals.timing, locals.waitedMs);
    });

    const region = req.query.region;
    if (region !== undefined && (typeof region !== 'string' || !REGION_PATTERN.test(region))) {
      return replies.invalid({ req, res, next }, 'The region must be 2 to 12 lowercase letters or digits, like ?region=syd.');
    }

    const judged = judge(req.method, req.path, region ?? null, req.headers);
    const { request, carried } = judged;
    let facts = judged.facts;
    locals.served = { region: facts.region, instance: facts.instance, role: facts.role };
    for (const reason of carried.rejected) observer?.dropped(reason);
    for (let n = 0; n < judged.olderLineage; n++) observer?.dropped('lineage');
    if (judged.lostWrite) locals.lostWrite = true;
    if (judged.clearCookie) res.clearCookie(TOKEN_COOKIE, tokenCookieOptions(req));
    const { write } = request;
    decidedOn.set(res, request);
    const { decision } = judged;

    let act = decision;
    if (decision.kind === 'await-primary') {
      const started = performance.now();
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      const known = await node.waitForPrimary(primaryWaitMs, gone.signal);
      locals.waitedMs = performance.now() - started;
      if (gone.signal.aborted) return;
      // Decided again on what is known now: replayed to the primary named,
      // or served here if this node became the primary.
      if (known) {
        facts = node.facts({ position: false });
        locals.served = { region: facts.region, instance: facts.instance, role: facts.role };
      }
      const again = known ? decide(request, facts, fallback) : decision;
      act = again.kind === 'await-primary' || again.kind === 'wait' ? decision.onTimeout : again;
    } else if (decision.kind === 'wait') {
      const started = performance.now();
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      const caughtUp = await node.waitFor(decision.until, waitMs, gone.signal);
      locals.waitedMs = performance.now() - started;
      if (gone.signal.aborted) return;
      if (caughtUp) {
        locals.timing = 'waited';
        return next();
      }
      act = decision.onTimeout;
    }

    switch (act.kind) {
      case 'serve':
        locals.timing = carried.rejected.length > 0 && act.timing === 'none' ? 'dropped' : act.timing;
        // A token dropped as a lost write makes the page the reader's own (its notice): never shared.
        if (locals.lostWrite && (locals.timing === 'none' || locals.timing === 'fresh')) locals.timing = 'dropped';
        issue = enabled && write && facts.role === 'primary';
        return next();
      case 'stale':
        locals.timing = 'stale';
        locals.stale = true;
        return next();
      case 'replay':
        locals.timing = 'replayed';
        return replay(req, res, next, act.target, 'region' in act.target ? 'region' : write ? 'write' : 'behind');
      case 'reject':
        locals.timing = 'unavailable';
        res.setHeader('Retry-After', String(RETRY_AFTER_S));
        return replies.unavailable({ req, res, next }, act.why);
    }
  };

  /**
   * An error a route threw because the database is locked (on a replica,
   * LiteFS applying a transaction over a stalled link): reads go to the
   * primary instead of failing, as `decideWhenBusy()` says. Anything else
   * goes on to the app's error handler.
   */
  const busyHandler: ErrorRequestHandler = function readYourWritesBusyHandler(
    error: unknown,
    req: Request,
    res: Response,
    next: NextFunction,
  ) {
    const decided = decidedOn.get(res);
    if (!decided || res.headersSent || !isBusy(error)) return next(error);
    // Who the primary is now, not when the request came in: a reader may have
    // waited out a reconnection (no primary named then) and met the lock of
    // the very catch-up it waited for.
    const decision = decideWhenBusy(decided, node.facts({ position: false }));
    if (decision.kind !== 'replay') return next(error);
    if (res.locals.ryw) res.locals.ryw.timing = 'replayed';
    replay(req, res, next, decision.target, 'busy');
  };

  return {
    middleware,
    busyHandler,
    node,
    durability,
    confirm,
    standbys: () => standbys?.count() ?? null,
    immediate,
    close: () => {
      standbys?.close();
      node.close();
    },
  };
}

/** The standbys to follow for durability `standby`; null when none were given (every write is then unconfirmed). */
function standbysFor(options: ReadYourWritesOptions, node: ReplicaNode): Standbys | null {
  const durability = options.durability!;
  const list = durability.standbys;
  if (list === undefined || (Array.isArray(list) && list.length === 0)) return null;
  const database = durability.database ?? (options.database !== undefined ? basename(databasePath(options.database)) : undefined);
  if (database === undefined)
    throw new TypeError('readYourWrites: durability `standby` with `node` needs `durability.database` (its file name)');
  return new Standbys({
    standbys: list,
    database,
    // A standby counts only while it follows us: its LiteFS names our lease hostname, which is our instance.
    self: node.identity.instance,
    // Only a primary waits for standbys: a replica (in any region) holds no stream to them.
    active: () => node.role().role === 'primary',
    mark: durability.mark,
    resolveEveryMs: durability.resolveEveryMs,
    resolve: durability.resolve,
    onState: durability.onStandbyState,
  });
}

function liteFSNodeFor(options: ReadYourWritesOptions): LiteFSNode {
  if (options.database === undefined)
    throw new TypeError('readYourWrites: give `database` (the path of the SQLite file in LiteFS’s mount) or `node`');
  const path = databasePath(options.database);
  // LiteFS's API where it usually is, but only on LiteFS: standalone follows nothing.
  const api =
    options.api === null ? null : options.api !== undefined ? new URL(options.api) : isOnLiteFS(path) ? new URL(DEFAULT_LITEFS_API) : null;
  return new LiteFSNode({
    databasePath: path,
    identity: { region: options.identity?.region ?? DEFAULT_REGION, instance: options.identity?.instance ?? hostname() },
    api,
    pollMs: options.pollMs,
    onStreamState: options.onStreamState,
  });
}

/** A path or a `file:` URL (`file:///abs`, `file:relative`), resolved against the working directory. */
export function databasePath(database: string | URL): string {
  if (database instanceof URL || database.startsWith('file://')) return fileURLToPath(database);
  const path = database.startsWith('file:') ? database.slice('file:'.length) : database;
  if (path === '' || path === ':memory:' || path.includes('?'))
    throw new TypeError(`readYourWrites: not a SQLite file: ${JSON.stringify(String(database))}`);
  return isAbsolute(path) ? path : resolve(path);
}

function exemptTest(exempt: readonly string[] | ((req: Request) => boolean)): (req: Request) => boolean {
  if (typeof exempt === 'function') return exempt;
  const test = exemptPathTest(exempt);
  return (req) => test(req.path);
}

function exemptPathTest(exempt: readonly string[]): (path: string) => boolean {
  const exact = new Set(exempt.filter((path) => !path.endsWith('/')));
  const prefixes = exempt.filter((path) => path.endsWith('/'));
  return (path) => exact.has(path) || prefixes.some((prefix) => path.startsWith(prefix));
}

/** The entry a read answered at once carries (no wait, so no duration). */
const SERVER_TIMING_AT_ONCE = { none: serverTimingEntry('none', 0), fresh: serverTimingEntry('fresh', 0) } as const;

function serverTimingEntry(timing: Timing, waitedMs: number): string {
  return `ryw;desc=${timing};dur=${Math.round(waitedMs)}`;
}

/** One request header as a string (Node joins repeated ones with `, `), as Express's `req.get()` gives it. */
function headerOf(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Adds our entry to `Server-Timing`, keeping whatever others set (it is a list header). */
function appendServerTiming(res: Response, timing: Timing, waitedMs: number): void {
  appendServerTimingEntry(res, serverTimingEntry(timing, waitedMs));
}

function appendServerTimingEntry(res: Response, entry: string): void {
  const existing = res.getHeader('Server-Timing');
  if (existing === undefined) res.setHeader('Server-Timing', entry);
  else res.setHeader('Server-Timing', [...(Array.isArray(existing) ? existing : [String(existing)]), entry]);
}

const SQLITE_BUSY_CODES = /^SQLITE_(BUSY|LOCKED|PROTOCOL)/;

/** SQLite gave up waiting for a lock, somewhere in the error's `cause` chain (better-sqlite3 puts it in `code`). */
export function isSqliteBusy(error: unknown): boolean {
  for (let at = error, depth = 0; at !== null && typeof at === 'object' && depth < 8; at = (at as { cause?: unknown }).cause, depth++) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === 'string' && SQLITE_BUSY_CODES.test(code)) return true;
  }
  return false;
}

/** What the request carried: every valid token (with where it came from), and why any other was refused. */
interface CarriedTokens {
  valid: { token: Token; fromCookie: boolean }[];
  rejected: TokenRejection[];
  cookieRejected: boolean;
}

const noTokens: CarriedTokens = { valid: [], rejected: [], cookieRejected: false };

/**
 * The tokens a request carries, cookie and header, each checked on its own
 * and the same way, size first, so an oversized cookie costs no HMAC and
 * counts as oversized. The cookie is read from the `Cookie` header itself:
 * whatever another middleware would make of it (cookie-parser turns `j:{…}`
 * into an object), it is judged as a token, and refused like any other.
 */
function readTokens(headers: IncomingHttpHeaders, verifier: TokenVerifier, now: number, ttlSeconds: number): CarriedTokens {
  const checks: { check: TokenCheck; fromCookie: boolean }[] = [];
  const cookie = readCookie(headers.cookie, TOKEN_COOKIE);
  if (cookie !== undefined) checks.push({ check: verifier.verify(cookie, now, ttlSeconds), fromCookie: true });
  const header = headerOf(headers, TOKEN_HEADER);
  if (header !== undefined) checks.push({ check: verifier.verify(header, now, ttlSeconds), fromCookie: false });

  const carried: CarriedTokens = { valid: [], rejected: [], cookieRejected: false };
  for (const { check, fromCookie } of checks) {
    if (check.ok) carried.valid.push({ token: check.token, fromCookie });
    else {
      carried.rejected.push(check.reason);
      carried.cookieRejected ||= fromCookie;
    }
  }
  return carried;
}
