import { mkdtempSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import type { Express } from 'express';
import type { ArticleStore } from '../../src/article.js';
import type { Fallback } from '../../src/consistency.js';
import type { CsrfOptions } from '../../src/http/csrf.js';
import { createMetrics, type Metrics } from '../../src/http/metrics.js';
import { createApp } from '../../src/http/server.js';
import { signToken, tokenPayload } from '../../src/http/ryw-token.js';
import { liteFSFiles, liteFSFilesPresent, readPosition } from '../../src/litefs/files.js';
import { LiteFSNode } from '../../src/litefs/node.js';
import { PositionWatcher } from '../../src/litefs/position-watcher.js';
import { formatTxid } from '../../src/position.js';
import { SqliteArticleStore } from '../../src/sqlite/article-store.js';
import { SqliteDatabase } from '../../src/sqlite/database.js';
import { migrate } from '../../src/sqlite/migrations.js';

export const SECRETS = ['test-secret-one-0123456789', 'test-secret-old-0123456789'];
export const PRIMARY_ID = 'fra-1';

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
    writeFileSync(this.files.positionPath, `${formatTxid(txid)}/${'ab'.repeat(8)}\n`);
  }

  writePositionFile(content: string): void {
    writeFileSync(this.files.positionPath, content);
  }

  /** `.lag`: how long ago this replica last heard from the primary, as LiteFS formats it. */
  setLag(ms: number): void {
    writeFileSync(this.files.lagPath, `${ms >= 0 ? '+' : '-'}${String(Math.abs(ms)).padStart(9, '0')}\n`);
  }

  setPrimary(primary: string | null): void {
    if (primary === null) {
      try {
        unlinkSync(this.files.primaryPath);
      } catch {}
    } else writeFileSync(this.files.primaryPath, `${primary}\n`);
  }

  position(): bigint | null {
    return readPosition(this.files);
  }

  /** Builds the app over this directory, as main.ts does, with test-chosen knobs. */
  app(options: {
    region?: string;
    instance?: string;
    waitMs?: number;
    fallback?: Fallback;
    ttlSeconds?: number;
    secrets?: string[];
    migrateToken?: string;
    writePaths?: string[];
    readonly?: boolean;
    wrapStore?: (store: ArticleStore) => ArticleStore;
    pollMs?: number;
    /** A LiteFS API whose `/events` stream feeds positions and the role, as LITEFS_API does. */
    events?: URL;
    rywEnabled?: boolean;
    /** `/metrics` on the app: open (default), behind a token, or not at all (null, as with METRICS_PORT). */
    publicMetrics?: { token: string | null } | null;
    csrf?: CsrfOptions;
    /** The search workers' deadline, pool and queue (SearchWorkers). */
    search?: { deadlineMs?: number; workers?: number; maxQueued?: number; maxWaitMs?: number };
  } = {}): { app: Express; watcher: PositionWatcher; node: LiteFSNode; database: SqliteDatabase; metrics: Metrics } {
    const watcher = new PositionWatcher({
      readPosition: () => readPosition(this.files),
      pollMs: options.pollMs,
      events: options.events ? { api: options.events, database: 'app.db' } : undefined,
    });
    const node = new LiteFSNode(
      { region: options.region ?? 'ewr', instance: options.instance ?? 'ewr-1' },
      this.files,
      watcher,
      liteFSFilesPresent(this.files),
    );
    const database = new SqliteDatabase(this.dbPath, { readonly: options.readonly ?? false });
    const store = new SqliteArticleStore(database, { search: options.search });
    const metrics = createMetrics(node);
    const app = createApp({
      node,
      metrics,
      publicMetrics: options.publicMetrics,
      csrf: options.csrf,
      store: options.wrapStore ? options.wrapStore(store) : store,
      log: pino({ level: 'silent' }),
      secrets: options.secrets ?? SECRETS,
      waitMs: options.waitMs ?? 500,
      fallback: options.fallback ?? 'replay',
      ttlSeconds: options.ttlSeconds ?? 300,
      writePaths: options.writePaths,
      rywEnabled: options.rywEnabled,
      migrate: options.migrateToken ? { token: options.migrateToken, run: () => database.migrate() } : undefined,
    });
    // The store's search workers are terminated in the background: nothing waits on them.
    this.closers.push(() => watcher.close(), () => void store.close(), () => database.close());
    return { app, watcher, node, database, metrics };
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
