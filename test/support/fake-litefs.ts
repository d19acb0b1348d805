import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import request from 'supertest';
import type { ArticleStore } from '../../src/article.js';
import { nameKey } from '../../src/author.js';
import { createBlog, type Blog, type BlogOverrides } from '../../src/blog.js';
import { hashSessionId, newSessionId, SESSION_COOKIE, SESSION_TTL_MS } from '../../src/http/auth.js';
import { loadConfig } from '../../src/config.js';
import type { CsrfOptions } from '../../src/http/csrf.js';
import type { Metrics } from '../../src/http/metrics.js';
import { hashPassword, type ScryptParams } from '../../src/password.js';
import type { Fallback } from '../../src/ryw/index.js';
import { formatLagFile, formatPosFile, liteFSFiles, readPosition } from '../../src/ryw/litefs/files.js';
import type { LiteFSNode } from '../../src/ryw/litefs/litefs-node.js';
import { signToken, tokenPayload } from '../../src/ryw/token.js';
import type { SqliteDatabase } from '../../src/sqlite/database.js';
import { migrate } from '../../src/sqlite/migrations.js';

export const SECRETS = ['test-secret-one-0123456789', 'test-secret-old-0123456789'];
export const PRIMARY_ID = 'fra-1';
/** scrypt at almost no cost, so that tests spend no time hashing; the apps built here use it for new hashes. */
export const TEST_SCRYPT: ScryptParams = { log2N: 4, r: 8, p: 1 };
export const TEST_PASSWORD = 'correct horse battery staple';

/** The fake directory each app was built on (FakeLiteFS.app()): test/support/forms.ts signs in through it. */
const fakes = new WeakMap<object, FakeLiteFS>();
export function fakeOf(app: unknown): FakeLiteFS | undefined {
  return fakes.get(app as object);
}

/**
 * A directory laid out like a LiteFS mount (`app.db`, `app.db-pos`, `.primary`)
 * that the test writes itself, and the app built on it with real parts.
 */
export class FakeLiteFS {
  readonly dir = mkdtempSync(join(tmpdir(), 'litefs-ryw-'));
  readonly dbPath = join(this.dir, 'app.db');
  readonly files = liteFSFiles(this.dir, 'app.db');
  private closers: (() => void)[] = [];

  constructor(layout: { role: 'standalone' | 'primary' | 'replica'; position?: bigint; primary?: string }) {
    const db = new Database(this.dbPath);
    migrate(db);
    db.close();
    if (layout.role !== 'standalone') this.setPosition(layout.position ?? 1n);
    if (layout.role === 'replica') this.setPrimary(layout.primary ?? PRIMARY_ID);
  }

  setPosition(txid: bigint): void {
    writeFileSync(this.files.positionPath, formatPosFile({ txid, checksum: 'ab'.repeat(8) }));
  }

  writePositionFile(content: string): void {
    writeFileSync(this.files.positionPath, content);
  }

  /** `.lag`: how long ago this replica last heard from the primary, as LiteFS formats it. */
  setLag(ms: number): void {
    writeFileSync(this.files.lagPath, formatLagFile(ms));
  }

  setPrimary(primary: string | null): void {
    if (primary === null) {
      // Gone already is as good as removed.
      rmSync(this.files.primaryPath, { force: true });
    } else writeFileSync(this.files.primaryPath, `${primary}\n`);
  }

  position(): bigint | null {
    return readPosition(this.files);
  }

  /** One commit, as LiteFS shows it on the primary: the position moves by one. The new position. */
  commit(): bigint {
    const position = (this.position() ?? 0n) + 1n;
    this.setPosition(position);
    return position;
  }

  /**
   * A `wrapStore` that commits (commit()) after each write the store really
   * committed, as LiteFS does on the primary (a test's primary has no LiteFS
   * to do it): a new article, a saved edit, a delete; not a draft published
   * again (the same article back), a conflict or a refusal. `onCommit` is
   * told each new position (e.g. to play a standby that receives it).
   */
  committing(onCommit: (position: bigint) => void = () => {}): (store: ArticleStore) => ArticleStore {
    const commit = () => onCommit(this.commit());
    const seen = new Set<number>();
    return (store) =>
      ({
        list: store.list.bind(store),
        latest: store.latest.bind(store),
        index: store.index.bind(store),
        search: store.search.bind(store),
        get: store.get.bind(store),
        create: (input) => {
          const created = store.create(input);
          if (!seen.has(created.id)) commit();
          seen.add(created.id);
          return created;
        },
        update: (id, edit) => {
          const result = store.update(id, edit);
          if (result.kind === 'updated') commit();
          return result;
        },
        delete: (id, revision) => {
          const result = store.delete(id, revision);
          if (result.kind === 'deleted') commit();
          return result;
        },
      }) satisfies ArticleStore;
  }

  /** Builds the app over this directory, as main.ts does, with test-chosen knobs. */
  app(
    options: {
      region?: string;
      instance?: string;
      waitMs?: number;
      fallback?: Fallback;
      ttlSeconds?: number;
      secrets?: string[];
      migrateToken?: string;
      writePaths?: string[];
      readonly?: boolean;
      /** The clock of the database's busy back-off (default Date.now). */
      databaseClock?: () => number;
      wrapStore?: (store: ArticleStore) => ArticleStore;
      pollMs?: number;
      /** How long a write waits for a primary when none is named (readYourWrites' primaryWaitMs). */
      primaryWaitMs?: number;
      /** A LiteFS API whose `/events` stream feeds positions and the role, as LITEFS_API does. */
      events?: URL;
      rywEnabled?: boolean;
      /** `/metrics` on the app: open (default), behind a token, or not at all (null, as with METRICS_PORT). */
      publicMetrics?: { token: string | null } | null;
      csrf?: CsrfOptions;
      /** The search workers' deadline, pool and queue (SearchWorkers). */
      search?: { deadlineMs?: number; workers?: number; maxQueued?: number; maxWaitMs?: number };
      /** Sign-in limits, clock, scrypt's cost (default TEST_SCRYPT). */
      auth?: BlogOverrides['auth'];
      /** More of the environment, e.g. SITE_TITLE. */
      env?: Record<string, string>;
    } = {},
  ): { app: RequestListener; node: LiteFSNode; database: SqliteDatabase; metrics: Metrics; blog: Blog } {
    const publicMetrics = options.publicMetrics === undefined ? { token: null } : options.publicMetrics;
    // The configuration as main.ts reads it, from the environment the test gives.
    const env: Record<string, string> = {
      DATABASE_URL: `file:${this.dbPath}`,
      FLY_REGION: options.region ?? 'ewr',
      FLY_MACHINE_ID: options.instance ?? 'ewr-1',
      RYW_SECRET: (options.secrets ?? SECRETS).join(','),
      RYW_WAIT_MS: String(options.waitMs ?? 500),
      RYW_FALLBACK: options.fallback ?? 'replay',
      RYW_TTL_S: String(options.ttlSeconds ?? 300),
      RYW_ENABLED: String(options.rywEnabled ?? true),
      ...(options.events ? { LITEFS_API: options.events.href } : {}),
      ...(options.migrateToken ? { MIGRATE_TOKEN: options.migrateToken } : {}),
      ...(publicMetrics === null ? { METRICS_PORT: '9999' } : publicMetrics.token !== null ? { METRICS_TOKEN: publicMetrics.token } : {}),
      ...options.env,
    };
    const blog = createBlog(loadConfig(env), {
      log: pino({ level: 'silent' }),
      wrapStore: options.wrapStore,
      readonly: options.readonly,
      databaseClock: options.databaseClock,
      // The constructor migrated the file (or the test laid it out on purpose).
      migrateOnStart: false,
      csrf: options.csrf,
      search: options.search,
      ryw: { pollMs: options.pollMs, writePaths: options.writePaths, primaryWaitMs: options.primaryWaitMs },
      auth: { passwordParams: TEST_SCRYPT, ...options.auth },
    });
    // The store's search workers are terminated in the background: nothing waits on them.
    this.closers.push(() => void blog.close());
    // As src/main.ts serves it: page-cache hits answered before Express (Blog.handler).
    fakes.set(blog.handler, this);
    fakes.set(blog.app, this);
    return { app: blog.handler, node: blog.ryw.node as LiteFSNode, database: blog.database, metrics: blog.metrics, blog };
  }

  /** Seeds an article straight into the file, as if it had replicated here. */
  insertArticle(title: string, content: string): number {
    const db = new Database(this.dbPath);
    const now = new Date().toISOString();
    const { lastInsertRowid } = db
      .prepare('INSERT INTO articles (title, content, created, updated) VALUES (?, ?, ?, ?)')
      .run(title, content, now, now);
    db.close();
    return Number(lastInsertRowid);
  }

  /** Seeds an author straight into the file (as `npm run author -- add` would, with TEST_SCRYPT); returns their id. */
  async insertAuthor(name: string, password = TEST_PASSWORD): Promise<number> {
    const hash = await hashPassword(password, TEST_SCRYPT);
    const db = new Database(this.dbPath);
    const { lastInsertRowid } = db
      .prepare('INSERT INTO authors (name, name_key, password_hash, created) VALUES (?, ?, ?, ?)')
      .run(name, nameKey(name), hash, new Date().toISOString());
    db.close();
    return Number(lastInsertRowid);
  }

  /**
   * Seeds a session of `authorId` straight into the file, as if the author
   * had signed in on the primary and it had replicated here; `id` (default:
   * a new one) lets the same session be seeded on several fake nodes.
   * Returns the `session=…` pair to send.
   */
  insertSession(authorId: number, id = newSessionId()): string {
    const db = new Database(this.dbPath);
    db.prepare('INSERT OR IGNORE INTO sessions (id_hash, author_id, created, expires) VALUES (?, ?, ?, ?)').run(
      hashSessionId(id),
      authorId,
      new Date().toISOString(),
      Date.now() + SESSION_TTL_MS,
    );
    db.close();
    return `${SESSION_COOKIE}=${id}`;
  }

  close(): void {
    for (const close of this.closers) close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A token as the primary would hand it out for a position, issued `issuedAt` (default: now). */
export function tokenFor(position: bigint, options: { secrets?: string[]; issuedAt?: number } = {}): string {
  return signToken(tokenPayload(position, options.issuedAt ?? Date.now()), options.secrets ?? SECRETS);
}

/** The `Cookie` header carrying a token, encoded as a browser sends what Express set. */
export function tokenCookie(token: string): string {
  return `ryw=${encodeURIComponent(token)}`;
}

/** The decision and wait in `Server-Timing: ryw;desc=…;dur=…`. */
export function serverTiming(header: string | undefined): { desc: string; dur: number } {
  const match = /ryw;desc=([a-z]+);dur=(\d+)/.exec(header ?? '');
  if (!match) throw new Error(`no ryw Server-Timing in ${JSON.stringify(header)}`);
  return { desc: match[1]!, dur: Number(match[2]) };
}

/** The `name=value` pair of a Set-Cookie header in `headers`, if any. */
export function cookiePair(headers: Record<string, unknown>, name: string): string | undefined {
  const all = (headers['set-cookie'] as string[] | undefined) ?? [];
  return all.find((c) => c.startsWith(`${name}=`))?.split(';')[0];
}

/**
 * Signs in through the form, as a browser would (GET /signin for its CSRF
 * token, then POST), and returns the cookies to send as that author:
 * `session=…; csrf=…` (the CSRF cookie too, so the caller can post forms).
 */
export async function signIn(app: RequestListener, name: string, password = TEST_PASSWORD): Promise<string> {
  const page = await request(app).get('/signin').expect(200);
  const csrf = cookiePair(page.headers, 'csrf')!;
  const token = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
  const res = await request(app).post('/signin').set('Cookie', csrf).type('form').send({ name, password, _csrf: token }).expect(303);
  return `${cookiePair(res.headers, 'session')!}; ${csrf}`;
}
