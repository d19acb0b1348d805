/**
 * What a cached page is filed under and named by: pure functions, no
 * framework. The page cache (page-cache.ts) only acts on them.
 */
import type { Position, Role, Timing } from '../ryw/index.js';

/** The consistency decisions a shared page may carry: nothing to tell the reader, or their token met. */
export type SharedTiming = Extract<Timing, 'none' | 'fresh'>;

/** Whether a page served with this decision may be the same for every reader (it shows only `data-ryw` and the footer's word). */
export function isSharedTiming(timing: Timing | undefined): timing is SharedTiming {
  return timing === 'none' || timing === 'fresh';
}

/**
 * Everything the database can show, as this node knows it now: its role,
 * its replication position, the database's checksum after that position
 * (LiteFS's, which names the lineage: after a failover the same TXID can
 * hold other writes, and a replica can be re-snapshotted to them) and a
 * generation that moves on every commit of this process (and, standalone,
 * of any other). Nothing a page shows can change while this string stays
 * the same. A state can come back (the position can go back, then forward
 * again), so the cache also numbers each change (an epoch): see etagOf().
 */
export function stateOf(role: Role, position: Position | null, checksum: string | null, generation: string): string {
  return `${role.charAt(0)}${position === null ? '-' : position.toString(16)}${checksum === null ? '' : `/${checksum}`}.${generation}`;
}

/**
 * The key of a page within one state: its address as the page sees it (the
 * site's base, since links and `og:url` name it; the path; the query,
 * normalised: parameters sorted and re-encoded, so `?a=1&b=2` and
 * `?b=2&a=1`, `+` and `%20` are one page) and the decision it shows.
 */
export function pageKey(base: string, path: string, query: Readonly<Record<string, unknown>> | null, timing: SharedTiming): string {
  const head = `${timing === 'none' ? 'n' : 'f'}${base}${path}`;
  if (query === null) return head;
  const names = Object.keys(query);
  if (names.length === 0) return head;
  names.sort();
  let search = '';
  for (const name of names) {
    const value = query[name];
    const values = Array.isArray(value) ? (value as unknown[]) : [value];
    for (const one of values) search += `${search === '' ? '?' : '&'}${encodeURIComponent(name)}=${encodeURIComponent(String(one))}`;
  }
  return head + search;
}

export type Encoding = 'br' | 'gzip' | 'identity';

/** Preferred first when a client weighs them alike: brotli is smaller at the same cost to us (it is compressed once). */
const PREFERENCE: readonly Encoding[] = ['br', 'gzip', 'identity'];

/**
 * The content coding to send for an `Accept-Encoding` header (RFC 9110
 * 12.5.3): the highest q-value among brotli, gzip and identity, brotli on a
 * tie; `*` stands for any not named. Identity when the header is absent, or
 * when nothing acceptable is left (rather than a 406 no browser wants).
 */
export function preferredEncoding(header: string | undefined): Encoding {
  if (header === undefined || header === '') return 'identity';
  const weights: Partial<Record<Encoding | '*', number>> = {};
  for (const part of header.split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = rawName!.trim().toLowerCase();
    if (name !== 'br' && name !== 'gzip' && name !== 'x-gzip' && name !== 'identity' && name !== '*') continue;
    let q = 1;
    for (const param of params) {
      const [key, value] = param.split('=');
      if (key?.trim().toLowerCase() === 'q') {
        const parsed = Number(value?.trim());
        q = Number.isFinite(parsed) ? Math.min(1, Math.max(0, parsed)) : 0;
      }
    }
    weights[name === 'x-gzip' ? 'gzip' : name] = q;
  }
  const star = weights['*'];
  let best: Encoding = 'identity';
  let bestQ = -1;
  for (const encoding of PREFERENCE) {
    // Identity is acceptable unless refused by name or by `*;q=0`.
    const q = weights[encoding] ?? star ?? (encoding === 'identity' ? 0.001 : 0);
    if (q > 0 && q > bestQ) {
      best = encoding;
      bestQ = q;
    }
  }
  return best;
}

/** How many distinct `Accept-Encoding` headers are remembered (browsers send a handful). */
export const ACCEPT_ENCODING_MEMO = 64;

/** preferredEncoding(), parsed once per distinct header. */
export function memoizedPreferredEncoding(size = ACCEPT_ENCODING_MEMO): (header: string | undefined) => Encoding {
  const memo = new Map<string, Encoding>();
  return (header) => {
    if (header === undefined) return 'identity';
    let encoding = memo.get(header);
    if (encoding === undefined) {
      encoding = preferredEncoding(header);
      if (memo.size >= size) memo.clear();
      memo.set(header, encoding);
    }
    return encoding;
  };
}

const ENCODING_SUFFIX: Readonly<Record<Encoding, string>> = { br: '-br', gzip: '-gz', identity: '' };

/**
 * A strong ETag named by the state and the page's variant, never by hashing
 * the body: within one state (see stateOf()) a URL's page is the same bytes
 * for every reader of that variant. `epoch` counts this process's changes
 * of state, so that no tag is ever given twice for two states, even when a
 * state comes back (10, then 9, then 10 again: the 10 of before may have
 * been confirmed to someone as a page that is gone). `boot` is this
 * process's own, so that a restart (whose epochs and generations start
 * again) or another instance (whose footer names it) never confirms bytes
 * it did not send. Each coding is its own representation, so its own tag
 * (RFC 9110 8.8.3).
 */
export function etagOf(state: string, epoch: number, timing: SharedTiming, boot: string, encoding: Encoding): string {
  return `"${state}.${epoch.toString(36)}.${timing === 'none' ? 'n' : 'f'}.${boot}${ENCODING_SUFFIX[encoding]}"`;
}

/** Whether `If-None-Match` names this tag (weak comparison, as RFC 9110 13.1.2 asks), or is `*`. */
export function noneMatch(header: string, etag: string): boolean {
  if (header === etag) return true;
  const trimmed = header.trim();
  if (trimmed === '*') return true;
  for (const part of trimmed.split(',')) {
    const tag = part.trim();
    if (tag === etag || (tag.startsWith('W/') && tag.slice(2) === etag)) return true;
  }
  return false;
}
