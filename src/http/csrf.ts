import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { doubleCsrf, type DoubleCsrfConfigOptions } from 'csrf-csrf';
import { isCrossSite } from './same-site.js';

export const CSRF_COOKIE = 'csrf';
export const CSRF_FIELD = '_csrf';
/**
 * CSRF keys change every window: the current window's key signs, the current
 * and the previous one verify, so a form is good for one to two windows
 * (4 to 8 hours) after it was rendered. Long enough to write an article in;
 * and when it runs out nothing is lost: the form comes back with the text
 * and a fresh token (src/http/articles.ts).
 */
export const CSRF_TOKEN_TTL_MS = 4 * 60 * 60 * 1000;

export interface CsrfOptions {
  /** The window's length; default CSRF_TOKEN_TTL_MS. */
  windowMs?: number;
  now?: () => number;
}

/**
 * Stateless double-submit CSRF tokens keyed by the shared secrets, so that a
 * form rendered by a replica validates on the primary after a replay. The
 * secrets are derived for this use only, so a CSRF key is never a token key,
 * and per time window, so a token expires without any state to keep.
 *
 * `validateRequest` also refuses a request sent from another site (see
 * isCrossSite()): the form route then shows the form again, text kept.
 */
export function createCsrf(secrets: readonly string[], options: CsrfOptions = {}) {
  const windowMs = options.windowMs ?? CSRF_TOKEN_TTL_MS;
  const now = options.now ?? Date.now;
  const windowKey = (secret: string, window: number) => createHash('sha256').update(`csrf\0${window}\0${secret}`).digest('base64url');
  const currentWindow = () => Math.floor(now() / windowMs);

  const shared = {
    // Not bound to the author's session: forms are opened before signing in
    // (sign-in, setup) as well as after; the token is bound to the browser's
    // CSRF cookie alone, with SameSite=Lax as the first line of defence.
    getSessionIdentifier: () => '',
    cookieName: CSRF_COOKIE,
    // Secure is decided per request (https or not) where the token is made: see articles.ts.
    cookieOptions: { sameSite: 'lax', path: '/', httpOnly: true, secure: false },
    getCsrfTokenFromRequest: (req: Request) => {
      const field: unknown = (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD];
      return typeof field === 'string' ? field : req.get('x-csrf-token');
    },
  } satisfies Omit<DoubleCsrfConfigOptions, 'getSecret'>;

  // Generating reuses the cookie's token only while it is signed with the
  // current window's key of the first secret: a form is always rendered with
  // a full window ahead of it, and tabs opened together share one token.
  const signer = doubleCsrf({ ...shared, getSecret: () => windowKey(secrets[0]!, currentWindow()) });
  // Verifying: every secret (rotation), this window and the one before, and
  // the next, in case the instance that rendered the form runs a little ahead.
  const verifier = doubleCsrf({
    ...shared,
    getSecret: () => {
      const window = currentWindow();
      return secrets.flatMap((secret) => [window, window - 1, window + 1].map((w) => windowKey(secret, w)));
    },
  });

  return {
    generateCsrfToken: signer.generateCsrfToken,
    validateRequest: (req: Request): boolean => !isCrossSite(req) && verifier.validateRequest(req),
  };
}

export type Csrf = ReturnType<typeof createCsrf>;
