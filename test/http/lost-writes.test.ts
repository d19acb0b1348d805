/**
 * A write lost in a failover (RYW_DURABILITY=local): fra-1 committed TXID 10
 * and crashed before streaming it; fra-2 took over at 9 and committed its own
 * TXID 10. The reader's token says 10 and fra-1's checksum: every node that
 * followed fra-2 sees another checksum at 10, drops the token at once and
 * tells the reader plainly. Tokens of the new lineage, and of the older
 * format, are served as before.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { formatPosFile } from '../../src/ryw/litefs/files.js';
import { LINEAGE_POLL_MS } from '../../src/ryw/litefs/litefs-node.js';
import { signToken, tokenPayload } from '../../src/ryw/token.js';
import { fakeEvents, type FakeEvents } from '../support/fake-events.js';
import { cookiePair, FakeLiteFS, SECRETS, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';
import type { App } from '../support/forms.js';

const OLD = 'c1c1c1c1c1c1c1c1'; // fra-1's database after its TXID 10: the lost write
const NEW = 'e2e2e2e2e2e2e2e2'; // fra-2's, after its own TXID 10
const LOST_NOTICE = 'Your last change was lost when the primary database changed';
const lostToken = () => signToken(tokenPayload(10n, Date.now() - 2_000, OLD), SECRETS);
const newToken = () => signToken(tokenPayload(10n, Date.now(), NEW), SECRETS);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Served here as met, with no notice. */
const servedAsMet = (res: request.Response) => {
  expect(res.status).toBe(200);
  expect(serverTiming(res.headers['server-timing']).desc).toBe('fresh');
  expect(res.text).not.toContain(LOST_NOTICE);
};

let fs: FakeLiteFS;
let events: FakeEvents | undefined;
afterEach(async () => {
  fs?.close();
  await events?.close();
  events = undefined;
});

/** fra-2, a replica of fra-1 at TXID 9, takes the lease (no `.primary`, `.lag` 0): the new primary. */
async function fra2TakesOver(): Promise<App> {
  fs = new FakeLiteFS({ role: 'replica', position: 9n });
  fs.setLag(0);
  const { app } = fs.app({ region: 'fra', instance: 'fra-2' });
  await request(app).get('/healthz').expect(200); // a replica of fra-1
  fs.setPrimary(null);
  expect((await request(app).get('/healthz')).body).toMatchObject({ role: 'primary' });
  return app;
}

/** syd, a replica following fra-1, that has reached fra-1's TXID 10 (checksum OLD) and remembers it. */
async function sydRemembersFra1At10(): Promise<App> {
  fs = new FakeLiteFS({ role: 'replica', position: 9n, primary: 'fra-1' });
  fs.setLag(0);
  const { app } = fs.app({ region: 'syd', instance: 'syd-1' });
  await request(app).get('/healthz').expect(200); // following fra-1
  await sleep(150);
  at(10n, OLD);
  // Remembered: a token for 10 with another checksum (NEW) is told lost here now.
  const before = await request(app)
    .get('/')
    .set('Cookie', tokenCookie(signToken(tokenPayload(10n, Date.now(), NEW), SECRETS)));
  expect(before.text).toContain(LOST_NOTICE);
  return app;
}

const at = (txid: bigint, checksum: string) => fs.writePositionFile(formatPosFile({ txid, checksum }));

/** A replica that followed fra-1, then fra-2 once it took over, and has heard from fra-2 since (`.lag` small). */
async function replicaAfterFailover() {
  fs = new FakeLiteFS({ role: 'replica', position: 9n });
  fs.setLag(0);
  const built = fs.app({ region: 'syd', instance: 'syd-1' });
  await request(built.app).get('/healthz').expect(200); // following fra-1
  fs.setPrimary('fra-2');
  await request(built.app).get('/healthz').expect(200); // following fra-2: what it saw of fra-1 is forgotten
  await sleep(150); // `.lag` is read at most every 100 ms: the next read is after the change
  at(10n, NEW); // fra-2's own TXID 10 has arrived
  return built;
}

describe('a token naming a write lost in a failover', () => {
  it('is dropped at once on a replica that follows the new primary, and the reader is told plainly', async () => {
    const { app } = await replicaAfterFailover();
    const started = performance.now();
    const res = await request(app).get('/').set('Cookie', tokenCookie(lostToken())).expect(200);
    expect(performance.now() - started).toBeLessThan(400); // no wait for a token that can never be met
    expect(serverTiming(res.headers['server-timing']).desc).toBe('dropped');
    expect(res.text).toContain(LOST_NOTICE);
    expect(res.headers['cache-control']).toContain('private');
    expect(cookiePair(res.headers, 'ryw')).toBe('ryw='); // cleared: the next page says nothing more
  });

  it('leaves a token of the new lineage, or of the older format, served as before', async () => {
    const { app } = await replicaAfterFailover();
    const fresh = await request(app).get('/').set('Cookie', tokenCookie(newToken())).expect(200);
    expect(serverTiming(fresh.headers['server-timing']).desc).toBe('fresh');
    expect(fresh.text).not.toContain(LOST_NOTICE);
    const older = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(10n)))
      .expect(200);
    expect(serverTiming(older.headers['server-timing']).desc).toBe('fresh');
    expect(older.text).not.toContain(LOST_NOTICE);
  });

  it('is not judged on a replica that has not heard from the new primary yet (its database may still be the old one)', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 9n });
    fs.setLag(0);
    const { app } = fs.app({ region: 'syd', instance: 'syd-1' });
    await request(app).get('/healthz').expect(200);
    at(10n, OLD); // the lost write reached this replica before fra-1 crashed
    fs.setPrimary('fra-2');
    fs.setLag(4_000); // nothing from fra-2 yet: a snapshot of its lineage is still to come
    await sleep(150);
    // It cannot judge either token here: both are taken as met, and nobody is told of a loss it cannot see.
    for (const token of [newToken(), lostToken()]) servedAsMet(await request(app).get('/').set('Cookie', tokenCookie(token)));
    // Pinned here, the same.
    const pinned = await request(app).get('/?region=syd').set('Cookie', tokenCookie(lostToken())).expect(200);
    expect(pinned.text).not.toContain(LOST_NOTICE);
    expect(serverTiming(pinned.headers['server-timing']).desc).toBe('fresh');
  });

  it('never judges by what a replica saw of the old primary (a snapshot of the new lineage replaced it)', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 9n });
    fs.setLag(0);
    const { app } = fs.app({ region: 'syd', instance: 'syd-1' });
    at(10n, OLD); // the lost write reached this replica
    await request(app).get('/').set('Cookie', tokenCookie(lostToken())).expect(200); // met here, under fra-1
    fs.setPrimary('fra-2');
    await request(app).get('/healthz').expect(200);
    await sleep(150);
    at(11n, 'f3f3f3f3f3f3f3f3'); // fra-2's snapshot, at 11: its TXID 10 never passed through here
    // It had TXID 10 before it followed fra-2: the token is met, as every token it had then.
    servedAsMet(await request(app).get('/').set('Cookie', tokenCookie(newToken())));
  });

  it('is dropped on a replica when ahead of it long after it was issued, without telling the reader it was lost', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 9n });
    fs.setLag(0); // heard from the primary just now, long after the token was issued: but by two machines' clocks
    const { app } = fs.app({ region: 'syd', instance: 'syd-1' });
    const started = performance.now();
    const res = await request(app).get('/').set('Cookie', tokenCookie(lostToken())).expect(200);
    expect(performance.now() - started).toBeLessThan(400);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('dropped');
    expect(cookiePair(res.headers, 'ryw')).toBe('ryw=');
    expect(res.text).not.toContain(LOST_NOTICE);
  });

  it('is dropped, and the reader told, on the new primary before it has used the TXID again (it is ahead of it)', async () => {
    const app = await fra2TakesOver();
    const res = await request(app).get('/').set('Cookie', tokenCookie(lostToken())).expect(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('dropped');
    expect(res.text).toContain(LOST_NOTICE);
  });

  it('is not told lost by a replica that missed a whole reign unasked (fra-1, fra-2, fra-1 again; files only)', async () => {
    const app = await sydRemembersFra1At10(); // fra-1's TXID 10 reached this replica, and is remembered...
    // ...then fra-1 crashed before streaming it to fra-2; no request came meanwhile.
    fs.setPrimary(null);
    fs.setLag(1_500); // reconnecting: LiteFS names no primary
    await sleep(LINEAGE_POLL_MS + 100);
    fs.setPrimary('fra-2');
    fs.setLag(0);
    await sleep(LINEAGE_POLL_MS + 100);
    const issuedByFra2 = Date.now(); // fra-2's own TXID 10, NEW: a snapshot replaces 10/OLD here
    fs.setPrimary('fra-1'); // handed back to fra-1, which rejoined and took fra-2's lineage
    at(11n, 'f3f3f3f3f3f3f3f3');
    await sleep(LINEAGE_POLL_MS + 100);
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(signToken(tokenPayload(10n, issuedByFra2, NEW), SECRETS)));
    expect(res.text).not.toContain(LOST_NOTICE);
    servedAsMet(res); // it had TXID 10 before: the new lineage's TXID 10 is met here
  });

  it('is dropped on the new primary itself, once it has used the TXID again', async () => {
    const app = await fra2TakesOver();
    at(10n, NEW); // its first commit
    const res = await request(app).get('/').set('Cookie', tokenCookie(lostToken())).expect(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('dropped');
    expect(res.text).toContain(LOST_NOTICE);
  });

  it('is not told lost by a replica whose `.lag` showed a silence longer than a reconnection, under the same name', async () => {
    const app = await sydRemembersFra1At10();
    const issuedByFra2 = Date.now();
    fs.setLag(3_000); // heard nothing for 3 s: fra-2 may have reigned meanwhile
    await sleep(LINEAGE_POLL_MS + 100);
    fs.setLag(0);
    at(11n, 'f3f3f3f3f3f3f3f3');
    await sleep(150);
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(signToken(tokenPayload(10n, issuedByFra2, NEW), SECRETS)));
    expect(res.text).not.toContain(LOST_NOTICE);
    servedAsMet(res); // it had TXID 10 before: the new lineage's TXID 10 is met here
  });

  it('is not told lost by a replica whose event stream was down meanwhile (its reconnection forgets)', async () => {
    events = await fakeEvents({ isPrimary: false, hostname: 'fra-1' });
    fs = new FakeLiteFS({ role: 'replica', position: 9n, primary: 'fra-1' });
    fs.setLag(0);
    const { app, node } = fs.app({ region: 'syd', instance: 'syd-1', events: events.url });
    for (let i = 0; i < 200 && !node.stats().streaming; i++) await sleep(10);
    await sleep(150);
    at(10n, OLD);
    events.sendRaw({ type: 'tx', db: 'app.db', data: { txID: '000000000000000a', postApplyChecksum: OLD, commit: 1 } });
    for (let i = 0; i < 200 && node.position() !== 10n; i++) await sleep(5);
    expect(node.checksumAt(10n)).toBe(OLD);
    const issuedByFra2 = Date.now();
    events.dropClients(); // down while fra-2 reigned (its TXID 10 is NEW) and handed back to fra-1
    at(11n, 'f3f3f3f3f3f3f3f3');
    for (let i = 0; i < 300 && events.accepted() < 2; i++) await sleep(5);
    for (let i = 0; i < 200 && !node.stats().streaming; i++) await sleep(5);
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(signToken(tokenPayload(10n, issuedByFra2, NEW), SECRETS)));
    expect(res.text).not.toContain(LOST_NOTICE);
    servedAsMet(res); // it had TXID 10 before: the new lineage's TXID 10 is met here
  });

  it('is found from the event stream’s checksums once the replica is past that TXID', async () => {
    events = await fakeEvents({ isPrimary: false, hostname: 'fra-1' });
    fs = new FakeLiteFS({ role: 'replica', position: 9n });
    fs.setLag(0);
    const { app, node } = fs.app({ region: 'syd', instance: 'syd-1', events: events.url });
    for (let i = 0; i < 200 && !node.stats().streaming; i++) await sleep(10);
    events.sendRaw({ type: 'primaryChange', data: { isPrimary: false, hostname: 'fra-2' } });
    for (let i = 0; i < 200 && node.role().primary !== 'fra-2'; i++) await sleep(5);
    await sleep(150);
    const tx = (txid: bigint, checksum: string) =>
      events!.sendRaw({
        type: 'tx',
        db: 'app.db',
        data: { txID: txid.toString(16).padStart(16, '0'), postApplyChecksum: checksum, commit: 1 },
      });
    tx(10n, NEW);
    tx(11n, 'f3f3f3f3f3f3f3f3');
    at(12n, 'a4a4a4a4a4a4a4a4');
    tx(12n, 'a4a4a4a4a4a4a4a4');
    for (let i = 0; i < 200 && node.position() !== 12n; i++) await sleep(5);
    const lost = await request(app).get('/').set('Cookie', tokenCookie(lostToken())).expect(200);
    expect(serverTiming(lost.headers['server-timing']).desc).toBe('dropped');
    expect(lost.text).toContain(LOST_NOTICE);
    const kept = await request(app).get('/').set('Cookie', tokenCookie(newToken())).expect(200);
    expect(serverTiming(kept.headers['server-timing']).desc).toBe('fresh');
  });
});
