import { describe, expect, it } from 'vitest';
import { formatTxid, parsePositionFile, parseTxid, reached } from '../../src/position.js';

describe('the -pos file', () => {
  it('reads the TXID of a well-formed file exactly', () => {
    expect(parsePositionFile('000000000000002a/0123456789abcdef\n')).toBe(42n);
    expect(parsePositionFile('ffffffffffffffff/0000000000000000\n')).toBe(0xffffffffffffffffn);
  });

  it('treats a missing newline as fine (a read raced the write of the last byte)', () => {
    expect(parsePositionFile('0000000000000003/0123456789abcdef')).toBe(3n);
  });

  it.each([
    ['empty', ''],
    ['truncated', '00000000000000'],
    ['uppercase hex', '000000000000002A/0123456789abcdef\n'],
    ['short TXID', '2a/0123456789abcdef\n'],
    ['no checksum', '000000000000002a\n'],
    ['trailing junk', '000000000000002a/0123456789abcdef\nextra'],
    ['negative', '-00000000000002a/0123456789abcdef\n'],
  ])('is "position unknown" when %s', (_name, content) => {
    expect(parsePositionFile(content)).toBeNull();
  });

  it('round-trips the 16-digit form LiteFS writes', () => {
    expect(formatTxid(42n)).toBe('000000000000002a');
    expect(parseTxid(formatTxid(123456789n))).toBe(123456789n);
    expect(parseTxid('2a')).toBeNull();
  });

  it('knows an unknown position has reached nothing', () => {
    expect(reached(null, 0n)).toBe(false);
    expect(reached(5n, 5n)).toBe(true);
    expect(reached(4n, 5n)).toBe(false);
  });
});
