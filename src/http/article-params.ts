import type { Request } from 'express';
import { AppError } from '../error.js';
import { formatCursor, parseCursor, type Cursor, type Page, type PageRequest } from '../page.js';

const ID_PATTERN = /^[1-9][0-9]{0,14}$/;

/** An article id from a URL; AppError('invalid') (400) when it is not one. */
export function parseId(raw: unknown): number {
  if (typeof raw !== 'string' || !ID_PATTERN.test(raw)) {
    throw new AppError('invalid', 'Article ids are positive whole numbers, like /articles/42.');
  }
  return Number(raw);
}

/** A query parameter given at most once, as text. */
export function queryString(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined || typeof value === 'string') return value;
  throw new AppError('invalid', `Give ?${name}= once, as plain text.`);
}

const CURSOR_HELP =
  'They name an article by its creation time and id, like 2024-05-01T09:30:00.000Z.42, as the Newer and Older links make them.';

/** Which page a list or search asks for (`?before=` or `?after=`, see src/page.ts); 400 for a malformed one. */
export function pageRequest(req: Request): PageRequest {
  const before = queryString(req, 'before');
  const after = queryString(req, 'after');
  if (before !== undefined && after !== undefined) throw new AppError('invalid', `Give ?before= or ?after=, not both. ${CURSOR_HELP}`);
  const raw = before ?? after;
  if (raw === undefined) return {};
  const cursor = parseCursor(raw);
  if (!cursor)
    throw new AppError(
      'invalid',
      `That page link is malformed: ?${before !== undefined ? 'before' : 'after'}= is not a page position. ${CURSOR_HELP}`,
    );
  return before !== undefined ? { before: cursor } : { after: cursor };
}

/** The Newer and Older links of a page, keeping the other parameters (the search). */
export function pageLinks(
  page: Pick<Page<unknown>, 'newer' | 'older'>,
  params: Record<string, string> = {},
): { newer: string | null; older: string | null } {
  // A cursor has only characters a query may hold as they are (digits, `-:.TZ`): left readable.
  const kept = Object.entries(params).map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  const link = (name: 'before' | 'after', cursor: Cursor | null) =>
    cursor === null ? null : `/?${[...kept, `${name}=${formatCursor(cursor)}`].join('&')}`;
  return { newer: link('after', page.newer), older: link('before', page.older) };
}
