import type { RequestHandler } from 'express';

// Every cookie of ours carries the read-your-writes token's attributes:
// HttpOnly, SameSite=Lax, Path=/, Secure over https.
export { isHttps, tokenCookieOptions as cookieOptions } from '../ryw/index.js';

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
