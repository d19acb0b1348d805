import { access, readFile, writeFile } from 'node:fs/promises';
import { homedir, hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { parse, parseDocument } from 'yaml';

/**
 * What store recovery needs of a litefs.yml: where the node keeps its
 * databases and how it finds the lease holder. Read the way `litefs mount`
 * reads it (cmd/litefs/config.go): YAML, environment variables expanded
 * unless `-no-expand-env`, the hostname defaulting to the machine's.
 */
export interface MountConfig {
  /** `data.dir`: LiteFS keeps each database in `<dir>/dbs/<name>/`. */
  readonly dataDir: string;
  /** `fuse.dir`: where the node's databases (and their `-pos` files) appear while LiteFS runs. */
  readonly fuseDir: string;
  /** Null when the lease is not Consul's, or a field it needs could not be read: then nothing is recovered. */
  readonly consul: ConsulLease | null;
  /** Why `consul` is null, for the one log line that says recovery is off. */
  readonly noLeaseReason: string | null;
}

export interface ConsulLease {
  /** `lease.consul.url`: a token in its password, a key prefix in its path (as LiteFS reads it). */
  readonly url: URL;
  /** `lease.consul.key`. */
  readonly key: string;
  /** This node's name in the lease (`lease.hostname`). */
  readonly hostname: string;
}

/** The `-config` path and `-no-expand-env` flag of a `litefs mount` command line (Go's flag syntax, up to `--`). */
export function mountArguments(args: readonly string[]): { configPath: string | null; expandEnv: boolean } {
  let configPath: string | null = null;
  let expand = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    const flag = arg.replace(/^--?/, '');
    if (flag === 'config' && i + 1 < args.length) configPath = args[++i]!;
    else if (flag.startsWith('config=')) configPath = flag.slice('config='.length);
    else if (flag === 'no-expand-env' || flag === 'no-expand-env=true') expand = false;
    else if (flag === 'no-expand-env=false') expand = true;
  }
  return { configPath, expandEnv: expand };
}

/** Where `litefs mount` looks for its config when `-config` is not given, in order (cmd/litefs/mount_linux.go). */
export function defaultConfigPaths(): string[] {
  return ['litefs.yml', join(homedir(), 'litefs.yml'), '/etc/litefs.yml'];
}

/** The first of `defaultConfigPaths()` that exists, or the last one (whose reading then fails, saying which). */
export async function findConfigPath(given: string | null): Promise<string> {
  if (given !== null) return given;
  const paths = defaultConfigPaths();
  for (const path of paths) {
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  return paths.at(-1)!;
}

/**
 * LiteFS sets HOSTNAME, when it is unset, before expanding its config
 * (cmd/litefs/main.go): the environment the config sees.
 */
export function expansionEnv(env: Readonly<Record<string, string | undefined>>): Readonly<Record<string, string | undefined>> {
  return env.HOSTNAME ? env : { ...env, HOSTNAME: osHostname() };
}

/**
 * `$NAME` and `${NAME}` replaced by the variable (empty when unset), as Go's
 * os.Expand does. LiteFS also evaluates expressions (`${A == B}`); a field
 * that holds one comes back null: recovery never acts on a guess.
 */
export function expandEnv(value: string, env: Readonly<Record<string, string | undefined>>): string | null {
  let unreadable = false;
  const out = value.replace(/\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$/g, (all, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare ?? '').trim();
    // `$1`, `$$`, `${A == B}`: Go and LiteFS read those their own way.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      unreadable = true;
      return all;
    }
    return env[name] ?? '';
  });
  return unreadable ? null : out;
}

/** Reads the config at `path` (see MountConfig). Throws only when the file cannot be read or parsed at all. */
export async function readMountConfig(
  path: string,
  { expand, env }: { expand: boolean; env: Readonly<Record<string, string | undefined>> },
): Promise<MountConfig> {
  const doc = (parse(await readFile(path, 'utf8')) ?? {}) as Record<string, unknown>;
  const seen = expansionEnv(env);
  const field = (value: unknown): string | null => {
    if (typeof value === 'boolean' || typeof value === 'number') return String(value);
    if (typeof value !== 'string') return null;
    return expand ? expandEnv(value, seen) : value;
  };
  const section = (value: unknown): Record<string, unknown> =>
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const data = section(doc.data);
  const lease = section(doc.lease);
  const consul = section(lease.consul);
  // LiteFS's own default data directory, when none is given.
  const dataDir = data.dir === undefined ? '/var/lib/litefs' : (field(data.dir) ?? '');
  const fuseDir = field(section(doc.fuse).dir) ?? '';
  const off = (reason: string): MountConfig => ({ dataDir, fuseDir, consul: null, noLeaseReason: reason });
  if (dataDir === '' || fuseDir === '') return off('data.dir or fuse.dir could not be read');
  if (field(lease.type) !== 'consul') return off(`the lease is ${JSON.stringify(field(lease.type) ?? 'unset')}, not consul`);
  const url = field(consul.url);
  const key = field(consul.key);
  const name = lease.hostname === undefined ? osHostname() : field(lease.hostname);
  if (!url || !key || !name) return off('lease.consul.url, lease.consul.key or lease.hostname could not be read');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return off('lease.consul.url is not a URL');
  }
  return { dataDir, fuseDir, consul: { url: parsed, key, hostname: name }, noLeaseReason: null };
}

/**
 * The config for catching up after a database was moved aside: the same,
 * but not a lease candidate and with nothing to exec. Until it has the
 * primary's snapshot the node must not be able to take the lease: empty, it
 * would make every other node's data follow its nothing. Written beside the
 * original's data (`path`), values unexpanded: LiteFS expands them as it
 * would the original.
 */
export async function writeCatchUpConfig(original: string, path: string): Promise<void> {
  // Edited in place, not re-serialised: LiteFS expands `${NAME}` in the raw
  // text before it parses it, so the original's quoting must stay.
  const doc = parseDocument(await readFile(original, 'utf8'));
  doc.setIn(['lease', 'candidate'], false);
  doc.setIn(['lease', 'promote'], false);
  doc.deleteIn(['exec']);
  // It may hold a Consul token written out literally.
  await writeFile(path, doc.toString(), { mode: 0o600 });
}
