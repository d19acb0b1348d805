import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { doubleCsrf } from 'csrf-csrf';

export const CSRF_COOKIE = 'csrf';
export const CSRF_FIELD = '_csrf';

/**
 * Stateless double-submit CSRF tokens keyed by the shared secrets, so that a
 * form rendered by a replica validates on the primary after a replay. The
 * secrets are derived for this use only, so a CSRF key is never a token key.
 */
export function createCsrf(secrets: readonly string[]) {
  const keys = secrets.map((secret) => createHash('sha256').update(`csrf\0${secret}`).digest('base64url'));
  return doubleCsrf({
    getSecret: () => keys,
    // The blog has no sessions or accounts: the token is bound to the browser's
    // CSRF cookie alone, with SameSite=Lax as the first line of defence.
    getSessionIdentifier: () => '',
    cookieName: CSRF_COOKIE,
    // Secure is decided per request (https or not) where the token is made: see articles.ts.
    cookieOptions: { sameSite: 'lax', path: '/', httpOnly: true, secure: false },
    getCsrfTokenFromRequest: (req: Request) => {
      const field: unknown = (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD];
      return typeof field === 'string' ? field : req.get('x-csrf-token');
    },
  });
}
