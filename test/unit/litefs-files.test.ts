import { describe, expect, it } from 'vitest';
import { formatLagFile, formatPosFile, LAG_NOT_SYNCED, parseLagFile, parsePosFile } from '../../src/ryw/litefs/files.js';
import { formatTxid, parseTxid, reached } from '../../src/ryw/position.js';

const parsePositionFile = (content: string) => parsePosFile(content)?.txid ?? null;

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

  it('keeps the checksum, and writes what it reads', () => {
    const content = '000000000000002a/c05e73159e1af0cf\n';
    expect(parsePosFile(content)).toEqual({ txid: 42n, checksum: 'c05e73159e1af0cf' });
    expect(formatPosFile(parsePosFile(content)!)).toBe(content);
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

describe('the .lag file', () => {
  it.each([
    ['+0000000000\n', 0],
    ['+0000001250\n', 1250],
    ['+0000001250', 1250],
  ])('reads %j as %d ms', (content, ms) => {
    expect(parseLagFile(content)).toBe(ms);
  });

  it.each([
    ['not synced yet', `+${LAG_NOT_SYNCED}\n`],
    ['negative', '-0000000005\n'],
    ['malformed', 'soon\n'],
    ['padded', ' +0000000005\n'],
    ['trailing garbage', '12ms\n'],
    ['two lines', '+00000\n+0000\n'],
    ['empty', ''],
  ])('is "unknown" when %s', (_name, content) => {
    expect(parseLagFile(content)).toBeNull();
  });

  it('writes what LiteFS writes (%+010d)', () => {
    expect(formatLagFile(1250)).toBe('+000001250\n');
    expect(formatLagFile(0)).toBe('+000000000\n');
    expect(formatLagFile(-5)).toBe('-000000005\n');
    expect(parseLagFile(formatLagFile(987))).toBe(987);
  });
});
