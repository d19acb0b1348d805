import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { writeCatchUpConfig, type MountConfig } from './litefs-config.js';
import { otherPrimary, QUARANTINE_DIR, quarantineDatabase, refusedDatabase, syncDir, type LeaseHolder } from './store-recovery.js';

/** What LiteFS printed last (its stderr), kept to read why it stopped: its fatal error is its last line. */
export const OUTPUT_TAIL_BYTES = 16 * 1024;
/**
 * After LiteFS exits, how long its stderr may stay open: the app it exec'd
 * holds the same pipe, and a LiteFS that died alone (a panic, the OOM
 * killer) must not keep the supervisor, and so the machine, up.
 */
export const STDERR_DRAIN_MS = 1_000;
/** How long the catch-up run may take to receive the primary's snapshot (a large database on a slow link). */
export const CATCH_UP_TIMEOUT_MS = 10 * 60_000;
/** Between looks at the `-pos` files during the catch-up run. */
export const CATCH_UP_POLL_MS = 200;
/** Databases refused and moved aside within one start, at most: LiteFS opens every database of its data dir. */
export const MAX_MOVED_PER_START = 8;
/** `<data>/quarantine/<db>.catching-up`: a database is being moved aside, or was, and the node has not caught up since. */
export const CATCH_UP_MARKER_SUFFIX = '.catching-up';
/** The catch-up run's config, beside the moved-aside copies. */
export const CATCH_UP_CONFIG = 'catch-up-litefs.yml';

/** LiteFS opens its store before it mounts; after this line its stderr carries the app's too, and no refusal can come. */
const MOUNTED = /LiteFS mounted to: /;

export interface SuperviseOptions {
  /** `litefs mount …`, as it would be run without this supervisor. */
  readonly command: readonly [string, ...string[]];
  /** The config file that command names (or LiteFS would find). */
  readonly configPath: string;
  readonly config: MountConfig;
  /** How long a refused node waits for another node to become primary before it gives up. */
  readonly recoveryWaitMs: number;
  readonly log: (line: string) => void;
  /** Seams for tests of the decision; the defaults are the real ones. */
  readonly findPrimary?: (waitMs: number, signal: AbortSignal) => Promise<LeaseHolder | null>;
  readonly catchUpTimeoutMs?: number;
}

/**
 * The TXID a `<db>-pos` file names (`TTTTTTTTTTTTTTTT/CCCCCCCCCCCCCCCC`), or
 * null. Read here rather than through the read-your-writes module
 * (src/ryw/litefs/files.ts), whose imports the supervisor does not carry.
 */
export function posFileTxid(content: string): bigint | null {
  const match = /^([0-9a-f]{16})\/[0-9a-f]{16}\n?$/.exec(content);
  return match ? BigInt(`0x${match[1]!}`) : null;
}

interface Exit {
  readonly code: number;
  /** The database LiteFS refused to open at this start, if it did. */
  readonly refused: string | null;
  /** LiteFS printed `ERROR:` before it mounted. */
  readonly failed: boolean;
}

interface Running {
  readonly kill: (signal: NodeJS.Signals) => void;
  readonly exited: Promise<Exit>;
  readonly ended: () => boolean;
}

/**
 * Starts `command` with its stderr read through us. When LiteFS refuses a
 * database it is stopped: with `exit-on-error: false` (the project's
 * litefs.yml) it would otherwise print the refusal and wait forever; so is
 * any startup error with `stopOnError` (the catch-up run).
 */
function run(command: readonly [string, ...string[]], { stopOnError }: { stopOnError: boolean }): Running {
  const child = spawn(command[0], command.slice(1), { stdio: ['inherit', 'inherit', 'pipe'] });
  let tail = '';
  let mounted = false;
  let refused: string | null = null;
  let failed = false;
  let ended = false;
  const stderr = child.stderr;
  const stderrEnded = new Promise<void>((resolve) => stderr.once('close', resolve));
  stderr.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    if (mounted) return;
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    if (MOUNTED.test(tail)) mounted = true;
    else if (refused === null && (refused = refusedDatabase(tail)) !== null) child.kill('SIGTERM');
    else if (!failed && /^ERROR: /m.test(tail)) {
      failed = true;
      if (stopOnError) child.kill('SIGTERM');
    }
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('error', () => {
      ended = true;
      resolve({ code: 127, refused, failed: true });
    });
    child.once('exit', (code, signal) => {
      ended = true;
      const status = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
      // The last of what it printed, without waiting on the app's copy of the pipe for long.
      void Promise.race([stderrEnded, new Promise((r) => setTimeout(r, STDERR_DRAIN_MS).unref())]).then(() => {
        stderr.destroy();
        resolve({ code: status, refused, failed });
      });
    });
  });
  return { kill: (signal) => child.kill(signal), exited, ended: () => ended };
}

/** `command` with its `-config` replaced by `path` (or given, after `mount`), and without a `-- cmd` (LiteFS would exec it). */
function catchUpCommand(command: readonly [string, ...string[]], path: string): [string, ...string[]] {
  const all = command.slice(1);
  const dashes = all.indexOf('--');
  const args = dashes === -1 ? [...all] : all.slice(0, dashes);
  const at = args.findIndex((a) => /^--?config(=|$)/.test(a));
  if (at === -1) args.splice(args.indexOf('mount') + 1, 0, '-config', path);
  else if (args[at]!.includes('=')) args[at] = `-config=${path}`;
  else args[at + 1] = path;
  return [command[0], ...args];
}

/** Writes `content` to `path` and makes it, and its name in `dir`, durable: the marker must outlive a power cut that the move survives. */
async function writeDurably(path: string, content: string, dir: string): Promise<void> {
  const file = await open(path, 'w');
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  await syncDir(dir);
}

/**
 * Runs `litefs mount` and exits as it does, except when it refuses to open a
 * database whose file no longer matches its LTX history (after some crashes,
 * see store-recovery.ts): then, once another node is primary, the database
 * is moved aside, the node catches up from the primary's snapshot as a
 * non-candidate, and LiteFS is started as configured. Resolves to the exit
 * code for the process.
 */
export async function superviseMount(options: SuperviseOptions): Promise<number> {
  const { config, log } = options;
  const stopping = new AbortController();
  let child: Running | null = null;
  const forward = (signal: NodeJS.Signals) => {
    stopping.abort();
    // LiteFS handles SIGINT and SIGTERM (unmount, stop the app, release the
    // lease); on SIGHUP Go's default would kill it alone, the app left running.
    child?.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal);
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  const start = (command: readonly [string, ...string[]], stopOnError: boolean): Running => (child = run(command, { stopOnError }));
  const quarantine = join(config.dataDir, QUARANTINE_DIR);
  const markerOf = (db: string) => join(quarantine, `${db}${CATCH_UP_MARKER_SUFFIX}`);
  const findPrimary =
    options.findPrimary ??
    ((waitMs: number, signal: AbortSignal) => (config.consul ? otherPrimary(config.consul, { waitMs, signal }) : Promise.resolve(null)));

  /** Another node that is primary, or null (logged) when none appears or a signal came. */
  const primaryFor = async (dbs: readonly string[]): Promise<LeaseHolder | null> => {
    const names = dbs.join(', ');
    if (config.consul === null) {
      log(`not recovering ${names}: ${config.noLeaseReason}`);
      return null;
    }
    log(`waiting up to ${options.recoveryWaitMs} ms for another node to be primary`);
    const holder = await findPrimary(options.recoveryWaitMs, stopping.signal);
    if (holder === null && !stopping.signal.aborted)
      log(
        `no other node became primary: ${names} is left as it is (this node may hold the only copy); see docs/decisions/0012-store-recovery.md`,
      );
    return stopping.signal.aborted ? null : holder;
  };

  /**
   * Moves aside every database with a marker that is still in place, then
   * runs LiteFS as a non-candidate with nothing to exec until each has the
   * primary's snapshot. A database LiteFS refuses meanwhile (it opens them
   * all) is marked and moved too. True once all have caught up.
   */
  const recover = async (dbs: Set<string>, holder: LeaseHolder): Promise<boolean> => {
    const configPath = join(quarantine, CATCH_UP_CONFIG);
    await writeCatchUpConfig(options.configPath, configPath);
    for (let moves = dbs.size; ;) {
      for (const db of dbs) {
        if (!existsSync(join(config.dataDir, 'dbs', db))) continue;
        const moved = await quarantineDatabase(config.dataDir, db, new Date());
        await writeDurably(markerOf(db), `${moved}\n`, quarantine);
        log(`moved ${db} aside to ${moved}`);
      }
      if (stopping.signal.aborted) return false;
      const names = [...dbs].join(', ');
      log(`catching up ${names} from ${holder.hostname} as a non-candidate (nothing exec'd) before LiteFS runs as configured`);
      const running = start(catchUpCommand(options.command, configPath), true);
      const deadline = Date.now() + (options.catchUpTimeoutMs ?? CATCH_UP_TIMEOUT_MS);
      const at = new Map<string, bigint>();
      while (!running.ended() && !stopping.signal.aborted && Date.now() < deadline && at.size < dbs.size) {
        for (const db of dbs) {
          const txid = posFileTxid(await readFile(join(config.fuseDir, `${db}-pos`), 'utf8').catch(() => ''));
          if (txid !== null && txid > 0n) at.set(db, txid);
        }
        if (at.size < dbs.size) await new Promise((r) => setTimeout(r, CATCH_UP_POLL_MS));
      }
      running.kill('SIGTERM');
      const exit = await running.exited;
      child = null;
      if (at.size === dbs.size && !stopping.signal.aborted) {
        for (const db of dbs) await rm(markerOf(db), { force: true });
        await rm(configPath, { force: true });
        log(
          `${[...at].map(([db, txid]) => `${db} at TXID ${txid}`).join(', ')}: caught up from ${holder.hostname}; starting LiteFS as configured`,
        );
        return true;
      }
      if (exit.refused !== null && !dbs.has(exit.refused) && !stopping.signal.aborted && ++moves <= MAX_MOVED_PER_START) {
        log(`LiteFS cannot open ${exit.refused} either: its file does not match its LTX history`);
        await mkdir(quarantine, { recursive: true });
        await writeDurably(markerOf(exit.refused), '', quarantine);
        dbs.add(exit.refused);
        continue;
      }
      const why = stopping.signal.aborted ? 'stopped' : running.ended() && exit.failed ? 'LiteFS failed' : 'timed out';
      log(`${names} did not catch up (${why}): LiteFS is not started as a candidate without them; the next start tries again`);
      return false;
    }
  };

  try {
    // Databases moved aside (or about to be) whose catch-up never finished
    // (a crash, a stop): finish it before this node may be a candidate again.
    const pending = new Set(
      (config.dataDir === '' ? [] : await readdir(quarantine).catch(() => [] as string[]))
        .filter((name) => name.endsWith(CATCH_UP_MARKER_SUFFIX))
        .map((name) => name.slice(0, -CATCH_UP_MARKER_SUFFIX.length)),
    );
    let recovered = false;
    if (pending.size > 0) {
      log(`${[...pending].join(', ')}: moved aside and not caught up since`);
      const holder = await primaryFor([...pending]);
      if (holder === null || !(await recover(pending, holder))) return stopping.signal.aborted ? 0 : 1;
      recovered = true;
    }
    for (;;) {
      if (stopping.signal.aborted) return 0;
      const exit = await start(options.command, false).exited;
      child = null;
      if (stopping.signal.aborted || exit.refused === null) return exit.code;
      // We stopped it (or it exited on its own): either way the node did not come up.
      const failed = exit.code === 0 ? 1 : exit.code;
      const db = exit.refused;
      log(`LiteFS cannot open ${db}: its file does not match its LTX history`);
      if (recovered) {
        log(`refused again after catching up from the primary: leaving it to you`);
        return failed;
      }
      const holder = await primaryFor([db]);
      if (holder === null) return stopping.signal.aborted ? 0 : failed;
      // The marker first: a crash between the move and the catch-up must not leave an empty candidate.
      await mkdir(quarantine, { recursive: true });
      await writeDurably(markerOf(db), '', quarantine);
      if (!(await recover(new Set([db]), holder))) return stopping.signal.aborted ? 0 : 1;
      recovered = true;
    }
  } finally {
    for (const signal of signals) process.off(signal, forward);
  }
}
