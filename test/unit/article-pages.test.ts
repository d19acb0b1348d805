import { describe, expect, it } from 'vitest';
import { formatCursor, pageOf, parseCursor } from '../../src/page.js';

const at = (iso: string, id: number) => ({ created: new Date(iso), id });

describe('page cursors', () => {
  it('are an article’s creation time and id, and read back', () => {
    const cursor = at('2024-05-01T09:30:00.000Z', 42);
    expect(formatCursor(cursor)).toBe('2024-05-01T09:30:00.000Z.42');
    expect(parseCursor('2024-05-01T09:30:00.000Z.42')).toEqual(cursor);
  });

  it.each([
    '',
    '42',
    '2024-05-01T09:30:00.000Z',
    '2024-05-01T09:30:00Z.4',
    '2024-02-30T00:00:00.000Z.4',
    '2024-05-01T09:30:00.000Z.0',
    '2024-05-01T09:30:00.000Z.-1',
    `2024-05-01T09:30:00.000Z.${'9'.repeat(16)}`,
    ' 2024-05-01T09:30:00.000Z.4',
  ])('refuses %j', (raw) => expect(parseCursor(raw)).toBeNull());
});

describe('pageOf', () => {
  const items = [at('2024-01-03T00:00:00.000Z', 3), at('2024-01-02T00:00:00.000Z', 2)];
  it('links the first page to older ones only when there are more', () => {
    expect(pageOf(items, true, {})).toEqual({ items, newer: null, older: items[1] });
    expect(pageOf(items, false, {})).toEqual({ items, newer: null, older: null });
  });
  it('links a page of older items back to newer ones', () => {
    const before = at('2024-01-04T00:00:00.000Z', 4);
    expect(pageOf(items, false, { before })).toEqual({ items, newer: items[0], older: null });
    expect(pageOf([], false, { before })).toEqual({ items: [], newer: before, older: null });
  });
  it('links a page of newer items both ways', () => {
    const after = at('2024-01-01T00:00:00.000Z', 1);
    expect(pageOf(items, true, { after })).toEqual({ items, newer: items[0], older: items[1] });
  });
});
