import { createHash, randomBytes } from 'node:crypto';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import {
  MAX_NAME_LENGTH,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  nameKey,
  normalizeName,
  normalizePassword,
  validateNewAuthor,
  type AuthorErrors,
  type AuthorStore,
  type SessionStore,
  type SignedInAuthor,
} from '../author.js';
import { DEFAULT_SCRYPT_PARAMS, hashPassword, needsRehash, standInHash, verifyPassword, type ScryptParams } from '../password.js';
import { SignInLimiter } from '../sign-in-limits.js';
import { clientAddress } from './client-address.js';
import { confirmCommitted, markCommitted } from './committed.js';
import { cookieOptions } from './cookies.js';
import type { Csrf } from './csrf.js';
import { isDatabaseRefusal, setRetryAfter } from './errors.js';
import { refusedBeforeRoute } from './refused-early.js';
import { CROSS_SITE_MESSAGE, isCrossSite } from './same-site.js';
import type { Render } from './views.js';

declare global {
  // Express's own way to type `res.locals` (declaration merging).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Locals {
      /** Set by sessionMiddleware() on every request it sees: the signed-in author, or null. */
      author?: SignedInAuthor | null;
    }
  }
}

export const SESSION_COOKIE = 'session';
/**
 * A session lasts this long from sign-in, then the author signs in again.
 * Fixed, not sliding: extending it would be a write on every page, and pages
 * are read on replicas, which cannot write.
 */
export const SESSION_TTL_MS = 30 * 24 * 60 * 60 * 1000;
/** POST paths whose forms come back with the name kept when refused as cross-site (see sameSiteWrites()). */
export const AUTH_FORM_PATHS: readonly string[] = ['/signin', '/setup'];
/** Sign-in and setup forms are a name and a password: far below this. */
export const AUTH_FORM_BODY_LIMIT = '16kb';
const LIMITS = { maxName: MAX_NAME_LENGTH, minPassword: MIN_PASSWORD_LENGTH, maxPassword: MAX_PASSWORD_LENGTH };
/** What a refused sign-in says, whether the name or the password was wrong: nothing tells which names exist. */
export const SIGN_IN_REFUSED = 'That name and password do not match. Check both and try again.';
/** 256 random bits: unguessable, and (hashed) the sessions table's key. */
const SESSION_ID_BYTES = 32;
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A new session id, as the cookie carries it. */
export function newSessionId(): string {
  return randomBytes(SESSION_ID_BYTES).toString('base64url');
}

/** What the sessions table stores instead of the id: SHA-256 (the id has 256 bits of entropy, so no salt or slow hash is needed). */
export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

/** The session id the request carries, if it is well-formed. */
export function sessionIdOf(req: Request): string | null {
  const value: unknown = (req.cookies as Record<string, unknown> | undefined)?.[SESSION_COOKIE];
  return typeof value === 'string' && SESSION_ID_PATTERN.test(value) ? value : null;
}

export interface SessionMiddlewareOptions {
  sessions: SessionStore;
  /** For requireAuthor()'s sign-in page (a form POSTed while signed out); without them it answers plain 401s. */
  render?: Render;
  csrf?: Csrf;
  now?: () => number;
}

/** What requireAuthor() shows for a write refused while signed out; set per response by sessionMiddleware(). */
const signInPages = new WeakMap<Response, (req: Request, next: string) => void>();

/**
 * Sets `res.locals.author` from the session cookie on every request. Mount
 * it after the read-your-writes middleware: on a replica, a reader who just
 * signed in (on the primary) carries a token, and the middleware waits for
 * it before this looks the session up, so the session row is there and the
 * page never flashes "signed out".
 *
 * A lookup that meets a locked replica throws AppError('busy'), which the
 * read-your-writes layer's busy handler replays to the primary.
 *
 * @example
 * app.use(ryw.middleware);
 * app.use(sessionMiddleware({ sessions, render, csrf }));
 */
export function sessionMiddleware(options: SessionMiddlewareOptions): RequestHandler {
  const now = options.now ?? Date.now;
  const { render, csrf } = options;
  return function sessionLookup(req, res, next) {
    const id = sessionIdOf(req);
    const author = id === null ? null : options.sessions.findSession(hashSessionId(id), new Date(now()));
    res.locals.author = author;
    // A page that names its reader is theirs alone (see cache-control.ts, which never loosens this).
    if (author) res.setHeader('Cache-Control', 'private');
    if (render && csrf) {
      signInPages.set(res, (request, nextPath) =>
        render(
          res,
          'signin',
          {
            ...LIMITS,
            name: '',
            next: nextPath,
            problem: 'You need to sign in first: nothing was saved. Sign in, then send it again.',
            csrfToken: csrf.generateCsrfToken(request, res, { cookieOptions: cookieOptions(request) }),
          },
          401,
        ),
      );
    }
    next();
  };
}

/** A `next=` target: a path of this site only (never `//evil.example` nor `/\evil.example`). */
export function safeNext(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length > 2000) return '/';
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return '/';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) return '/';
  return raw;
}

/** Where to send a reader to sign in, and back to `next` afterwards. */
export function signInPath(next: string): string {
  const target = safeNext(next);
  return target === '/' ? '/signin' : `/signin?next=${encodeURIComponent(target)}`;
}

/**
 * Lets only a signed-in author through. Signed out: a page (GET, HEAD) is
 * redirected (303) to the sign-in form, which comes back here; a JSON client
 * gets 401 and JSON; a form POSTed by a browser gets 401 and the sign-in
 * form (nothing was saved; public/app.js keeps the draft in the browser).
 *
 * @example
 * router.post('/new', requireAuthor, publish);
 */
export const requireAuthor: RequestHandler = function requireAuthor(req, res, next) {
  if (res.locals.author) return next();
  const read = req.method === 'GET' || req.method === 'HEAD';
  const wants = req.accepts(['html', 'json']);
  if (read && wants !== 'json') return res.redirect(303, signInPath(req.originalUrl));
  res.status(401).set('Cache-Control', 'no-store');
  const message = 'Sign in first: only authors may do that.';
  if (wants === 'json') return void res.json({ error: 'unauthorized', message });
  const page = signInPages.get(res);
  if (page) return page(req, read ? req.originalUrl : req.path);
  res.type('text/plain').send(`${message}\n`);
};

/**
 * Wraps the views' renderer so that every page knows who is signed in: the
 * layout's nav shows "Sign in", or the author's name and a "Sign out" form,
 * whose CSRF token is the page's own when it has one (one token per
 * response: two would set two different `csrf` cookies, and the page's
 * other form would carry the wrong one).
 */
export function withSignedInAuthor(render: Render, csrf: Csrf): Render {
  return (res, view, data = {}, status) => {
    const author = res.locals.author ?? null;
    // Undefined: the session was never looked up (the lookup itself failed,
    // the database locked): the page neither names an author nor offers to
    // sign in, which would tell a signed-in reader they are signed out.
    const sessionKnown = res.locals.author !== undefined;
    const req = res.req;
    const signOutToken =
      author === null
        ? null
        : typeof data.csrfToken === 'string'
          ? data.csrfToken
          : csrf.generateCsrfToken(req, res, { cookieOptions: cookieOptions(req) });
    render(res, view, { ...data, author, sessionKnown, signOutToken }, status);
  };
}

export interface AuthRoutesOptions {
  authors: AuthorStore;
  sessions: SessionStore;
  csrf: Csrf;
  render: Render;
  /** Sign-in limits (default: ACCOUNT_LIMIT and ADDRESS_LIMIT, in memory). */
  limiter?: SignInLimiter;
  /** Believe `Fly-Client-IP` for the client's address (only behind Fly's edge, which sets it). */
  trustFlyClientIp?: boolean;
  /** scrypt's cost for new hashes (tests lower it); see DEFAULT_SCRYPT_PARAMS. */
  passwordParams?: ScryptParams;
  now?: () => number;
}

interface FormState {
  name: string;
  problem?: string;
  errors?: AuthorErrors;
}

/**
 * `/signin`, `/signout` and `/setup`. Every POST here is a write (a session
 * row made or deleted, the first author): on a replica the read-your-writes
 * middleware replays it to the primary, which answers and hands the browser
 * a token, so the next page on any replica waits until the session is there.
 *
 * With RYW_DURABILITY=standby each waits for a standby's confirmation too
 * (settled()), but is never refused for the lack of one: a session or a
 * sign-out lost in a failover costs a sign-in, not an author's text
 * (docs/decisions/0010-standby-durability.md). Unconfirmed, the answer
 * carries no token, as every unconfirmed write's.
 */
export function authRoutes(options: AuthRoutesOptions): Router {
  const { authors, sessions, csrf, render } = options;
  const now = options.now ?? Date.now;
  const limiter = options.limiter ?? new SignInLimiter();
  const params = options.passwordParams ?? DEFAULT_SCRYPT_PARAMS;
  const form = express.urlencoded({ extended: false, limit: AUTH_FORM_BODY_LIMIT });
  const router = Router();

  const token = (req: Request, res: Response) => csrf.generateCsrfToken(req, res, { cookieOptions: cookieOptions(req) });
  const showSignIn = (req: Request, res: Response, status: number, state: FormState & { next: string }) =>
    render(res, 'signin', { ...LIMITS, ...state, csrfToken: token(req, res) }, status);
  const showSetup = (req: Request, res: Response, status: number, state: FormState) =>
    render(res, 'setup', { ...LIMITS, errors: {}, ...state, taken: false, csrfToken: token(req, res) }, status);
  const showTaken = (res: Response, status: number) => render(res, 'setup', { ...LIMITS, taken: true }, status);

  /** Waits (at most RYW_DURABILITY_WAIT_MS) for the write to be durable; the answer goes out either way. */
  const settled = async (res: Response): Promise<void> => {
    await confirmCommitted(res);
  };

  const expiredProblem = (req: Request, what: string) =>
    isCrossSite(req)
      ? CROSS_SITE_MESSAGE
      : `This form had expired, so ${what}. Your name is still here: enter your password and send it again.`;

  /**
   * Starts a session for `authorId`: the row (a write, committed first),
   * then the cookie. Throws, having set no cookie, when a write is refused.
   */
  const signIn = (req: Request, res: Response, authorId: number) => {
    const id = newSessionId();
    const at = now();
    sessions.createSession({ idHash: hashSessionId(id), authorId, expires: new Date(at + SESSION_TTL_MS) }, new Date(at));
    markCommitted(res);
    // A session id the browser had before is not reused: a new one per sign-in (no fixation).
    // Ended only once the new one is committed: a refused sign-in leaves the
    // browser as signed in as it was (the new row, whose id nobody was given, expires unused).
    const previous = sessionIdOf(req);
    if (previous !== null) sessions.deleteSession(hashSessionId(previous));
    res.cookie(SESSION_COOKIE, id, { ...cookieOptions(req), maxAge: SESSION_TTL_MS });
  };

  /**
   * The store could not commit: say so (503, Retry-After) with the form
   * kept, as articles.ts does; `outcome` says what that left (by default,
   * nothing changed). Anything else is a bug and goes on to the error handler.
   */
  const refusedWrite = (
    error: unknown,
    res: Response,
    show: (status: number, problem: string) => void,
    outcome = 'Nothing changed: try again in a moment.',
  ) => {
    if (!isDatabaseRefusal(error)) throw error;
    setRetryAfter(res, error);
    show(503, `The database could not save this just now${error.code === 'busy' ? ' (it was busy)' : ''}. ${outcome}`);
  };

  router.get('/signin', (req, res) => {
    const next = safeNext(req.query.next);
    if (res.locals.author) return res.redirect(303, next);
    showSignIn(req, res, 200, { name: '', next });
  });

  router.post('/signin', form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const typedName = typeof body.name === 'string' ? body.name.slice(0, 4 * MAX_NAME_LENGTH) : '';
    const next = safeNext(body.next);
    const state = { name: typedName, next };
    if (!csrf.validateRequest(req)) return showSignIn(req, res, 403, { ...state, problem: expiredProblem(req, 'you were not signed in') });
    // Nowhere to write the session (no primary: refused-early.ts): the form again, no password checked.
    const early = refusedBeforeRoute(res);
    if (early) return refusedWrite(early, res, (status, problem) => showSignIn(req, res, status, { ...state, problem }));
    const name = normalizeName(typedName);
    const password = typeof body.password === 'string' ? normalizePassword(body.password) : '';
    if (name === '' || password === '')
      return showSignIn(req, res, 400, { ...state, problem: 'Please enter your name and your password.' });

    // Looked up first: a read the database refuses (busy) is not a failed sign-in.
    const author = authors.findByName(name);
    const account = nameKey(name);
    const address = clientAddress(req, options.trustFlyClientIp ?? false);
    // Counted as a failure from here on, while the password is hashed, so
    // that attempts sent all at once cannot all get past the limit.
    const limit = limiter.attempt(account, address, now());
    if (limit.kind === 'refuse') {
      const minutes = Math.max(1, Math.ceil(limit.retryAfterMs / 60_000));
      res.setHeader('Retry-After', String(Math.ceil(limit.retryAfterMs / 1000)));
      const from = limit.by === 'account' ? 'for this name' : 'from your network';
      return showSignIn(req, res, 429, {
        ...state,
        problem: `Too many failed sign-ins ${from}. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
      });
    }

    // A password no author can have is not hashed (it would only cost time), but still counts as a failure.
    const tooLong = [...password].length > MAX_PASSWORD_LENGTH;
    const matches = !tooLong && (await verifyPassword(password, author?.passwordHash ?? (await standInHash(params))));
    if (!author || !matches) return showSignIn(req, res, 401, { ...state, problem: SIGN_IN_REFUSED });
    limiter.succeeded(limit.attempt);
    try {
      if (needsRehash(author.passwordHash, params)) authors.setPasswordHash(author.id, await hashPassword(password, params));
      signIn(req, res, author.id);
    } catch (error) {
      return refusedWrite(error, res, (status, problem) => showSignIn(req, res, status, { ...state, problem }));
    }
    await settled(res);
    res.redirect(303, next);
  });

  router.post('/signout', form, async (req, res) => {
    if (!csrf.validateRequest(req)) {
      // Still signed in: the nav's fresh "Sign out" form is on the page this renders.
      return render(
        res,
        'error',
        {
          status: 403,
          message: isCrossSite(req) ? CROSS_SITE_MESSAGE : 'This page had expired, so you are still signed in. Press Sign out again.',
        },
        403,
      );
    }
    const id = sessionIdOf(req);
    try {
      // Deleted before the answer: once this commits, the cookie opens nothing, on any instance the row's deletion has reached.
      if (id !== null) sessions.deleteSession(hashSessionId(id));
    } catch (error) {
      return refusedWrite(error, res, (status, problem) =>
        render(res, 'error', { status, message: `${problem} You are still signed in.` }, status),
      );
    }
    if (id !== null) await settled(res);
    res.clearCookie(SESSION_COOKIE, cookieOptions(req));
    res.locals.author = null;
    res.redirect(303, '/');
  });

  router.get('/setup', (req, res) => {
    // Only while the blog has no author; afterwards the page is gone for good.
    if (authors.hasAuthors()) return res.redirect(303, '/signin');
    showSetup(req, res, 200, { name: '' });
  });

  router.post('/setup', form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const typedName = typeof body.name === 'string' ? body.name.slice(0, 4 * MAX_NAME_LENGTH) : '';
    if (!csrf.validateRequest(req))
      return showSetup(req, res, 403, { name: typedName, problem: expiredProblem(req, 'no author was created') });
    const early = refusedBeforeRoute(res);
    if (early) return refusedWrite(early, res, (status, problem) => showSetup(req, res, status, { name: typedName, problem }));
    if (authors.hasAuthors()) return showTaken(res, 409);
    const checked = validateNewAuthor({ name: typedName, password: body.password });
    if (!checked.ok) return showSetup(req, res, 400, { name: typedName, errors: checked.errors });
    // Hashing yields the event loop; another setup may get in meanwhile:
    // create() checks again inside its write transaction, and only the first wins.
    const passwordHash = await hashPassword(checked.value.password, params);
    let author;
    try {
      author = authors.create({ name: checked.value.name, passwordHash }, { onlyIfFirst: true });
    } catch (error) {
      return refusedWrite(error, res, (status, problem) => showSetup(req, res, status, { name: typedName, problem }));
    }
    if (!author) return showTaken(res, 409);
    markCommitted(res);
    try {
      signIn(req, res, author.id);
    } catch (error) {
      // The author is committed, only their session is not: setup is closed
      // now (sending it again would answer 409), so it is the sign-in form.
      const created = `Your author ${author.name} was created, but you are not signed in yet: enter your password to sign in.`;
      return refusedWrite(
        error,
        res,
        (status, problem) => showSignIn(req, res, status, { name: author.name, next: '/', problem }),
        created,
      );
    }
    await settled(res);
    res.redirect(303, '/');
  });

  return router;
}
