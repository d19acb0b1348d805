import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePositionFile, type Position } from '../position.js';

/** Longest `.primary` we accept: a hostname. Anything longer is not LiteFS's. */
const MAX_PRIMARY_LENGTH = 255;

/** The files LiteFS keeps beside a database in its mount directory. */
export interface LiteFSFiles {
  positionPath: string;
  primaryPath: string;
  lagPath: string;
}

export function liteFSFiles(databaseDir: string, databaseName: string): LiteFSFiles {
  return { positionPath: join(databaseDir, `${databaseName}-pos`), primaryPath: join(databaseDir, '.primary'), lagPath: join(databaseDir, '.lag') };
}

function readSmallFile(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // Missing (ENOENT), unreadable, or a FUSE hiccup: "unknown", never a crash.
    return null;
  }
}

/** The position in `<db>-pos`, or null when it is missing or malformed. */
export function readPosition(files: LiteFSFiles): Position | null {
  const content = readSmallFile(files.positionPath);
  return content === null ? null : parsePositionFile(content);
}

function hasPositionFile(files: LiteFSFiles): boolean {
  return readSmallFile(files.positionPath) !== null;
}

/**
 * What `.primary` says. Absent: on LiteFS this node is the primary (or cut off
 * from it: LiteFS removes the file while a replica is disconnected). Present:
 * this node is a replica, and the file names the primary, or null when its
 * content is not a hostname.
 */
export function readPrimary(files: LiteFSFiles): { exists: false } | { exists: true; primary: string | null } {
  const content = readSmallFile(files.primaryPath);
  if (content === null) return { exists: false };
  const name = content.trim();
  return { exists: true, primary: isLeaseHostname(name) ? name : null };
}

/**
 * Whether a primary's name, from `.primary` or LiteFS's events, is a hostname
 * we can put in a `fly-replay` header: nothing else gets that far.
 */
export function isLeaseHostname(name: string): boolean {
  return name.length <= MAX_PRIMARY_LENGTH && /^[A-Za-z0-9._:-]+$/.test(name);
}

/** Whether LiteFS's files are beside the database: a `-pos` file, or `.primary` on a replica. */
export function liteFSFilesPresent(files: LiteFSFiles): boolean {
  return hasPositionFile(files) || readPrimary(files).exists;
}

/** LiteFS writes this many ms into `.lag` before a replica's first sync. */
const LAG_NOT_SYNCED = 2 ** 31 - 1;

/** The raw number in `.lag` (`%+010d\n`), or null when missing or malformed. */
function readLagFile(files: LiteFSFiles): number | null {
  const content = readSmallFile(files.lagPath);
  const match = content === null ? null : /^\s*([+-]?\d{1,10})\s*$/.exec(content);
  return match ? Number(match[1]) : null;
}

/**
 * `.lag`: how long ago (ms) this replica last heard from the primary; 0 on the
 * primary. Null when missing, malformed or not yet synced.
 */
export function readLag(files: LiteFSFiles): number | null {
  const lag = readLagFile(files);
  return lag === null || lag < 0 || lag >= LAG_NOT_SYNCED ? null : lag;
}

/**
 * Whether `.lag` shows a replica: LiteFS writes exactly 0 only on the primary,
 * and a positive lag (or "not synced yet") on a replica, also while it is
 * reconnecting and `.primary` is briefly absent.
 */
export function lagShowsReplica(files: LiteFSFiles): boolean {
  const lag = readLagFile(files);
  return lag !== null && lag !== 0;
}
