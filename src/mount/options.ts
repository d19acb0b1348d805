import { DEFAULT_RECOVERY_WAIT_MS } from './store-recovery.js';

/**
 * What `node dist/mount.js -- litefs mount …` (src/mount.ts) is told: the
 * command it supervises, and how long a refused store waits for a primary.
 *
 * The one reader of the environment besides src/config.ts, on purpose: the
 * supervisor idles beside the app for the machine's whole life, and
 * config.ts's imports (zod, the read-your-writes module) would cost it
 * about 16 MB of a small machine's memory for one variable. It reads only
 * LITEFS_RECOVERY_WAIT_MS, checked the same way (one line naming it), and
 * hands LiteFS's own environment to the expansion of litefs.yml.
 */
export interface MountOptions {
  readonly command: readonly [string, ...string[]];
  /** LITEFS_RECOVERY_WAIT_MS. */
  readonly recoveryWaitMs: number;
  /** What LiteFS expands `${NAME}` in its config with: the environment it inherits. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The longest LITEFS_RECOVERY_WAIT_MS: past this the platform's own restart is the better retry. */
export const MAX_RECOVERY_WAIT_MS = 10 * 60_000;

export class MountUsageError extends Error {
  override name = 'MountUsageError';
}

export function loadMountOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): MountOptions {
  const dashes = argv.indexOf('--');
  const command = dashes === -1 ? argv : argv.slice(dashes + 1);
  if (command.length === 0) throw new MountUsageError('usage: node dist/mount.js -- litefs mount -config /app/litefs.yml');
  const raw = env.LITEFS_RECOVERY_WAIT_MS?.trim() ?? '';
  const wait = raw === '' ? DEFAULT_RECOVERY_WAIT_MS : /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(wait >= 0 && wait <= MAX_RECOVERY_WAIT_MS))
    throw new MountUsageError(
      `LITEFS_RECOVERY_WAIT_MS: must be a whole number of milliseconds from 0 to ${MAX_RECOVERY_WAIT_MS} (got ${JSON.stringify(env.LITEFS_RECOVERY_WAIT_MS)})`,
    );
  return { command: command as [string, ...string[]], recoveryWaitMs: wait, env };
}
