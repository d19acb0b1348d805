import type { IncomingMessage } from 'node:http';
import type { CookieOptions, Request } from 'express';

/** Longest Cookie header searched for the token: browsers send at most a few KiB. */
const MAX_COOKIE_HEADER = 16 * 1024;

/**
 * One cookie's value from a `Cookie` header, percent-decoded, as the browser
 * sent it: no JSON (`j:`) or signature decoding by some other middleware.
 * The first occurrence wins, as in the `cookie` package.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length > MAX_COOKIE_HEADER) return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

/**
 * Whether the client reached us over https, directly or through a
 * TLS-terminating proxy (Fly's edge). Of a bare request too (a server that
 * answers some requests before Express): Express's `req.secure` is the
 * socket's TLS unless a proxy is trusted, and the proxy's word is read here.
 */
export function isHttps(req: IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted === true) return true;
  const proto = req.headers['x-forwarded-proto'];
  return (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim() === 'https';
}

/** The token cookie's attributes: HttpOnly, SameSite=Lax, Path=/, Secure over https. */
export function tokenCookieOptions(req: Request): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', path: '/', secure: isHttps(req) };
}
