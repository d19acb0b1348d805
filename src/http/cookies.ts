import type { CookieOptions, Request } from 'express';

/** Whether the client reached us over https, directly or through a TLS-terminating proxy (Fly's edge). */
export function isHttps(req: Request): boolean {
  return req.secure || req.get('x-forwarded-proto')?.split(',')[0]?.trim() === 'https';
}

/** The attributes every cookie of ours carries: HttpOnly, SameSite=Lax, Path=/, Secure over https. */
export function cookieOptions(req: Request): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', path: '/', secure: isHttps(req) };
}
