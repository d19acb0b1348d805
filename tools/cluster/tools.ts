import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, two levels above this file. */
export const PROJECT_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** Where `npm run setup:cluster` installs LiteFS, Toxiproxy and Consul (git-ignored). */
export const TOOLS_BIN = join(PROJECT_ROOT, '.tools', 'bin');

export interface ClusterTools {
  readonly litefs: string;
  readonly toxiproxy: string;
  readonly fusermount: string;
  /** Null when it is not installed and the lease asked for is static (which needs none). */
  readonly consul: string | null;
}

export type ToolCheck = { readonly ok: true; readonly tools: ClusterTools } | { readonly ok: false; readonly missing: readonly string[] };

/**
 * Finds the tools a process cluster needs, and names every one that is
 * missing. Consul is needed for a Consul lease (the default) only.
 */
export function findClusterTools(lease: 'static' | 'consul' = 'consul'): ToolCheck {
  const litefs = executable(join(TOOLS_BIN, 'litefs'));
  const toxiproxy = executable(join(TOOLS_BIN, 'toxiproxy-server'));
  const consul = executable(join(TOOLS_BIN, 'consul')) ?? null;
  const fusermount = onPath('fusermount3');
  const missing: string[] = [];
  if (!litefs) missing.push(`litefs (${join(TOOLS_BIN, 'litefs')})`);
  if (!toxiproxy) missing.push(`toxiproxy-server (${join(TOOLS_BIN, 'toxiproxy-server')})`);
  if (!consul && lease === 'consul') missing.push(`consul (${join(TOOLS_BIN, 'consul')}; or --lease static)`);
  if (!fusermount) missing.push('fusermount3 (Debian package fuse3)');
  if (!existsSync('/dev/fuse')) missing.push('/dev/fuse (no FUSE on this machine)');
  if (!litefs || !toxiproxy || !fusermount || missing.length > 0) return { ok: false, missing };
  return { ok: true, tools: { litefs, toxiproxy, fusermount, consul } };
}

function executable(path: string): string | undefined {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    return undefined;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const found = executable(join(dir, name));
    if (found) return found;
  }
  return undefined;
}
