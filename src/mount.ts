import { findConfigPath, mountArguments, readMountConfig } from './mount/litefs-config.js';
import { loadMountOptions, MountUsageError } from './mount/options.js';
import { superviseMount } from './mount/supervisor.js';

/**
 * `node dist/mount.js -- litefs mount -config /app/litefs.yml`: the image's
 * entrypoint. Runs LiteFS as given and exits as it does; a node whose LiteFS
 * refuses its own database after a crash rejoins from the primary instead
 * of staying down (src/mount/store-recovery.ts).
 */
const log = (line: string) => console.error(`litefs-ryw mount: ${line}`);
try {
  const options = loadMountOptions(process.argv.slice(2));
  const { configPath: given, expandEnv } = mountArguments(options.command.slice(1));
  const configPath = await findConfigPath(given);
  const config = await readMountConfig(configPath, { expand: expandEnv, env: options.env }).catch((error: unknown) => {
    log(`cannot read the LiteFS config (${String(error)}): store recovery is off`);
    return { dataDir: '', fuseDir: '', consul: null, noLeaseReason: 'the LiteFS config could not be read' };
  });
  // Exit now, not when every handle is closed: the app LiteFS exec'd may still hold our stderr pipe.
  process.exit(
    await superviseMount({
      command: options.command,
      configPath,
      config,
      recoveryWaitMs: options.recoveryWaitMs,
      log,
    }),
  );
} catch (error) {
  log(error instanceof MountUsageError ? error.message : `failed: ${String(error)}`);
  process.exitCode = 1;
}
