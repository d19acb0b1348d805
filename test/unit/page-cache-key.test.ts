/** The page cache's pure parts: keys, states, ETags, Accept-Encoding, and the byte-bounded LRU. */
import { describe, expect, it } from 'vitest';
import { etagOf, memoizedPreferredEncoding, noneMatch, pageKey, preferredEncoding, stateOf } from '../../src/http/page-cache-key.js';
import { ByteLru } from '../../src/http/page-cache-lru.js';

describe('preferredEncoding', () => {
  it.each([
    [undefined, 'identity'],
    ['', 'identity'],
    ['gzip, deflate, br, zstd', 'br'],
    ['gzip, deflate', 'gzip'],
    ['x-gzip', 'gzip'],
    ['br;q=0.5, gzip;q=0.8', 'gzip'],
    ['br;q=0.8, gzip;q=0.8', 'br'],
    ['BR', 'br'],
    ['gzip;q=0, br;q=0', 'identity'],
    ['*', 'br'],
    ['*;q=0.5, br;q=0', 'gzip'],
    ['identity', 'identity'],
    ['deflate, zstd', 'identity'],
    ['gzip;q=nonsense, br', 'br'],
    ['gzip ; q=1.0 , br ; q=0.1', 'gzip'],
  ] as const)('%s → %s', (header, expected) => {
    expect(preferredEncoding(header)).toBe(expected);
  });

  it('is parsed once per distinct header, and the memo stays bounded', () => {
    const encodingOf = memoizedPreferredEncoding(4);
    for (let i = 0; i < 100; i++) expect(encodingOf(`gzip;q=0.${(i % 9) + 1}, x${i}`)).toBe('gzip');
    expect(encodingOf('br')).toBe('br');
  });
});

describe('pageKey', () => {
  it('sorts and re-encodes the query, so one page has one key', () => {
    const a = pageKey('http://blog.test', '/', { search: 'boil water', before: 'x' }, 'none');
    const b = pageKey('http://blog.test', '/', { before: 'x', search: 'boil water' }, 'none');
    expect(a).toBe(b);
    expect(pageKey('http://blog.test', '/', {}, 'none')).toBe(pageKey('http://blog.test', '/', null, 'none'));
  });

  it('tells apart what makes another page: the path, the query, the decision, the site’s address', () => {
    const keys = [
      pageKey('http://blog.test', '/', null, 'none'),
      pageKey('http://blog.test', '/', null, 'fresh'),
      pageKey('http://other.test', '/', null, 'none'),
      pageKey('http://blog.test', '/articles/1', null, 'none'),
      pageKey('http://blog.test', '/', { search: 'a' }, 'none'),
      pageKey('http://blog.test', '/', { search: 'a&b' }, 'none'),
      pageKey('http://blog.test', '/', { search: 'a', b: '' }, 'none'),
      pageKey('http://blog.test', '/', { search: ['a', 'b'] }, 'none'),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('stateOf and etagOf', () => {
  it('a state names the role, the position, its checksum and the generation; a tag adds the epoch, the decision, the process and the coding', () => {
    const states = [
      stateOf('replica', 5n, 'ab'.repeat(8), '1.0'),
      stateOf('replica', 6n, 'ab'.repeat(8), '1.0'),
      // The same TXID of another lineage (a failover reused it): another state.
      stateOf('replica', 5n, 'cd'.repeat(8), '1.0'),
      stateOf('primary', 5n, 'ab'.repeat(8), '1.0'),
      stateOf('replica', 5n, 'ab'.repeat(8), '1.1'),
      stateOf('standalone', null, null, '1.0.3'),
    ];
    expect(new Set(states).size).toBe(states.length);
    const tags = [
      etagOf(states[0]!, 1, 'none', 'boot', 'identity'),
      // The same state come back later (10, 9, 10): another tag.
      etagOf(states[0]!, 3, 'none', 'boot', 'identity'),
      etagOf(states[0]!, 1, 'fresh', 'boot', 'identity'),
      etagOf(states[0]!, 1, 'none', 'other', 'identity'),
      etagOf(states[0]!, 1, 'none', 'boot', 'br'),
      etagOf(states[0]!, 1, 'none', 'boot', 'gzip'),
      etagOf(states[1]!, 1, 'none', 'boot', 'identity'),
    ];
    expect(new Set(tags).size).toBe(tags.length);
    for (const tag of tags) expect(tag).toMatch(/^"[\x21\x23-\x7e]+"$/); // a strong tag's characters
  });

  it('If-None-Match: exact, in a list, weak-compared, or *', () => {
    const tag = '"r5.1.0.n.boot"';
    expect(noneMatch(tag, tag)).toBe(true);
    expect(noneMatch(`"a", ${tag}`, tag)).toBe(true);
    expect(noneMatch(`W/${tag}`, tag)).toBe(true);
    expect(noneMatch('*', tag)).toBe(true);
    expect(noneMatch('"r5.1.0.n.boot-br"', tag)).toBe(false);
    expect(noneMatch('"r4.1.0.n.boot"', tag)).toBe(false);
    expect(noneMatch('', tag)).toBe(false);
  });
});

describe('ByteLru', () => {
  const sized = (bytes: number) => ({ bytes });

  it('evicts the least recently used until the bytes fit, and never holds more than its bound', () => {
    const lru = new ByteLru<{ bytes: number }>(100);
    lru.set('a', sized(40));
    lru.set('b', sized(40));
    lru.get('a'); // b is now the oldest
    lru.set('c', sized(40));
    expect(lru.has('a')).toBe(true);
    expect(lru.has('b')).toBe(false);
    expect(lru.bytes).toBe(80);
    expect(lru.evicted).toBe(1);
    expect(lru.set('huge', sized(101))).toBe(false);
    expect(lru.bytes).toBe(80);
  });

  it('a value that grows (a compressed copy added) pushes others out, or itself when alone too large', () => {
    const lru = new ByteLru<{ bytes: number }>(100);
    const a = sized(30);
    lru.set('a', a);
    lru.set('b', sized(30));
    lru.set('c', sized(30));
    a.bytes += 30;
    lru.resized('a', 30);
    expect(lru.bytes).toBeLessThanOrEqual(100);
    expect(lru.has('a')).toBe(true);
    a.bytes += 50;
    lru.resized('a', 50);
    expect(lru.has('a')).toBe(false);
    expect(lru.bytes).toBeLessThanOrEqual(100);
  });

  it('clear() says how many it dropped', () => {
    const lru = new ByteLru<{ bytes: number }>(100);
    lru.set('a', sized(1));
    lru.set('b', sized(1));
    expect(lru.clear()).toBe(2);
    expect(lru.bytes).toBe(0);
    expect(lru.size).toBe(0);
  });
});
