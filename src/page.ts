/**
 * Pages of a newest-first list (the home page, search results), by keyset:
 * a page starts after the last article of the one before it, named by its
 * creation time and id, so that a page shows the same articles however many
 * are published meanwhile, and every article is on some page.
 */

/** Where a page starts: an article's creation time and id (ids break ties). */
export interface Cursor {
  created: Date;
  id: number;
}

/** `before`: the articles older than the cursor (the next page); `after`: newer ones (the page before). At most one. */
export interface PageRequest {
  before?: Cursor;
  after?: Cursor;
}

export interface Page<T> {
  items: T[];
  /** The cursor of the page of newer items (`?after=`), or null on the first page. */
  newer: Cursor | null;
  /** The cursor of the page of older items (`?before=`), or null on the last page. */
  older: Cursor | null;
}

// The creation time as toISOString() writes it (and the database stores it), then the id.
const CURSOR_PATTERN = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\.([1-9][0-9]{0,14})$/;

/** A cursor as a link carries it: `2024-05-01T09:30:00.000Z.42`. */
export function formatCursor(cursor: Cursor): string {
  return `${cursor.created.toISOString()}.${cursor.id}`;
}

/** The cursor of a link, or null when it is not one (the route answers 400). */
export function parseCursor(raw: string): Cursor | null {
  const match = CURSOR_PATTERN.exec(raw);
  if (!match) return null;
  const created = new Date(match[1]!);
  // Well-formed but not a date (month 13), or one toISOString() would write otherwise.
  if (Number.isNaN(created.getTime()) || created.toISOString() !== match[1]) return null;
  return { created, id: Number(match[2]) };
}

/** The cursor of an item: where the page after it starts. */
export const cursorOf = (item: { created: Date; id: number }): Cursor => ({ created: item.created, id: item.id });

/**
 * The page of `items` (newest first, at most a page of them; `more`: there
 * are others beyond them in the request's direction). A page asked for
 * `after` a cursor that reaches the newest article is the first page: the
 * store asks for that instead, so here `after` always has more.
 */
export function pageOf<T extends { created: Date; id: number }>(items: T[], more: boolean, request: PageRequest): Page<T> {
  const first = items[0];
  const last = items.at(-1);
  if (request.after) return { items, newer: more && first ? cursorOf(first) : null, older: last ? cursorOf(last) : request.after };
  return {
    items,
    newer: request.before ? (first ? cursorOf(first) : request.before) : null,
    older: more && last ? cursorOf(last) : null,
  };
}
