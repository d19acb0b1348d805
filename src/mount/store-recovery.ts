import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConsulLease } from './litefs-config.js';

/**
 * A node whose LiteFS refuses its own files after a crash rejoins from the
 * primary instead of staying down (docs/decisions/0012-store-recovery.md).
 *
 * LiteFS checks at start that a database file matches the post-apply
 * checksum of its last LTX file, and exits when it does not: `cannot open
 * store: open databases: open database("app.db"): recover ltx: database
 * checksum … does not match LTX post-apply checksum …`. Seen here on a
 * primary SIGKILLed during writes, about once in ten crash runs (LiteFS
 * issues #134, #166, #428 report the same; the remedy given is to delete the
 * node's database and let it snapshot from the primary). The node is then down until someone acts.
 *
 * What it would lose by that is exactly what LiteFS discards anyway when a
 * crashed primary rejoins: a replica whose position diverged from the new
 * primary's is sent a snapshot over it. So the database is moved aside (kept,
 * not deleted) only when another node holds the lease and answers as
 * primary; with no other primary, this node may hold the only copy, and it
 * is left alone.
 */

/** Where moved-aside databases go: `<data dir>/quarantine/<db>.<time>`. */
export const QUARANTINE_DIR = 'quarantine';
/**
 * Moved-aside copies kept per database: the first (the one most likely to
 * hold writes nobody else has) and the latest; those between go, so that a
 * crash loop cannot fill the volume.
 */
export const QUARANTINE_KEEP = 2;
/** How long a refused node waits for another node to hold the lease (a crashed holder's own lease outlives it by 2 × TTL). */
export const DEFAULT_RECOVERY_WAIT_MS = 60_000;
/** Between looks at the lease while waiting. */
export const LEASE_POLL_MS = 500;
/** One request to Consul or to the holder's LiteFS. */
export const LEASE_REQUEST_TIMEOUT_MS = 2_000;

const REFUSED_STORE = /cannot open store: open databases: open database\("([^"]+)"\): .*checksum.*does not match/;

/**
 * The database LiteFS refused to open because its file does not match its
 * LTX history, from what LiteFS printed before exiting; null for any other
 * failure (a port in use, a bad config: nothing to recover).
 */
export function refusedDatabase(output: string): string | null {
  const match = REFUSED_STORE.exec(output);
  const name = match?.[1];
  // A name LiteFS would never give (a path) is not trusted with a rename.
  return name && !/[/\\]|^\.\.?$/.test(name) ? name : null;
}

/** The lease holder as LiteFS stores it in Consul (`{ hostname, advertise-url }` under the key). */
export interface LeaseHolder {
  readonly hostname: string;
  readonly advertiseUrl: string;
}

/** The key's URL in Consul's KV API: the URL's path is a key prefix and its password a token, as LiteFS reads them. */
function kvRequest(lease: ConsulLease): { url: string; headers: Record<string, string> } {
  const prefix = lease.url.pathname.replace(/^\/+|\/+$/g, '');
  const key = [prefix, lease.key].filter((p) => p !== '').join('/');
  const token = decodeURIComponent(lease.url.password);
  return {
    url: `${lease.url.protocol}//${lease.url.host}/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`,
    headers: token ? { 'X-Consul-Token': token } : {},
  };
}

/** Who holds the lease now, or null when nobody does (or Consul cannot say). */
export async function leaseHolder(lease: ConsulLease): Promise<LeaseHolder | null> {
  const { url, headers } = kvRequest(lease);
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(LEASE_REQUEST_TIMEOUT_MS) });
    if (!res.ok) return null;
    const [entry] = (await res.json()) as { Value?: unknown; Session?: unknown }[];
    // Held means locked by a session; LiteFS's sessions delete the key when they end.
    if (!entry || typeof entry.Session !== 'string' || entry.Session === '' || typeof entry.Value !== 'string') return null;
    const info = JSON.parse(Buffer.from(entry.Value, 'base64').toString('utf8')) as { hostname?: unknown; 'advertise-url'?: unknown };
    if (typeof info.hostname !== 'string' || typeof info['advertise-url'] !== 'string') return null;
    return { hostname: info.hostname, advertiseUrl: info['advertise-url'] };
  } catch {
    return null;
  }
}

/** Whether the holder's LiteFS answers that it is the primary (its `/info`). */
export async function answersAsPrimary(holder: LeaseHolder): Promise<boolean> {
  try {
    const res = await fetch(new URL('/info', holder.advertiseUrl), { signal: AbortSignal.timeout(LEASE_REQUEST_TIMEOUT_MS) });
    if (!res.ok) return false;
    return ((await res.json()) as { isPrimary?: unknown }).isPrimary === true;
  } catch {
    return false;
  }
}

/**
 * Another node that holds the lease and answers as primary, waiting up to
 * `waitMs` for one (this node's own crashed lease must expire first); null
 * when none appears, or when `signal` aborts.
 */
export async function otherPrimary(
  lease: ConsulLease,
  { waitMs, signal }: { waitMs: number; signal?: AbortSignal },
): Promise<LeaseHolder | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const holder = await leaseHolder(lease);
    if (holder && holder.hostname !== lease.hostname && (await answersAsPrimary(holder))) return holder;
    if (Date.now() + LEASE_POLL_MS > deadline || signal?.aborted) return null;
    await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS));
  }
}

/**
 * Moves `<dataDir>/dbs/<db>` to `<dataDir>/quarantine/<db>.<time>` and keeps
 * the first and the latest copies of that database there (QUARANTINE_KEEP).
 * Returns the new path. LiteFS, started again, finds no database and takes
 * the primary's snapshot.
 */
export async function quarantineDatabase(dataDir: string, db: string, now: Date): Promise<string> {
  const dir = join(dataDir, QUARANTINE_DIR);
  await mkdir(dir, { recursive: true });
  const target = join(dir, `${db}.${now.toISOString().replace(/[:.]/g, '-')}`);
  await rename(join(dataDir, 'dbs', db), target);
  // Both names durable before anyone acts on the move (LiteFS, started next, finds no database).
  await syncDir(join(dataDir, 'dbs'));
  await syncDir(dir);
  // This database's copies only (`app.db.2026-…`), not `app.db.v2`'s nor the markers.
  const own = new RegExp(`^${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.\\d{4}-\\d\\d-\\d\\dT[\\d-]+Z$`);
  const copies = (await readdir(dir)).filter((name) => own.test(name)).sort();
  for (const between of copies.slice(1, Math.max(1, copies.length - (QUARANTINE_KEEP - 1))))
    await rm(join(dir, between), { recursive: true, force: true });
  return target;
}

/** fsync of a directory: a rename or a new file in it survives a power cut once this returns. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
