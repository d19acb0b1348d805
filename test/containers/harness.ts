import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getContainerRuntimeClient, ImageName } from 'testcontainers';
import type { Cluster } from '../../tools/cluster/cluster.js';
import {
  DEFAULT_APP_IMAGE,
  DEFAULT_TOXIPROXY_IMAGE,
  startContainerCluster,
  type ContainerClusterOptions,
} from '../../tools/cluster/container-cluster.js';
import { PROJECT_ROOT } from '../../tools/cluster/tools.js';
import { imageSourceHash, SOURCE_HASH_LABEL } from '../../scripts/image-source-hash.js';
import { WAIT_MS } from '../cluster/harness.js';

// Ryuk, testcontainers' reaper, is an image from a registry: where none can be
// reached it cannot start. The cluster removes its own containers, and the
// next run removes a killed run's (removeAbandonedContainers).
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
// Every container runs on the host's network: the host is this machine's
// loopback. Without this, testcontainers run inside a container (this machine
// has /.dockerenv) looks up the bridge network's gateway, a 172.x address,
// and fails where the engine runs without a bridge (setup-docker.sh).
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';

/** The images the tier runs; a tester can point them elsewhere (e.g. an image built from public bases). */
export const APP_IMAGE = process.env.LITEFS_RYW_IMAGE ?? DEFAULT_APP_IMAGE;
export const TOXIPROXY_IMAGE = process.env.TOXIPROXY_IMAGE ?? DEFAULT_TOXIPROXY_IMAGE;
/** How long `docker info` (through testcontainers) gets to answer before the engine counts as absent. */
const ENGINE_PROBE_TIMEOUT_MS = 15_000;

export interface ContainerTier {
  readonly run: boolean;
  readonly missing: readonly string[];
}

/**
 * Whether the container tier can run here: a Docker engine answers and both
 * images exist. Prints one loud line when it cannot; with CI=true that is the
 * caller's cue to fail, never to skip.
 */
export async function containerTierAvailability(): Promise<ContainerTier> {
  const missing: string[] = [];
  try {
    const client = await withTimeout(getContainerRuntimeClient(), ENGINE_PROBE_TIMEOUT_MS, 'docker info');
    for (const image of [APP_IMAGE, TOXIPROXY_IMAGE]) {
      // Never pulled here: a missing local image is a setup step not run, not a download to try.
      if (!(await client.image.exists(ImageName.fromString(image)))) missing.push(`image ${image}`);
    }
    if (!missing.includes(`image ${APP_IMAGE}`)) {
      const stale = await staleness(client.container.dockerode.getImage(APP_IMAGE).inspect());
      if (stale) missing.push(stale);
    }
  } catch (err) {
    missing.push(`a Docker engine (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`);
  }
  if (missing.length === 0) return { run: true, missing };
  const why = `missing ${missing.join(', ')}; run npm run setup:docker (or see docs/testing-with-lag.md)`;
  if (process.env.CI === 'true') console.error(`\nFAILING container tier (CI=true, Docker + testcontainers): ${why}\n`);
  else console.warn(`\n${'!'.repeat(8)} SKIPPED container tier (Docker + testcontainers): ${why} ${'!'.repeat(8)}\n`);
  return { run: false, missing };
}

/**
 * A container cluster for one test file: the tier's images, its own log
 * directory (kept when the cluster fails to start, for the error's sake), and
 * the same wait budget and fallback as the process tier.
 */
export async function startTestContainerCluster(options: Partial<ContainerClusterOptions> = {}): Promise<Cluster> {
  const logDir = await mkdtemp(join(tmpdir(), 'litefs-containers-'));
  const cluster = await startContainerCluster({
    appImage: APP_IMAGE,
    toxiproxyImage: TOXIPROXY_IMAGE,
    logDir,
    ...options,
    env: { RYW_WAIT_MS: String(WAIT_MS), RYW_FALLBACK: 'replay', ...options.env },
  });
  const stop = cluster.stop.bind(cluster);
  return Object.assign(Object.create(cluster) as Cluster, {
    async stop() {
      await stop();
      await rm(logDir, { recursive: true, force: true });
    },
  });
}

/**
 * Why the app image must be rebuilt, or null: an image labelled with another
 * source hash was built from other source than this working tree's. An image
 * without the label (built by hand, e.g. from the public base images) is
 * trusted, with a warning.
 */
async function staleness(inspect: Promise<{ Config?: { Labels?: Record<string, string> | null } }>): Promise<string | null> {
  const built = (await inspect).Config?.Labels?.[SOURCE_HASH_LABEL];
  const current = await imageSourceHash(PROJECT_ROOT);
  if (built === undefined) {
    console.warn(`container tier: ${APP_IMAGE} has no ${SOURCE_HASH_LABEL} label; cannot tell whether it is built from this source`);
    return null;
  }
  if (built === current) return null;
  const why = `an up-to-date ${APP_IMAGE} (built from source ${built}, the working tree is ${current})`;
  // For runs against an image built on purpose from other source (a bisect, a
  // tree being edited meanwhile): said loudly, never silently.
  if (process.env.LITEFS_RYW_IMAGE_STALE === 'allow') {
    console.warn(`container tier: LITEFS_RYW_IMAGE_STALE=allow: running without ${why}`);
    return null;
  }
  return why;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
