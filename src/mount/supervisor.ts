import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { writeCatchUpConfig, type MountConfig } from './litefs-config.js';
import { otherPrimary, QUARANTINE_DIR, quarantineDatabase, refusedDatabase, type LeaseHolder } from './store-recovery.js';

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
/** Between looks at the `-pos` file during the catch-up run. */
export const CATCH_UP_POLL_MS = 200;
/** `<data>/quarantine/<db>.catching-up`: a database was moved aside and the node has not caught up since. */
export const CATCH_UP_MARKER_SUFFIX = '.catching-up';
/**
 * The TXID a `<db>-pos` file names (`TTTTTTTTTTTTTTTT/CCCCCCCCCCCCCCCC`), or
 * null. Read here rather than through the read-your-writes module
 * (src/ryw/litefs/files.ts), whose imports the supervisor does not carry.
 */
export function posFileTxid(content: string): bigint | null {
  const match = /^([0-9a-f]{16})\/[0-9a-f]{16}\n?$/.exec(content);
  return match ? BigInt(`0x${match[1]!}`) : null;
}

/** The catch-up run's config, beside the moved-aside copies. */
export const CATCH_UP_CONFIG = 'catch-up-litefs.yml';

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

interface Exit {
  readonly code: number;
  /** The database LiteFS refused to open at this start, if it did. */
  readonly refused: string | null;
}

interface Running {
  readonly kill: (signal: NodeJS.Signals) => void;
  readonly exited: Promise<Exit>;
}

/**
 * Starts `command` with its stderr read through us. When LiteFS refuses a
 * database it stops it: with `exit-on-error: false` (the project's
 * litefs.yml) LiteFS would otherwise print the refusal and wait forever.
 */
function run(command: readonly [string, ...string[]]): Running {
  const child = spawn(command[0], command.slice(1), { stdio: ['inherit', 'inherit', 'pipe'] });
  let tail = '';
  let refused: string | null = null;
  const stderrEnded = new Promise<void>((resolve) => child.stderr.once('close', resolve));
  child.stderr.on('data', (chunk: Buffer) => {
    process.stderr.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    if (refused === null && (refused = refusedDatabase(tail)) !== null) child.kill('SIGTERM');
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('error', () => resolve({ code: 127, refused }));
    child.once('exit', (code, signal) => {
      const status = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
      // The last of what it printed, without waiting on the app's copy of the pipe for long.
      void Promise.race([stderrEnded, new Promise((r) => setTimeout(r, STDERR_DRAIN_MS).unref())]).then(() =>
        resolve({ code: status, refused }),
      );
    });
  });
  return { kill: (signal) => child.kill(signal), exited };
}

/** `command` with its `-config` replaced by `path` (or given, after `mount`). */
function withConfig(command: readonly [string, ...string[]], path: string): [string, ...string[]] {
  const args = [...command.slice(1)];
  const at = args.findIndex((a) => /^--?config(=|$)/.test(a));
  if (at === -1) args.splice(args.indexOf('mount') + 1, 0, '-config', path);
  else if (args[at]!.includes('=')) args[at] = `-config=${path}`;
  else args[at + 1] = path;
  return [command[0], ...args];
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
  const start = (command: readonly [string, ...string[]]): Running => (child = run(command));
  const markerOf = (db: string) => join(config.dataDir, QUARANTINE_DIR, `${db}${CATCH_UP_MARKER_SUFFIX}`);
  const findPrimary =
    options.findPrimary ??
    ((waitMs: number, signal: AbortSignal) => (config.consul ? otherPrimary(config.consul, { waitMs, signal }) : Promise.resolve(null)));

  /** The node's copy is gone: take the primary's snapshot as a non-candidate, then let the configured LiteFS run. */
  const catchUp = async (db: string, holder: LeaseHolder): Promise<boolean> => {
    const configPath = join(config.dataDir, QUARANTINE_DIR, CATCH_UP_CONFIG);
    await writeCatchUpConfig(options.configPath, configPath);
    log(`catching up ${db} from ${holder.hostname} as a non-candidate (nothing exec'd) before LiteFS runs as configured`);
    const running = start(withConfig(options.command, configPath));
    const deadline = Date.now() + (options.catchUpTimeoutMs ?? CATCH_UP_TIMEOUT_MS);
    let ended = false;
    void running.exited.then(() => (ended = true));
    let txid: bigint | null = null;
    while (!ended && !stopping.signal.aborted && Date.now() < deadline) {
      const at = posFileTxid(await readFile(join(config.fuseDir, `${db}-pos`), 'utf8').catch(() => ''));
      if (at !== null && at > 0n) {
        txid = at;
        break;
      }
      await new Promise((r) => setTimeout(r, CATCH_UP_POLL_MS));
    }
    running.kill('SIGTERM');
    await running.exited;
    child = null;
    if (txid === null) {
      log(
        `${db} did not catch up (${stopping.signal.aborted ? 'stopped' : ended ? 'LiteFS exited' : 'timed out'}): LiteFS is not started as a candidate with nothing; the next start tries again`,
      );
      return false;
    }
    await rm(markerOf(db), { force: true });
    await rm(configPath, { force: true });
    log(`${db} caught up from ${holder.hostname} at TXID ${txid}; starting LiteFS as configured`);
    return true;
  };

  /** Another node that is primary, or null (logged) when none appears or a signal came. */
  const primaryFor = async (db: string): Promise<LeaseHolder | null> => {
    if (config.consul === null) {
      log(`not recovering ${db}: ${config.noLeaseReason}`);
      return null;
    }
    log(`waiting up to ${options.recoveryWaitMs} ms for another node to be primary`);
    const holder = await findPrimary(options.recoveryWaitMs, stopping.signal);
    if (holder === null && !stopping.signal.aborted)
      log(
        `no other node became primary: ${db} is left as it is (this node may hold the only copy); see docs/decisions/0012-store-recovery.md`,
      );
    return stopping.signal.aborted ? null : holder;
  };

  try {
    // A database moved aside whose catch-up never finished (a crash, a stop):
    // finish it before this node may be a candidate again.
    const pending = await readdir(join(config.dataDir, QUARANTINE_DIR)).catch(() => [] as string[]);
    for (const marker of pending.filter((name) => name.endsWith(CATCH_UP_MARKER_SUFFIX))) {
      const db = marker.slice(0, -CATCH_UP_MARKER_SUFFIX.length);
      log(`${db} was moved aside and has not caught up since`);
      const holder = await primaryFor(db);
      if (holder === null || !(await catchUp(db, holder))) return 1;
    }
    let recovered = false;
    for (;;) {
      if (stopping.signal.aborted) return 0;
      const exit = await start(options.command).exited;
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
      const holder = await primaryFor(db);
      if (holder === null) return failed;
      // The marker first: a crash between the move and the catch-up must not leave an empty candidate.
      await mkdir(join(config.dataDir, QUARANTINE_DIR), { recursive: true });
      await writeFile(markerOf(db), '');
      const moved = await quarantineDatabase(config.dataDir, db, new Date());
      await writeFile(markerOf(db), `${moved}\n`);
      log(`moved ${db} aside to ${moved}`);
      if (!(await catchUp(db, holder))) return 1;
      recovered = true;
    }
  } finally {
    for (const signal of signals) process.off(signal, forward);
  }
}
