import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../tools/cluster/ports.js';
import { PROJECT_ROOT } from '../../tools/cluster/tools.js';
import { formatLagFile, formatPosFile } from '../../src/ryw/litefs/files.js';
import { seedArticles } from './articles.js';
import { sleep } from './stats.js';

/** The secret every bench app shares, so that tokens made by one verify on all. */
export const BENCH_SECRET = 'bench-secret-0123456789abcdef';
/** How `src/main.ts` is started: exactly as a cluster node execs it. */
export const APP_COMMAND = [process.execPath, '--import', 'tsx', join(PROJECT_ROOT, 'src', 'main.ts')];

/**
 * A directory laid out like a LiteFS replica's mount (`app.db`, `app.db-pos`,
 * `.primary`), written by the benchmark itself.
 */
export class FakeReplicaDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'bench-litefs-'));
  readonly dbPath = join(this.dir, 'app.db');

  /**
   * `heard`: `.lag` says the replica heard from its primary just now, so its
   * lineage is known and its pages may be cached. Without it (many-waiters),
   * a token the position never reaches is not judged by `.lag`: a replica
   * that hears from its primary a second after a token was issued, and is
   * still behind it, would drop it as of an older lineage.
   */
  constructor(articles: number, position: bigint, { heard = true }: { heard?: boolean } = {}) {
    seedArticles(this.dbPath, articles);
    writeFileSync(join(this.dir, '.primary'), 'fra-1\n');
    if (heard) writeFileSync(join(this.dir, '.lag'), formatLagFile(0));
    this.setPosition(position);
  }

  setPosition(txid: bigint): void {
    writeFileSync(join(this.dir, 'app.db-pos'), formatPosFile({ txid, checksum: 'ab'.repeat(8) }));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface AppProcess {
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts a Node program on a free port and resolves once `healthPath` answers 200. */
export async function startProcess(
  command: readonly string[],
  env: Readonly<Record<string, string>>,
  options: { healthPath?: string; ipc?: boolean } = {},
): Promise<AppProcess> {
  const port = await freePort();
  let stderr = '';
  const child = spawn(command[0]!, command.slice(1), {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env, PORT: String(port) },
    stdio: options.ipc ? ['ignore', 'ignore', 'pipe', 'ipc'] : ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${command.join(' ')} exited (${child.exitCode}):\n${stderr}`);
    try {
      const res = await fetch(`${url}${options.healthPath ?? '/healthz'}`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${command.join(' ')} not healthy within 60 s:\n${stderr}`);
    }
    await sleep(100);
  }
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The app (`src/main.ts`) as a replica over a fake LiteFS directory; `nodeFlags` go before it (e.g. `--cpu-prof`). */
export function startReplicaApp(
  dir: FakeReplicaDir,
  env: Readonly<Record<string, string>> = {},
  nodeFlags: readonly string[] = [],
): Promise<AppProcess> {
  return startProcess([APP_COMMAND[0]!, ...nodeFlags, ...APP_COMMAND.slice(1)], {
    DATABASE_URL: `file:${dir.dbPath}`,
    FLY_REGION: 'ewr',
    FLY_MACHINE_ID: 'ewr-1',
    RYW_SECRET: BENCH_SECRET,
    ...env,
  });
}
