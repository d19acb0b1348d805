import type { CookieOptions, Request, RequestHandler } from 'express';

/** Whether the client reached us over https, directly or through a TLS-terminating proxy (Fly's edge). */
export function isHttps(req: Request): boolean {
  return req.secure || req.get('x-forwarded-proto')?.split(',')[0]?.trim() === 'https';
}

/** The attributes every cookie of ours carries: HttpOnly, SameSite=Lax, Path=/, Secure over https. */
export function cookieOptions(req: Request): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', path: '/', secure: isHttps(req) };
}

/**
 * Mount right after cookieParser(): it decodes cookies of the `j:` form
 * (`csrf=j:{}`) into objects and arrays, which code expecting strings (ours,
 * csrf-csrf) would trip on. We never set such cookies, so a value that is not
 * a string is not one of ours: it is dropped, as if the browser had not sent it.
 */
export const stringCookiesOnly: RequestHandler = function stringCookiesOnly(req, _res, next) {
  const jar = req.cookies as Record<string, unknown> | undefined;
  if (jar) for (const name of Object.keys(jar)) if (typeof jar[name] !== 'string') delete jar[name];
  next();
};
