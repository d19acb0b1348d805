import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import onHeaders from 'on-headers';
import {
  decide,
  decideWhenBusy,
  flyReplayHeader,
  ofOlderLineage,
  parseReplaySource,
  type Fallback,
  type NodeFacts,
  type ReplayTarget,
  type RequestFacts,
  type Timing,
  type Token,
} from '../consistency.js';
import { AppError, isAppError } from '../error.js';
import type { LiteFSNode } from '../litefs/node.js';
import { cookieOptions } from './cookies.js';
import { signToken, tokenPayload, TokenVerifier, TOKEN_COOKIE, TOKEN_HEADER, type TokenCheck, type TokenRejection } from './ryw-token.js';

export const REGION_PATTERN = /^[a-z0-9]{2,12}$/;
/** What a client is told to wait before retrying a 503. */
export const RETRY_AFTER_S = 1;

/** Where the middleware leaves what it decided on, for replayWhenBusy(). */
const FACTS = 'readYourWritesDecidedOn';
interface DecidedOn {
  request: RequestFacts;
  node: NodeFacts;
}

/** What the rest of the request (views, handlers) may know of the decision. */
export interface ConsistencyLocals {
  timing: Timing;
  waitedMs: number;
  stale: boolean;
}

export interface ReadYourWritesObserver {
  decided(timing: Timing, waitedMs: number): void;
  /** `lineage`: valid, but issued by an older lineage of the database, so never to be met. */
  dropped(reason: TokenRejection | 'lineage'): void;
}

export interface ReadYourWritesOptions {
  node: LiteFSNode;
  secrets: readonly string[];
  waitMs: number;
  fallback: Fallback;
  ttlSeconds: number;
  /**
   * False turns read-your-writes off (no tokens issued or honoured) while
   * writes are still replayed to the primary: the baseline for benchmarks and
   * the checker's proof that it can fail.
   */
  enabled?: boolean;
  /** GETs that write, e.g. `/unsubscribe`: they go to the primary like any POST. */
  writePaths?: readonly string[];
  /** Requests that never wait and never carry or set tokens (health, metrics, static files). */
  exempt?: (req: Request) => boolean;
  observer?: ReadYourWritesObserver;
  now?: () => number;
}

/** What the request carried: every valid token (with where it came from), and why any other was refused. */
interface CarriedTokens {
  valid: { token: Token; fromCookie: boolean }[];
  rejected: TokenRejection[];
  cookieRejected: boolean;
}

/**
 * The methods that never write (RFC 9110's safe methods): served where they
 * land, and never answered with a token. Every other method is a write.
 */
export const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * Read-your-writes for an app on LiteFS: replays writes to the primary, issues
 * a signed position token after each write served on the primary, and on a
 * replica serves, waits, replays, serves stale or refuses a read carrying a
 * token, as `decide()` says. Every response gets `Server-Timing: ryw;desc=…`.
 *
 * @example
 * app.use(cookieParser());
 * app.use(readYourWrites({ node, secrets, waitMs: 500, fallback: 'replay', ttlSeconds: 300 }));
 */
export function readYourWrites(options: ReadYourWritesOptions): RequestHandler {
  const { node, secrets, waitMs, fallback, ttlSeconds, observer } = options;
  const writePaths = new Set(options.writePaths ?? []);
  const now = options.now ?? Date.now;
  const enabled = options.enabled ?? true;
  const verifier = new TokenVerifier(secrets);

  return async function readYourWritesMiddleware(req: Request, res: Response, next: NextFunction) {
    const locals: ConsistencyLocals = { timing: 'none', waitedMs: 0, stale: false };
    res.locals.consistency = locals;
    if (options.exempt?.(req)) {
      res.setHeader('Server-Timing', 'ryw;desc=none;dur=0');
      return next();
    }

    let issue = false;
    onHeaders(res, () => {
      // Only a write the app answered with success (it committed before
      // answering) moved the position the reader must see.
      if (issue && res.statusCode >= 200 && res.statusCode < 400) {
        const position = node.committedPosition();
        if (position !== null) {
          const token = signToken(tokenPayload(position, now()), secrets);
          // The cookie carries cookie-parser's signed form, exactly the header's value.
          res.cookie(TOKEN_COOKIE, token, { ...cookieOptions(req), maxAge: ttlSeconds * 1000 });
          res.setHeader(TOKEN_HEADER, token);
          locals.timing = 'issued';
        }
      }
      res.setHeader('Server-Timing', `ryw;desc=${locals.timing};dur=${Math.round(locals.waitedMs)}`);
      observer?.decided(locals.timing, locals.waitedMs);
    });

    const region = req.query.region;
    if (region !== undefined && (typeof region !== 'string' || !REGION_PATTERN.test(region))) {
      throw new AppError('invalid', 'The region must be 2 to 12 lowercase letters or digits, like ?region=syd.');
    }

    const write = !READ_METHODS.has(req.method) || writePaths.has(req.path);
    const carried = node.onLiteFS && enabled ? readTokens(req, verifier, now(), ttlSeconds) : noTokens;
    const tokens = carried.valid.map((carriedToken) => carriedToken.token);
    const highest = tokens.reduce<Token | null>((best, token) => (best === null || token.position > best.position ? token : best), null);
    // Without a token the position does not matter: no file is read for it.
    const facts = node.facts({ position: highest !== null, tokenPosition: highest?.position });
    res.locals.served = { region: facts.region, instance: facts.instance, role: facts.role };
    for (const reason of carried.rejected) observer?.dropped(reason);
    // Each token is judged on its own: one of an older lineage is dropped
    // (and its cookie cleared) without costing a valid one beside it.
    let clearCookie = carried.cookieRejected;
    if (!write) {
      for (const { token, fromCookie } of carried.valid) {
        if (!ofOlderLineage(token, facts)) continue;
        observer?.dropped('lineage');
        clearCookie ||= fromCookie;
      }
    }
    if (clearCookie) res.clearCookie(TOKEN_COOKIE, cookieOptions(req));

    const source = parseReplaySource(req.get('fly-replay-src'));
    const request: RequestFacts = {
      write,
      tokens,
      region: region ?? null,
      replayedFrom: source?.instance ?? null,
      replayedForToken: source?.state === 'ryw',
    };
    res.locals[FACTS] = { request, node: facts } satisfies DecidedOn;
    const decision = decide(request, facts, fallback);

    let act = decision;
    if (decision.kind === 'wait') {
      const started = performance.now();
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      const caughtUp = await node.watcher.waitFor(decision.until, waitMs, gone.signal);
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
        issue = enabled && write && facts.role === 'primary';
        return next();
      case 'stale':
        locals.timing = 'stale';
        locals.stale = true;
        return next();
      case 'replay':
        locals.timing = 'replayed';
        return replay(res, act.target, write ? 'write' : 'behind');
      case 'reject':
        locals.timing = 'unavailable';
        res.setHeader('Retry-After', String(RETRY_AFTER_S));
        res.status(503).type('text/plain').send(`${act.why} Please try again in a moment.\n`);
        return;
    }
  };
}

const noTokens: CarriedTokens = { valid: [], rejected: [], cookieRejected: false };

/**
 * The tokens a request carries, cookie and header, each checked on its own
 * and the same way, size first, so an oversized cookie costs no HMAC and
 * counts as oversized. A cookie that is not a string (cookie-parser decodes
 * `j:{…}` values as JSON) is no token of ours: malformed.
 */
function readTokens(req: Request, verifier: TokenVerifier, now: number, ttlSeconds: number): CarriedTokens {
  const checks: { check: TokenCheck; fromCookie: boolean }[] = [];
  const cookie = readCookie(req.headers.cookie, TOKEN_COOKIE);
  if (cookie !== undefined) checks.push({ check: verifier.verify(cookie, now, ttlSeconds), fromCookie: true });
  const header = req.get(TOKEN_HEADER);
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

/** Longest Cookie header searched for the token: browsers send at most a few KiB. */
const MAX_COOKIE_HEADER = 16 * 1024;

/**
 * One cookie's value from a `Cookie` header, percent-decoded, as the browser
 * sent it: no JSON (`j:`) or signature decoding by some other middleware, so
 * whatever is there is judged as a token, and refused like any other
 * malformed one. The first occurrence wins, as in the `cookie` package.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > MAX_COOKIE_HEADER) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

const REPLAY_REASONS = {
  write: (primary: string) => `This instance is a read-only replica; replaying the write to the primary (${primary}).`,
  behind: (primary: string) => `This region has not caught up with your latest change yet; replaying the read to the primary (${primary}).`,
  busy: (primary: string) => `This copy of the database is busy applying changes; replaying the read to the primary (${primary}).`,
};

function replay(res: Response, target: ReplayTarget, reason: keyof typeof REPLAY_REASONS): void {
  res.setHeader('fly-replay', flyReplayHeader(target));
  const why = 'region' in target ? `This request asked for region ${target.region}; replaying it there.` : REPLAY_REASONS[reason](target.instance);
  res.status(409).type('text/plain').send(`${why}\n`);
}

/**
 * An error handler for AppError('busy'): a replica whose database is locked
 * (LiteFS applying a transaction over a stalled link) sends reads to the
 * primary instead of failing them, as `decideWhenBusy()` says. Mount it
 * before the general error handler.
 */
export function replayWhenBusy(): ErrorRequestHandler {
  return function replayWhenBusyHandler(error: unknown, _req: Request, res: Response, next: NextFunction) {
    const decidedOn = res.locals[FACTS] as DecidedOn | undefined;
    if (!isAppError(error, 'busy') || !decidedOn || res.headersSent) return next(error);
    const decision = decideWhenBusy(decidedOn.request, decidedOn.node);
    if (decision.kind !== 'replay') return next(error);
    (res.locals.consistency as ConsistencyLocals).timing = 'replayed';
    replay(res, decision.target, 'busy');
  };
}
