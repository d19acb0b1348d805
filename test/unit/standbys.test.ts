/**
 * The standby follower (RYW_DURABILITY=standby): one `/events` subscription
 * per standby, a write confirmed as soon as any standby that is not the
 * primary reports its TXID applied, never before, and a plain timeout when
 * none does. Against real HTTP servers on 127.0.0.1 streaming LiteFS-shaped
 * events (test/support/fake-events.ts), with real clocks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Standbys, standbyUrl, type StandbysOptions } from '../../src/ryw/litefs/standbys.js';
import { fakeEvents, type FakeEvents } from '../support/fake-events.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const until = async (condition: () => boolean, ms = 5_000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
};
const tx = (n: number) => n.toString(16).padStart(16, '0');

let cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function standby(init: { isPrimary: boolean; hostname?: string } = { isPrimary: false, hostname: 'fra-1' }): Promise<FakeEvents> {
  const fake = await fakeEvents(init);
  cleanups.push(() => fake.close());
  return fake;
}

/** We are `fra-1`: the standbys' LiteFS name it as the primary they follow (the fake's default `init`). */
function follow(options: Omit<StandbysOptions, 'self'> & { self?: string }): Standbys {
  const standbys = new Standbys({ self: 'fra-1', ...options });
  cleanups.push(() => standbys.close());
  return standbys;
}

describe('the standby follower', () => {
  it('confirms a position as soon as a standby reports it applied, and not before', async () => {
    const fake = await standby();
    const standbys = follow({ standbys: [fake.url], database: 'app.db' });
    await until(() => standbys.count().streaming === 1);
    const started = performance.now();
    const confirmed = standbys.waitFor(5n, 5_000);
    fake.send(tx(4));
    setTimeout(() => fake.send(tx(5)), 150);
    expect(await confirmed).toBe(true);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(2_000);
    // Known now: a later wait for it (a resubmitted form) is confirmed at once.
    expect(await standbys.waitFor(5n, 0)).toBe(true);
  });

  it('gives up at the deadline when no standby reports it', async () => {
    const fake = await standby();
    const standbys = follow({ standbys: [fake.url], database: 'app.db' });
    await until(() => standbys.count().streaming === 1);
    fake.send(tx(4));
    const started = performance.now();
    expect(await standbys.waitFor(5n, 300)).toBe(false);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
  });

  it('holds one subscription per standby, however many writes wait', async () => {
    const one = await standby();
    const two = await standby();
    const standbys = follow({ standbys: [one.url, two.url], database: 'app.db' });
    await until(() => standbys.count().streaming === 2);
    const waits = Array.from({ length: 50 }, (_, i) => standbys.waitFor(BigInt(i + 1), 5_000));
    await sleep(50);
    expect(one.connected()).toBe(1);
    expect(two.connected()).toBe(1);
    // Any one standby is enough: the other stays silent.
    two.send(tx(50));
    expect(await Promise.all(waits)).toEqual(waits.map(() => true));
  });

  it('ignores a standby that is itself the primary (found by DNS, it is us), and tx events of other databases', async () => {
    const primary = await standby({ isPrimary: true });
    const replica = await standby();
    const standbys = follow({ standbys: [primary.url, replica.url], database: 'app.db' });
    await until(() => primary.connected() === 1 && replica.connected() === 1);
    expect(standbys.count()).toEqual({ known: 2, streaming: 1 });
    const confirmed = standbys.waitFor(7n, 400);
    primary.send(tx(7));
    replica.send(tx(7), 'other.db');
    expect(await confirmed).toBe(false);
  });

  it('stops counting a standby that becomes primary (primaryChange)', async () => {
    const fake = await standby();
    const standbys = follow({ standbys: [fake.url], database: 'app.db' });
    await until(() => standbys.count().streaming === 1);
    fake.send(tx(3));
    await until(() => standbys.highest() === 3n);
    fake.sendRaw({ type: 'primaryChange', data: { isPrimary: true } });
    await until(() => standbys.count().streaming === 0);
    expect(await standbys.waitFor(3n, 200)).toBe(false);
  });

  it('reconnects after the stream is lost, and forgets the position until the next tx', async () => {
    const fake = await standby();
    const standbys = follow({ standbys: [fake.url], database: 'app.db' });
    await until(() => standbys.count().streaming === 1);
    fake.send(tx(9));
    await until(() => standbys.highest() === 9n);
    fake.dropClients();
    await until(() => standbys.count().streaming === 0);
    // Back within the first back-off step (100 ms), generously bounded.
    await until(() => standbys.count().streaming === 1, 3_000);
    expect(standbys.highest()).toBeNull();
    const confirmed = standbys.waitFor(10n, 5_000);
    fake.send(tx(10));
    expect(await confirmed).toBe(true);
  });

  it('follows the addresses of a DNS name, looked up again so that new machines join and gone ones leave', async () => {
    const fake = await standby();
    // The name has no machine yet, then one (this fake on 127.0.0.1), then none again.
    let addresses: string[] = [];
    let failing = false;
    const looked: string[] = [];
    const standbys = follow({
      standbys: { dns: 'fra.blog.internal', port: Number(fake.url.port) },
      database: 'app.db',
      resolveEveryMs: 50,
      resolve: async (name) => {
        looked.push(name);
        if (failing) throw Object.assign(new Error('queryA ETIMEOUT'), { code: 'ETIMEOUT' });
        return addresses;
      },
    });
    await standbys.ready;
    expect(looked[0]).toBe('fra.blog.internal');
    expect(standbys.count()).toEqual({ known: 0, streaming: 0 });
    addresses = ['127.0.0.1'];
    await until(() => standbys.count().streaming === 1 && fake.connected() === 1);
    const confirmed = standbys.waitFor(2n, 5_000);
    fake.send(tx(2));
    expect(await confirmed).toBe(true);
    addresses = [];
    await until(() => standbys.count().known === 0 && fake.connected() === 0);
    addresses = ['127.0.0.1'];
    await until(() => standbys.count().streaming === 1);
    // A lookup that fails keeps what is known: a DNS hiccup drops no standby.
    failing = true;
    const lookups = looked.length;
    await until(() => looked.length >= lookups + 3);
    expect(standbys.count()).toEqual({ known: 1, streaming: 1 });
  });

  it('never confirms with a standby that follows another primary, nor with a position from before it followed us', async () => {
    const fake = await standby({ isPrimary: false, hostname: 'fra-0' });
    const standbys = follow({ standbys: [fake.url], database: 'app.db' });
    await until(() => fake.connected() === 1);
    expect(standbys.count()).toEqual({ known: 1, streaming: 0 });
    // TXID 10 of the old primary's lineage; ours (we are behind, at 8) will be a different 9.
    fake.send(tx(10));
    expect(await standbys.waitFor(9n, 200)).toBe(false);
    // The old primary is gone; it follows us now, with nothing new applied yet.
    fake.sendRaw({ type: 'primaryChange', data: { isPrimary: false } });
    fake.sendRaw({ type: 'primaryChange', data: { isPrimary: false, hostname: 'fra-1' } });
    await until(() => standbys.count().streaming === 1);
    // The old lineage's 10 is forgotten: it proves nothing of ours.
    expect(standbys.highest()).toBeNull();
    expect(await standbys.waitFor(9n, 0)).toBe(false);
    // What it applies from us now counts.
    const confirmed = standbys.waitFor(9n, 5_000);
    fake.send(tx(9));
    expect(await confirmed).toBe(true);
  });

  it('never confirms with the TXIDs a standby committed itself as primary, also once it lost the lease', async () => {
    const fake = await standby({ isPrimary: true });
    const standbys = follow({ standbys: [fake.url], database: 'app.db' });
    await until(() => fake.connected() === 1);
    fake.send(tx(10));
    await sleep(20);
    fake.sendRaw({ type: 'primaryChange', data: { isPrimary: false } });
    await sleep(20);
    expect(await standbys.waitFor(9n, 200)).toBe(false);
  });

  it('after its stream reopens, a wait that nothing new would answer commits one marker, and the standby’s tx for it confirms', async () => {
    const fake = await standby();
    let marks = 0;
    const standbys = follow({
      standbys: [fake.url],
      database: 'app.db',
      // Playing LiteFS: the marker commits TXID 13, and the standby applies it.
      mark: () => {
        marks++;
        setTimeout(() => fake.send(tx(12 + marks)), 20);
      },
    });
    await until(() => standbys.count().streaming === 1);
    fake.dropClients();
    await until(() => standbys.count().streaming === 0);
    // Applied while nobody listened: LiteFS's init says nothing of it.
    fake.send(tx(12));
    await until(() => standbys.count().streaming === 1);
    expect(await standbys.waitFor(12n, 3_000)).toBe(true);
    // Known now: sent again, confirmed at once, without another marker.
    expect(await standbys.waitFor(12n, 3_000)).toBe(true);
    expect(marks).toBe(1);
  });

  it('drops a stream that went silent without closing (a machine gone without a FIN) once a write times out, and follows it again', async () => {
    const fake = await standby();
    const standbys = follow({ standbys: [fake.url], database: 'app.db' });
    await until(() => standbys.count().streaming === 1);
    fake.freeze();
    expect(await standbys.waitFor(5n, 300)).toBe(false);
    await until(() => fake.accepted() === 2 && standbys.count().streaming === 1, 3_000);
    const confirmed = standbys.waitFor(5n, 5_000);
    fake.send(tx(5));
    expect(await confirmed).toBe(true);
  });

  it('holds no stream while this node is not the primary, and opens them for its first write once it is', async () => {
    const fake = await standby();
    let primary = false;
    const standbys = follow({ standbys: [fake.url], database: 'app.db', active: () => primary, resolveEveryMs: 60_000 });
    await standbys.ready;
    await sleep(100);
    expect(fake.accepted()).toBe(0);
    primary = true;
    const confirmed = standbys.waitFor(3n, 5_000);
    await until(() => fake.connected() === 1);
    await until(() => standbys.count().streaming === 1);
    fake.send(tx(3));
    expect(await confirmed).toBe(true);
  });

  it('follows a machine once when its name has both A and AAAA records', async () => {
    const fake = await standby();
    const standbys = follow({
      standbys: { dns: 'fra.blog.internal', port: Number(fake.url.port) },
      database: 'app.db',
      resolve: async () => ['127.0.0.1', '::1'],
    });
    await standbys.ready;
    await until(() => standbys.count().streaming === 1);
    expect(standbys.count().known).toBe(1);
  });

  it('drops and reopens a stream that sends a line longer than any event', async () => {
    const fake = await standby();
    const standbys = follow({ standbys: [fake.url], database: 'app.db' });
    await until(() => standbys.count().streaming === 1);
    fake.sendRaw({ type: 'noise', data: 'x'.repeat(1_000_000) });
    await until(() => fake.accepted() === 2 && standbys.count().streaming === 1, 3_000);
  });

  it('names a standby found by address with LiteFS’s port, IPv6 in brackets', () => {
    expect(standbyUrl('fdaa:0:1::3').href).toBe('http://[fdaa:0:1::3]:20202/');
    expect(standbyUrl('10.0.0.2').href).toBe('http://10.0.0.2:20202/');
  });
});
