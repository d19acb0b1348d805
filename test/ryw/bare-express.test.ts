/**
 * The read-your-writes module on a bare Express app, no blog in sight: what
 * the README's "Use it in your own Express app" shows, against directories
 * laid out like LiteFS mounts (a primary and a replica), with real SQLite.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { readYourWrites, TOKEN_HEADER, type ReadYourWrites } from '../../src/ryw/index.js';
import { MemoryNode } from '../support/memory-node.js';
import { until } from '../support/until.js';

const SECRET = 'a-secret-shared-by-every-instance';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A directory like a LiteFS mount: the database, its `-pos` file, and `.primary` on a replica. */
function mount(role: 'primary' | 'replica', txid: number): { dir: string; setPosition: (txid: number) => void } {
  const dir = mkdtempSync(join(tmpdir(), `ryw-${role}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const db = new Database(join(dir, 'app.db'));
  db.exec('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)');
  db.close();
  const setPosition = (n: number) => writeFileSync(join(dir, 'app.db-pos'), `${n.toString(16).padStart(16, '0')}/${'0'.repeat(16)}\n`);
  setPosition(txid);
  if (role === 'replica') writeFileSync(join(dir, '.primary'), 'fra-1\n');
  return { dir, setPosition };
}

// --- the README's example, as an app factory -------------------------------
function notesApp(dir: string, identity: { region: string; instance: string }, onCommit: () => void = () => {}) {
  const db = new Database(join(dir, 'app.db'));
  const ryw = readYourWrites({
    database: join(dir, 'app.db'), // or `file:/litefs/app.db`
    secrets: [SECRET], // the same on every instance
    api: null, // in production: LiteFS's API (default http://127.0.0.1:20202), whose events wake waiting readers
    identity, // in production: FLY_REGION and FLY_MACHINE_ID
  });

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(ryw.middleware); // before the routes: replays writes, waits for tokens
  app.post('/notes', (req, res) => {
    db.prepare('INSERT INTO notes (text) VALUES (?)').run(String(req.body.text));
    onCommit(); // (LiteFS moves the position here; this test does it by hand)
    res.redirect(303, '/notes'); // the token is set as this answer goes out
  });
  app.get('/notes', (_req, res) => {
    const notes = db.prepare('SELECT text FROM notes ORDER BY id').pluck().all();
    res.json({ notes, consistency: res.locals.ryw?.timing });
  });
  app.use(ryw.busyHandler); // after the routes: a locked replica sends reads to the primary
  return { app, ryw, db };
}
// ---------------------------------------------------------------------------

function started(built: ReturnType<typeof notesApp>): ReturnType<typeof notesApp> {
  cleanups.push(() => {
    built.ryw.close();
    built.db.close();
  });
  return built;
}

describe('the read-your-writes module on a bare Express app', () => {
  it('replays a write from a replica to the primary, and a reader of the replica waits for their own write', async () => {
    const primaryMount = mount('primary', 7);
    const replicaMount = mount('replica', 7);
    let primaryTxid = 7;
    const primary = started(
      notesApp(primaryMount.dir, { region: 'fra', instance: 'fra-1' }, () => primaryMount.setPosition(++primaryTxid)),
    );
    const replica = started(notesApp(replicaMount.dir, { region: 'syd', instance: 'syd-1' }));

    // A write that lands on the replica is sent to the primary.
    const bounced = await request(replica.app).post('/notes').type('form').send({ text: 'hello' }).expect(409);
    expect(bounced.headers['fly-replay']).toBe('instance=fra-1');

    // On the primary it commits, and the answer carries the position as a token.
    const written = await request(primary.app).post('/notes').type('form').send({ text: 'hello' }).expect(303);
    const token = written.headers[TOKEN_HEADER.toLowerCase()] as string;
    expect(token).toMatch(/^s:0000000000000008\/0{16}\./); // the TXID and the checksum after it, from the pos file
    expect(written.headers['set-cookie']?.[0]).toMatch(/^ryw=/);

    // The replica is behind (7 < 8): the reader's next read waits until replication brings the row.
    const reading = request(replica.app)
      .get('/notes')
      .set(TOKEN_HEADER, token)
      .expect(200)
      .then((res) => res);
    await until(() => replica.ryw.node.stats().waiting === 1); // the reader waits…
    replica.db.prepare('INSERT INTO notes (text) VALUES (?)').run('hello'); // …until LiteFS applies the write…
    replicaMount.setPosition(8); // …and shows the position
    const read = await reading;
    expect(read.body).toEqual({ notes: ['hello'], consistency: 'waited' });
    expect(read.headers['server-timing']).toMatch(/ryw;desc=waited;dur=\d+/);

    // A reader without a token is served at once, whatever the position.
    expect((await request(replica.app).get('/notes').expect(200)).body.consistency).toBe('none');
  });

  it('keeps the Server-Timing entries the app set, and adds its own', async () => {
    const { dir } = mount('primary', 1);
    const inner = started(notesApp(dir, { region: 'fra', instance: 'fra-1' })).app;
    const app = express();
    app.use((_req, res, next) => {
      res.setHeader('Server-Timing', 'db;dur=3');
      next();
    });
    app.use(inner);
    const res = await request(app).get('/notes').expect(200);
    expect(res.headers['server-timing']).toMatch(/db;dur=3/);
    expect(res.headers['server-timing']).toMatch(/ryw;desc=none;dur=0/);
  });
});

/** A bare app of the module on `node`: GET / says what it decided, POST / is a write. */
function appOn(
  node: MemoryNode,
  options: { waitMs?: number; fallback?: 'replay' | 'stale' | 'error' } = {},
): { app: express.Express; ryw: ReadYourWrites } {
  const ryw = readYourWrites({ node, secrets: [SECRET], ...options });
  const app = express();
  app.use(ryw.middleware);
  app.get('/', (_req, res) => res.json(res.locals.ryw));
  app.post('/', (_req, res) => res.status(201).end());
  return { app, ryw };
}

describe('the module against an in-memory node (no files)', () => {
  it('answers a waiting reader as soon as the position arrives, not at the deadline', async () => {
    const primary = new MemoryNode({ region: 'fra', instance: 'fra-1' }, { role: 'primary', position: 5n });
    const token = (await request(appOn(primary).app).post('/').expect(201)).headers['ryw-token'] as string;
    primary.close();

    const replica = new MemoryNode({ region: 'syd', instance: 'syd-1' }, { role: 'replica', primary: 'fra-1', position: 4n });
    const { app } = appOn(replica, { waitMs: 5_000, fallback: 'error' });
    const answer = request(app)
      .get('/')
      .set('RYW-Token', token)
      .expect(200)
      .then((res) => res);
    await until(() => replica.stats().waiting === 1);
    // The position arrives 150 ms into the wait: the answer comes no sooner, and soon after.
    const started = performance.now();
    setTimeout(() => replica.setPosition(5n), 150);
    const res = await answer;
    const elapsed = performance.now() - started;
    expect(res.body).toMatchObject({ timing: 'waited', stale: false, served: { region: 'syd', role: 'replica' } });
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(2_000); // far from the 5 s budget
    replica.close();
  });

  it('falls back when the budget runs out: replay to the primary, stale, or 503', async () => {
    const primary = new MemoryNode({ region: 'fra', instance: 'fra-1' }, { role: 'primary', position: 9n });
    const token = (await request(appOn(primary).app).post('/').expect(201)).headers['ryw-token'] as string;
    const replica = new MemoryNode({ region: 'syd', instance: 'syd-1' }, { role: 'replica', primary: 'fra-1', position: 4n });

    const replayed = await request(appOn(replica, { waitMs: 50 }).app)
      .get('/')
      .set('RYW-Token', token)
      .expect(409);
    expect(replayed.headers['fly-replay']).toBe('instance=fra-1;state=ryw');
    const stale = await request(appOn(replica, { waitMs: 50, fallback: 'stale' }).app)
      .get('/')
      .set('RYW-Token', token)
      .expect(200);
    expect(stale.body).toMatchObject({ timing: 'stale', stale: true });
    const refused = await request(appOn(replica, { waitMs: 50, fallback: 'error' }).app)
      .get('/')
      .set('RYW-Token', token)
      .expect(503);
    expect(refused.headers['retry-after']).toBe('1');
    replica.close();
    primary.close();
  });

  it('sends a read that waited out a reconnection, then met the lock of the catch-up, to the primary named by then', async () => {
    const primary = new MemoryNode({ region: 'fra', instance: 'fra-1' }, { role: 'primary', position: 5n });
    const token = (await request(appOn(primary).app).post('/').expect(201)).headers['ryw-token'] as string;
    primary.close();

    // Cut off from its primary: LiteFS names none while the replica reconnects.
    const replica = new MemoryNode({ region: 'syd', instance: 'syd-1' }, { role: 'replica', primary: null, position: 4n });
    const ryw = readYourWrites({ node: replica, secrets: [SECRET], waitMs: 5_000 });
    const app = express();
    app.use(ryw.middleware);
    app.get('/', () => {
      // better-sqlite3's error while LiteFS holds the lock to apply a transaction
      throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    });
    app.use(ryw.busyHandler);
    const answer = request(app)
      .get('/')
      .set(TOKEN_HEADER, token)
      .then((res) => res);
    await until(() => replica.stats().waiting === 1);
    // Reconnected: the primary is named again and the catch-up brings the token's position.
    replica.setRole('replica', 'fra-1');
    replica.setPosition(5n);
    const res = await answer;
    expect(res.status).toBe(409);
    expect(res.headers['fly-replay']).toBe('instance=fra-1');
    replica.close();
  });

  it("with tokens: 'when-committed', hands a token only to an answer whose route said it committed", async () => {
    const primary = new MemoryNode({ region: 'fra', instance: 'fra-1' }, { role: 'primary', position: 3n });
    const ryw = readYourWrites({ node: primary, secrets: [SECRET], tokens: 'when-committed' });
    const app = express();
    app.use(ryw.middleware);
    app.post('/wrote', (_req, res) => {
      res.locals.ryw!.committed = true; // after the transaction committed
      res.redirect(303, '/');
    });
    app.post('/signed-out', (_req, res) => res.redirect(303, '/signin')); // a refusal dressed as a redirect
    const wrote = await request(app).post('/wrote').expect(303);
    expect(wrote.headers['ryw-token']).toMatch(/^s:0000000000000003\./);
    const refused = await request(app).post('/signed-out').expect(303);
    expect(refused.headers['ryw-token']).toBeUndefined();
    expect(refused.headers['set-cookie']).toBeUndefined();
    // The default hands one to any successful write.
    const { app: eager } = appOn(primary);
    expect((await request(eager).post('/').expect(201)).headers['ryw-token']).toBeDefined();
    primary.close();
  });
});

describe('immediate(): what the middleware would serve at once, judged on a bare request', () => {
  const bare = (url: string, headers: Record<string, string> = {}, method = 'GET') =>
    ({ method, url, headers }) as unknown as IncomingMessage;

  it('is the middleware’s own judgement: none or fresh when it would serve at once, null for anything else', async () => {
    const primary = new MemoryNode({ region: 'fra', instance: 'fra-1' }, { role: 'primary', position: 5n });
    const met = (await request(appOn(primary).app).post('/').expect(201)).headers['ryw-token'] as string;
    const replica = new MemoryNode({ region: 'syd', instance: 'syd-1' }, { role: 'replica', primary: 'fra-1', position: 5n });
    const ryw = readYourWrites({ node: replica, secrets: [SECRET], writePaths: ['/unsubscribe'], exempt: ['/healthz'] });

    expect(ryw.immediate(bare('/'))).toMatchObject({ timing: 'none', role: 'replica', serverTiming: 'ryw;desc=none;dur=0' });
    expect(ryw.immediate(bare('/?page=2', { [TOKEN_HEADER.toLowerCase()]: met }))).toMatchObject({ timing: 'fresh' });
    expect(ryw.immediate(bare('/', {}, 'HEAD'))).toMatchObject({ timing: 'none' });
    for (const [why, req] of [
      ['a write', bare('/', {}, 'POST')],
      ['a GET that writes (writePaths)', bare('/unsubscribe')],
      ['pinned to a region, even spelled %72egion', bare('/?%72egion=fra')],
      ['a URL Express reads otherwise (a #)', bare('/?q=a#b')],
      ['an absolute-form URL', bare('http://blog.test/')],
      ['an exempt path (the layer counts nothing there)', bare('/healthz')],
      ['a forged token', bare('/', { cookie: 'ryw=s:forged' })],
    ] as const) {
      expect(ryw.immediate(req), why).toBeNull();
    }
    // A token the replica has not reached: it would wait.
    replica.setPosition(4n);
    expect(ryw.immediate(bare('/', { [TOKEN_HEADER.toLowerCase()]: met }))).toBeNull();
    // On the primary too, where a write is served: a GET that writes gets its token from the middleware.
    const onPrimary = readYourWrites({ node: primary, secrets: [SECRET], writePaths: ['/unsubscribe'] });
    expect(onPrimary.immediate(bare('/'))).toMatchObject({ timing: 'none', role: 'primary' });
    expect(onPrimary.immediate(bare('/unsubscribe'))).toBeNull();
    primary.close();
    replica.close();
  });

  it('is null for a met token beside a cookie of an older lineage: the middleware clears that cookie', async () => {
    const primary = new MemoryNode({ region: 'fra', instance: 'fra-1' }, { role: 'primary', position: 9n });
    const ahead = (await request(appOn(primary).app).post('/').expect(201)).headers['ryw-token'] as string;
    // The database was replaced (a restore): the primary is back at 5; the token for 9 names a write it does not have.
    primary.setPosition(5n);
    const met = (await request(appOn(primary).app).post('/').expect(201)).headers['ryw-token'] as string;
    const ryw = readYourWrites({ node: primary, secrets: [SECRET] });
    expect(ryw.immediate(bare('/', { [TOKEN_HEADER.toLowerCase()]: met }))).toMatchObject({ timing: 'fresh' });
    expect(ryw.immediate(bare('/', { [TOKEN_HEADER.toLowerCase()]: met, cookie: `ryw=${encodeURIComponent(ahead)}` }))).toBeNull();
    primary.close();
  });

  it('is null when exempt paths are a function of Express’s request, which a bare request is not', () => {
    const node = new MemoryNode({ region: 'fra', instance: 'fra-1' }, { role: 'primary', position: 1n });
    const ryw = readYourWrites({ node, secrets: [SECRET], exempt: (req) => req.path === '/healthz' });
    expect(ryw.immediate(bare('/'))).toBeNull();
    node.close();
  });
});
