/**
 * The one error type handlers throw. Codes name what went wrong for the user;
 * a single handler (src/http/errors.ts) maps them to statuses and pages, and
 * logs only the internal ones.
 */
export type ErrorCode =
  | 'invalid' // the request is malformed: 400
  | 'not_found' // 404
  | 'forbidden' // 403 (bad CSRF token, wrong migrate token)
  | 'too_large' // 413
  | 'unavailable' // the database can't take writes right now: 503
  | 'busy' // the database is locked (a replica mid-way through applying a transaction): 503, or a replay
  | 'internal'; // a bug: 500

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

export function isAppError(error: unknown, code?: ErrorCode): error is AppError {
  return error instanceof AppError && (code === undefined || error.code === code);
}
