import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { AppError, isAppError, type ErrorCode } from '../error.js';
import type { Render } from './views.js';

const STATUS: Record<ErrorCode, number> = {
  invalid: 400,
  forbidden: 403,
  not_found: 404,
  too_large: 413,
  unavailable: 503,
  busy: 503,
  internal: 500,
};

/** How long a client should wait before retrying a write the database refused. */
export const UNAVAILABLE_RETRY_AFTER_S = 5;
/** A lock clears sooner than a refused write: the usual cause is a transaction being applied. */
export const BUSY_RETRY_AFTER_S = 1;

/** The database refused the work (locked, or not taking writes): a 503 to retry, never a bug. */
export type DatabaseRefusal = AppError & { code: 'busy' | 'unavailable' };

export function isDatabaseRefusal(error: unknown): error is DatabaseRefusal {
  return isAppError(error, 'busy') || isAppError(error, 'unavailable');
}

/**
 * `Retry-After` for a refusal: sooner for a lock than for a refused write;
 * unless whoever refused it first said (the read-your-writes layer, for a
 * write it had no primary for).
 */
export function setRetryAfter(res: Response, refusal: DatabaseRefusal): void {
  if (res.hasHeader('Retry-After')) return;
  res.setHeader('Retry-After', String(refusal.code === 'busy' ? BUSY_RETRY_AFTER_S : UNAVAILABLE_RETRY_AFTER_S));
}

export function statusOf(error: AppError): number {
  return STATUS[error.code];
}

/** Turns anything thrown by library middleware (body parsers…) into an AppError. */
function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const status = (error as { status?: unknown; statusCode?: unknown }).status ?? (error as { statusCode?: unknown }).statusCode;
  if (status === 413) return new AppError('too_large', 'That request is too large.', { cause: error });
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError(status === 403 ? 'forbidden' : 'invalid', 'That request could not be understood.', { cause: error });
  }
  return new AppError('internal', 'Something went wrong on our side.', { cause: error });
}

/**
 * The one place errors become responses: a status and a page with a plain
 * message. Stack traces go to the log, never to the client, and only internal
 * errors are logged as errors.
 */
export function errorHandler(render: Render, log: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) return next(error);
    const appError = toAppError(error);
    if (appError.code === 'internal') log.error({ err: error, method: req.method, url: req.originalUrl }, 'request failed');
    else log.debug({ err: error, code: appError.code }, 'request refused');
    if (isDatabaseRefusal(appError)) setRetryAfter(res, appError);
    const status = statusOf(appError);
    if (req.accepts(['html', 'json']) === 'json') {
      res.status(status).json({ error: appError.code, message: appError.message });
      return;
    }
    render(res, 'error', { status, message: appError.message }, status);
  };
}

export const notFound: RequestHandler = () => {
  throw new AppError('not_found', 'There is no page here.');
};
