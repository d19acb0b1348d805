import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The FUSE mount points at or below `dir`, deepest first, from /proc/mounts. */
export async function fuseMountsUnder(dir: string): Promise<string[]> {
  const root = resolve(dir);
  const table = await readFile('/proc/mounts', 'utf8').catch(() => '');
  const mounts: string[] = [];
  for (const line of table.split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (!mountPoint || !type?.startsWith('fuse')) continue;
    // /proc/mounts escapes spaces and friends as octal.
    const path = mountPoint.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (path === root || path.startsWith(root + sep)) mounts.push(path);
  }
  return mounts.sort((a, b) => b.length - a.length);
}

/**
 * Lazily unmounts a FUSE mount (`fusermount3 -uz`): works even when the LiteFS
 * process behind it was killed and the mount answers "Transport endpoint is
 * not connected", which is what a crashed run leaves behind.
 */
export async function unmount(fusermount: string, mountPoint: string): Promise<void> {
  try {
    await run(fusermount, ['-uz', mountPoint]);
  } catch (err) {
    // Gone already (a clean LiteFS exit unmounts by itself) is success.
    if ((await fuseMountsUnder(mountPoint)).includes(resolve(mountPoint))) throw err;
  }
}

/** Unmounts every FUSE mount below `dir`; returns what it unmounted. */
export async function unmountAllUnder(fusermount: string, dir: string): Promise<string[]> {
  const mounts = await fuseMountsUnder(dir);
  for (const mount of mounts) await unmount(fusermount, mount);
  return mounts;
}
