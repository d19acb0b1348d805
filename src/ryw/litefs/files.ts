import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatTxid, parseTxid, type Position } from '../position.js';

/**
 * The codecs of the files LiteFS keeps beside a database, for the app and
 * the tools (cluster, benchmarks, test fakes) alike, and their readers.
 */

/** What `<db>-pos` holds: the TXID and the database's checksum after it. */
export interface PosFile {
  readonly txid: Position;
  /** 16 hex digits: tells two databases with the same TXID apart (a write lost in a failover). */
  readonly checksum: string;
}

const POS_FILE = /^([0-9a-f]{16})\/([0-9a-f]{16})\n?$/;

/**
 * Parses `<db>-pos`: `TTTTTTTTTTTTTTTT/CCCCCCCCCCCCCCCC\n` (TXID, slash,
 * checksum). A partial or malformed file is "unknown" (null), never an error.
 */
export function parsePosFile(content: string): PosFile | null {
  const match = POS_FILE.exec(content);
  return match ? { txid: parseTxid(match[1]!)!, checksum: match[2]! } : null;
}

/** The `<db>-pos` content LiteFS writes for a position. */
export function formatPosFile({ txid, checksum }: PosFile): string {
  return `${formatTxid(txid)}/${checksum}\n`;
}

/** What LiteFS writes in `.lag` until a replica has synced once (Go's math.MaxInt32). */
export const LAG_NOT_SYNCED = 2 ** 31 - 1;

const LAG_FILE = /^([+-]?\d{1,10})\n?$/;

/** The raw number in `.lag` (`%+010d\n`, ms since this node last heard from the primary), or null when malformed. */
export function parseLagFileRaw(content: string): number | null {
  const match = LAG_FILE.exec(content);
  return match ? Number(match[1]) : null;
}

/** `.lag` in ms; "not synced yet", negative or malformed: null (unknown). */
export function parseLagFile(content: string): number | null {
  const lag = parseLagFileRaw(content);
  return lag === null || lag < 0 || lag >= LAG_NOT_SYNCED ? null : lag;
}

/** The `.lag` content LiteFS writes (`%+010d\n`). */
export function formatLagFile(ms: number): string {
  return `${ms < 0 ? '-' : '+'}${String(Math.abs(Math.trunc(ms))).padStart(9, '0')}\n`;
}

/** Longest `.primary` we accept: a hostname. Anything longer is not LiteFS's. */
const MAX_PRIMARY_LENGTH = 255;

/** The files LiteFS keeps beside a database in its mount directory. */
export interface LiteFSFiles {
  positionPath: string;
  primaryPath: string;
  lagPath: string;
}

export function liteFSFiles(databaseDir: string, databaseName: string): LiteFSFiles {
  return {
    positionPath: join(databaseDir, `${databaseName}-pos`),
    primaryPath: join(databaseDir, '.primary'),
    lagPath: join(databaseDir, '.lag'),
  };
}

/**
 * A small file's content, or why there is none: `absent` only when the file
 * does not exist (ENOENT, ENOTDIR); any other failure (a directory, EACCES,
 * EIO, a FUSE hiccup) is `unreadable`, which callers must treat as "unknown",
 * never as "absent".
 */
type SmallFile = { content: string } | { absent: true } | { unreadable: NodeJS.ErrnoException };

function readSmallFile(path: string): SmallFile {
  try {
    return { content: readFileSync(path, 'utf8') };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { absent: true };
    return { unreadable: error as NodeJS.ErrnoException };
  }
}

const contentOf = (file: SmallFile): string | null => ('content' in file ? file.content : null);

/** The position in `<db>-pos`, or null when it is missing or malformed. */
export function readPosition(files: LiteFSFiles): Position | null {
  return readPosFile(files)?.txid ?? null;
}

/** `<db>-pos` whole (TXID and checksum), or null when it is missing or malformed. */
export function readPosFile(files: LiteFSFiles): PosFile | null {
  const content = contentOf(readSmallFile(files.positionPath));
  return content === null ? null : parsePosFile(content);
}

/** Whether a `-pos` file is there: one that exists but cannot be read still says "LiteFS". */
function hasPositionFile(files: LiteFSFiles): boolean {
  return !('absent' in readSmallFile(files.positionPath));
}

/**
 * What `.primary` says. Absent (it does not exist): on LiteFS this node is the
 * primary (or cut off from it: LiteFS removes the file while a replica is
 * disconnected). Present: this node is a replica, and the file names the
 * primary, or null when its content is not a hostname. A `.primary` that
 * exists but cannot be read counts as present with an unknown primary: a node
 * that cannot tell must never act as the primary.
 */
export function readPrimary(files: LiteFSFiles): { exists: false } | { exists: true; primary: string | null } {
  const file = readSmallFile(files.primaryPath);
  if ('absent' in file) return { exists: false };
  if ('unreadable' in file) return { exists: true, primary: null };
  const name = file.content.trim();
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

/** The raw number in `.lag`, or null when missing, unreadable or malformed. */
function readLagFile(files: LiteFSFiles, file = readSmallFile(files.lagPath)): number | null {
  const content = contentOf(file);
  return content === null ? null : parseLagFileRaw(content);
}

/**
 * `.lag`: how long ago (ms) this replica last heard from the primary; 0 on the
 * primary. Null when missing, malformed or not yet synced.
 */
export function readLag(files: LiteFSFiles): number | null {
  const content = contentOf(readSmallFile(files.lagPath));
  return content === null ? null : parseLagFile(content);
}

/**
 * Whether `.lag` shows a replica: LiteFS writes exactly 0 only on the primary,
 * and a positive lag (or "not synced yet") on a replica, also while it is
 * reconnecting and `.primary` is briefly absent.
 */
export function lagShowsReplica(files: LiteFSFiles): boolean {
  const file = readSmallFile(files.lagPath);
  // Unreadable is "unknown": never enough to act as the primary.
  if ('unreadable' in file) return true;
  const lag = readLagFile(files, file);
  return lag !== null && lag !== 0;
}
