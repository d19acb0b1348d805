import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

/** How long a process gets to shut down after SIGINT before it is killed. */
export const DEFAULT_STOP_TIMEOUT_MS = 8000;

export interface Spawned {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** SIGINT to the tool (LiteFS forwards it to its app), then SIGKILL to its group after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts a long-running tool in its own process group, output appended to
 * `logFile`. Its own group means Ctrl-C in the terminal reaches only the CLI,
 * which then stops everything in order (the app before LiteFS unmounts), and
 * a stop can kill whatever the tool started (LiteFS's exec'ed app) with it.
 */
export function spawnLogged(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; logFile: string },
): Spawned {
  const fd = openSync(options.logFile, 'a');
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', fd, fd],
    detached: true,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`cannot start ${command}`);
  const pid = child.pid;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (err) => resolve(err.message));
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  return {
    pid,
    child,
    exited,
    async stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS) {
      if (done) {
        killGroup(pid, 'SIGKILL'); // leftovers of the group, if any
        return;
      }
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // Already gone between the check and the signal.
      }
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
      // The tool is gone; anything it left in its group goes too.
      killGroup(pid, 'SIGKILL');
    },
  };
}

/** Signals a whole process group; a group that is already gone is fine. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: nothing left to signal.
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
