import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, basename } from 'node:path';
import { z } from 'zod';
import {
  databasePath,
  DEFAULT_FALLBACK,
  DEFAULT_REGION,
  DEFAULT_TTL_S,
  DEFAULT_WAIT_MS,
  DEFAULT_DURABILITY_MODE,
  DEFAULT_DURABILITY_WAIT_MS,
  DEFAULT_STANDBY_PORT,
  DURABILITY_MODES,
  FALLBACKS,
  isOnLiteFS,
  type DurabilityMode,
  type Fallback,
  type StandbyList,
} from './ryw/index.js';
import { DEFAULT_PAGE_CACHE_MB } from './http/page-cache.js';
import { DEFAULT_SITE_DESCRIPTION, DEFAULT_SITE_TITLE, type Site } from './site.js';

/** Defaults of the configuration table in the README; the names are the interface. */
export const DEFAULT_PORT = 8080;
export const DEFAULT_DATABASE_URL = 'file:data/app.db';
// The read-your-writes module's own defaults are the blog's.
export { DEFAULT_FALLBACK, DEFAULT_REGION, DEFAULT_TTL_S, DEFAULT_WAIT_MS, DEFAULT_DURABILITY_MODE, DEFAULT_DURABILITY_WAIT_MS };
/** Longest wait anyone may configure: past this a reader is better off at the primary. */
export const MAX_WAIT_MS = 30_000;
export { DEFAULT_PAGE_CACHE_MB };
/** The largest page cache anyone may configure (MiB): a typo of a few zeros should stop the process, not the machine. */
export const MAX_PAGE_CACHE_MB = 16_384;

export interface Config {
  port: number;
  /** Absolute path of the SQLite file. */
  databasePath: string;
  /** LiteFS keeps `.primary` and `<db>-pos` in the database's directory. */
  databaseDir: string;
  databaseName: string;
  region: string;
  instance: string;
  litefsApi: URL | null;
  /** First signs, all verify. */
  secrets: string[];
  /** LiteFS's files or its API were found at start; otherwise the app runs standalone. */
  onLiteFS: boolean;
  /** True when RYW_SECRET was not given and a per-process secret was made up. */
  ephemeralSecret: boolean;
  waitMs: number;
  fallback: Fallback;
  ttlSeconds: number;
  migrateToken: string | null;
  /** False only to measure or demonstrate the app without read-your-writes (benchmarks, the checker's control run). */
  rywEnabled: boolean;
  /** When set, `/metrics` is served only on this port (same host as `port`) and the public port answers 404 for it. */
  metricsPort: number | null;
  /** When set, `/metrics` asks for `Authorization: Bearer <token>`, wherever it is served. */
  metricsToken: string | null;
  /** PAGE_CACHE_MB: the rendered-page cache's bound, in MiB; 0 turns it off. */
  pageCacheMb: number;
  /**
   * FLY_APP_NAME is set: the app runs on Fly.io, behind its edge, which puts
   * the client's address in `Fly-Client-IP` (the sign-in limits count by it).
   * Anywhere else that header is the client's to write, and is ignored.
   */
  trustFlyClientIp: boolean;
  /** SITE_TITLE, SITE_DESCRIPTION, SITE_URL: what the blog says of itself (pages, feed, sitemap). */
  site: Site;
  /**
   * RYW_DURABILITY, RYW_STANDBYS, RYW_DURABILITY_WAIT_MS: when a write is
   * answered. `standbys` is null when RYW_STANDBYS is unset: fine on a
   * replica (it never answers a write); a primary then refuses every write
   * with 503, since nothing can confirm it (the log says so at start).
   */
  durability: { mode: DurabilityMode; standbys: StandbyList | null; waitMs: number };
}

/** The longest SITE_TITLE and SITE_DESCRIPTION: a title fits a tab, a description a search result. */
export const MAX_SITE_TITLE_LENGTH = 100;
export const MAX_SITE_DESCRIPTION_LENGTH = 300;

const emptyAsUndefined = (value: unknown) => (value === '' ? undefined : value);

/** A DNS name (optionally `:port`) of the standbys, without a scheme: `fra.myapp.internal`. */
const STANDBYS_DNS_NAME =
  /^(?=.{1,253}(?::|$))[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::(\d{1,5}))?$/i;

/**
 * RYW_STANDBYS: comma-separated LiteFS API URLs (`http://10.0.0.2:20202,…`),
 * or one DNS name without a scheme whose every address is a standby at
 * DEFAULT_STANDBY_PORT (`fra.myapp.internal`, or `name:port`).
 */
export function parseStandbys(raw: string): { ok: true; standbys: StandbyList } | { ok: false; message: string } {
  const text = raw.trim();
  if (!text.includes('://')) {
    const match = STANDBYS_DNS_NAME.exec(text);
    const port = match?.[1] === undefined ? DEFAULT_STANDBY_PORT : Number(match[1]);
    if (!match || port < 1 || port > 65535)
      return { ok: false, message: 'must be comma-separated http:// URLs of LiteFS APIs, or one DNS name like fra.myapp.internal' };
    return { ok: true, standbys: { dns: text.replace(/:\d+$/, '').toLowerCase(), port } };
  }
  const urls: URL[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      return { ok: false, message: `${JSON.stringify(part)} is not a URL (give http://host:port, comma-separated)` };
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search !== '' || url.username !== '')
      return { ok: false, message: `${JSON.stringify(part)} must be a LiteFS API's http:// origin, like http://10.0.0.2:20202` };
    urls.push(url);
  }
  return { ok: true, standbys: urls };
}
const integer = (min: number, max: number) => z.preprocess(emptyAsUndefined, z.coerce.number().int().min(min).max(max).optional());

const schema = z.object({
  PORT: integer(0, 65535),
  DATABASE_URL: z.preprocess(emptyAsUndefined, z.string().optional()),
  FLY_REGION: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[a-z0-9]{2,12}$/, 'must be 2 to 12 lowercase letters or digits')
      .optional(),
  ),
  FLY_APP_NAME: z.preprocess(emptyAsUndefined, z.string().optional()),
  FLY_MACHINE_ID: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be a hostname-like id')
      .optional(),
  ),
  HOSTNAME: z.preprocess(emptyAsUndefined, z.string().optional()),
  LITEFS_API: z.preprocess(emptyAsUndefined, z.url({ protocol: /^https?$/ }).optional()),
  RYW_SECRET: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .transform((s) => s.split(',').map((part) => part.trim()))
      .refine((parts) => parts.every((p) => p.length >= 16), 'each comma-separated secret must be at least 16 characters')
      .optional(),
  ),
  RYW_WAIT_MS: integer(0, MAX_WAIT_MS),
  RYW_FALLBACK: z.preprocess(emptyAsUndefined, z.enum(FALLBACKS).optional()),
  RYW_TTL_S: integer(1, 7 * 24 * 3600),
  RYW_DURABILITY: z.preprocess(emptyAsUndefined, z.enum(DURABILITY_MODES).optional()),
  RYW_STANDBYS: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .transform((raw, ctx) => {
        const parsed = parseStandbys(raw);
        if (parsed.ok) return parsed.standbys;
        ctx.addIssue({ code: 'custom', message: parsed.message });
        return z.NEVER;
      })
      .optional(),
  ),
  // At least 1 ms: with no wait at all no write could ever be confirmed.
  RYW_DURABILITY_WAIT_MS: integer(1, MAX_WAIT_MS),
  MIGRATE_TOKEN: z.preprocess(emptyAsUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
  RYW_ENABLED: z.preprocess(emptyAsUndefined, z.enum(['true', 'false']).optional()),
  METRICS_PORT: integer(1, 65535),
  METRICS_TOKEN: z.preprocess(emptyAsUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
  PAGE_CACHE_MB: integer(0, MAX_PAGE_CACHE_MB),
  SITE_TITLE: z.preprocess(
    emptyAsUndefined,
    z
      .string()
      .trim()
      .min(1, 'must not be blank')
      .max(MAX_SITE_TITLE_LENGTH, `must be at most ${MAX_SITE_TITLE_LENGTH} characters`)
      .optional(),
  ),
  SITE_DESCRIPTION: z.preprocess(
    emptyAsUndefined,
    z.string().trim().max(MAX_SITE_DESCRIPTION_LENGTH, `must be at most ${MAX_SITE_DESCRIPTION_LENGTH} characters`).optional(),
  ),
  // The blog's public address: an origin, as the app serves from its root and links are made from it.
  SITE_URL: z.preprocess(
    emptyAsUndefined,
    z
      .url({ protocol: /^https?$/ })
      .refine(
        (url) => new URL(url).href === `${new URL(url).origin}/`,
        'must be an origin, like https://blog.example (no path, query or user)',
      )
      .optional(),
  ),
});

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Resolves `file:path`, `file:///abs/path` or a plain path against the working directory. */
export function databasePathFromUrl(url: string): string {
  try {
    // The read-your-writes module reads its `database` option the same way.
    return databasePath(url);
  } catch {
    throw new ConfigError(`DATABASE_URL: expected file:<path to a SQLite file>, got ${JSON.stringify(url)}`);
  }
}

/**
 * Reads and validates the environment once, at start. Any invalid value throws
 * a ConfigError whose message is one line naming the variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    throw new ConfigError(`${name}: ${issue.message} (got ${JSON.stringify(env[name])})`);
  }
  const vars = parsed.data;
  if (vars.METRICS_PORT !== undefined && vars.METRICS_PORT === (vars.PORT ?? DEFAULT_PORT)) {
    throw new ConfigError(
      `METRICS_PORT: must differ from PORT, or /metrics would stay on the public port (got ${JSON.stringify(env.METRICS_PORT)})`,
    );
  }
  const databasePath = databasePathFromUrl(vars.DATABASE_URL ?? DEFAULT_DATABASE_URL);
  const databaseDir = dirname(databasePath);
  const databaseName = basename(databasePath);
  const litefsApi = vars.LITEFS_API ? new URL(vars.LITEFS_API) : null;

  // On LiteFS every instance must verify every other instance's tokens, so a
  // made-up secret would silently break read-your-writes across regions.
  const onLiteFS = litefsApi !== null || isOnLiteFS(databasePath);
  if (!vars.RYW_SECRET && onLiteFS) {
    throw new ConfigError(
      `RYW_SECRET: required on LiteFS (found ${litefsApi ? 'LITEFS_API' : `${databaseName}-pos or .primary in ${databaseDir}`}); set the same comma-separated secrets on every instance`,
    );
  }

  const durabilityMode = vars.RYW_DURABILITY ?? DEFAULT_DURABILITY_MODE;
  // Standalone there is no standby to ask: every write would be refused.
  if (durabilityMode === 'standby' && !onLiteFS) {
    throw new ConfigError(
      `RYW_DURABILITY: standby needs LiteFS (no LITEFS_API, and no ${databaseName}-pos or .primary in ${databaseDir}) (got "standby")`,
    );
  }

  return {
    port: vars.PORT ?? DEFAULT_PORT,
    databasePath,
    databaseDir,
    databaseName,
    region: vars.FLY_REGION ?? DEFAULT_REGION,
    instance: vars.FLY_MACHINE_ID ?? vars.HOSTNAME ?? hostname(),
    litefsApi,
    onLiteFS,
    secrets: vars.RYW_SECRET ?? [randomBytes(32).toString('base64url')],
    ephemeralSecret: !vars.RYW_SECRET,
    waitMs: vars.RYW_WAIT_MS ?? DEFAULT_WAIT_MS,
    fallback: vars.RYW_FALLBACK ?? DEFAULT_FALLBACK,
    ttlSeconds: vars.RYW_TTL_S ?? DEFAULT_TTL_S,
    migrateToken: vars.MIGRATE_TOKEN ?? null,
    rywEnabled: vars.RYW_ENABLED !== 'false',
    metricsPort: vars.METRICS_PORT ?? null,
    metricsToken: vars.METRICS_TOKEN ?? null,
    pageCacheMb: vars.PAGE_CACHE_MB ?? DEFAULT_PAGE_CACHE_MB,
    trustFlyClientIp: vars.FLY_APP_NAME !== undefined,
    site: {
      title: vars.SITE_TITLE ?? DEFAULT_SITE_TITLE,
      description: vars.SITE_DESCRIPTION ?? DEFAULT_SITE_DESCRIPTION,
      url: vars.SITE_URL ? new URL(vars.SITE_URL) : null,
    },
    durability: {
      mode: durabilityMode,
      standbys: vars.RYW_STANDBYS ?? null,
      waitMs: vars.RYW_DURABILITY_WAIT_MS ?? DEFAULT_DURABILITY_WAIT_MS,
    },
  };
}
