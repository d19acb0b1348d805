import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PositionWatcher, STREAMING_POLL_MS } from '../../src/litefs/position-watcher.js';
import { Waiters } from '../../src/litefs/waiters.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('waiters', () => {
  it('wake as soon as the position reaches their target, and not before', async () => {
    const waiters = new Waiters();
    const started = performance.now();
    const done = waiters.add(5n, 5_000);
    waiters.advance(4n);
    setTimeout(() => waiters.advance(5n), 100);
    expect(await done).toBe(true);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(1_000);
    expect(waiters.size).toBe(0);
  });

  it('give up at their deadline', async () => {
    const waiters = new Waiters();
    const started = performance.now();
    expect(await waiters.add(5n, 150)).toBe(false);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(elapsed).toBeLessThan(1_000);
  });

  it('give up at once when the client goes away', async () => {
    const waiters = new Waiters();
    const gone = new AbortController();
    const done = waiters.add(5n, 10_000);
    const aborted = waiters.add(5n, 10_000, gone.signal);
    gone.abort();
    expect(await aborted).toBe(false);
    expect(waiters.size).toBe(1);
    waiters.advance(5n);
    expect(await done).toBe(true);
  });

  it('expire each at its own deadline with one shared timer', async () => {
    const waiters = new Waiters();
    const outcomes: string[] = [];
    const long = waiters.add(9n, 400).then((ok) => outcomes.push(`long:${ok}`));
    const short = waiters.add(9n, 100).then((ok) => outcomes.push(`short:${ok}`));
    await short;
    expect(outcomes).toEqual(['short:false']);
    expect(waiters.size).toBe(1);
    await long;
    expect(outcomes).toEqual(['short:false', 'long:false']);
  });
});

describe('the pos-file poller', () => {
  let watcher: PositionWatcher | undefined;
  afterEach(() => watcher?.close());

  it('reads the file only while somebody waits, once per tick however many wait', async () => {
    let position = 1n;
    watcher = new PositionWatcher({ readPosition: () => position, pollMs: 5 });
    await sleep(60);
    expect(watcher.fileReads).toBe(0);

    const many = Array.from({ length: 500 }, () => watcher!.waitFor(2n, 5_000));
    await sleep(100);
    // 500 waiters for ~100 ms at one read per 5 ms tick: about 20 reads, not 500 × 20.
    expect(watcher.fileReads).toBeGreaterThan(0);
    expect(watcher.fileReads).toBeLessThan(60);
    position = 2n;
    expect(await Promise.all(many)).toEqual(Array(500).fill(true));

    const afterWake = watcher.fileReads;
    await sleep(60);
    expect(watcher.fileReads - afterWake).toBeLessThanOrEqual(1);
  });
});

describe('the LiteFS /events watcher', () => {
  let watcher: PositionWatcher | undefined;
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    watcher?.close();
    await close?.();
  });

  /** An HTTP server speaking LiteFS's `/events` format (newline-delimited JSON). */
  async function eventsServer() {
    const clients = new Set<ServerResponse>();
    const server = createServer((req, res) => {
      if (req.url !== '/events') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify({ type: 'init', data: { isPrimary: false, hostname: 'fra-1' } })}\n`);
      clients.add(res);
      res.on('close', () => clients.delete(res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const send = (txid: string, db = 'app.db') => {
      const line = `${JSON.stringify({ type: 'tx', db, data: { txID: txid, postApplyChecksum: 'ab'.repeat(8), commit: 1 } })}\n`;
      for (const client of clients) client.write(line);
    };
    const sendRaw = (event: object) => {
      for (const client of clients) client.write(`${JSON.stringify(event)}\n`);
    };
    const dropClients = () => {
      for (const client of clients) client.destroy();
    };
    close = () => new Promise<void>((resolve) => { dropClients(); server.close(() => resolve()); });
    return { url, send, sendRaw, dropClients, connected: () => clients.size };
  }

  const until = async (condition: () => boolean, ms = 3_000) => {
    const deadline = Date.now() + ms;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await sleep(5);
    }
  };

  it('wakes waiters on the tx event without reading the pos file', async () => {
    const events = await eventsServer();
    let filePosition = 3n;
    watcher = new PositionWatcher({ readPosition: () => filePosition, pollMs: 5, events: { api: events.url, database: 'app.db' } });
    await until(() => watcher!.streaming);
    expect(watcher.current()).toBe(3n);
    const readsAtStart = watcher.fileReads;

    const started = performance.now();
    const done = watcher.waitFor(5n, 5_000);
    setTimeout(() => events.send('0000000000000004'), 50);
    setTimeout(() => events.send('0000000000000005', 'other.db'), 80);
    setTimeout(() => events.send('0000000000000005'), 150);
    expect(await done).toBe(true);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(1_000);
    expect(watcher.current()).toBe(5n);
    // The stream did the waking (the file still said 3); the file was only read
    // by the slow safety net, once per STREAMING_POLL_MS at most.
    expect(watcher.fileReads - readsAtStart).toBeLessThanOrEqual(Math.ceil(elapsed / STREAMING_POLL_MS));
    expect(watcher.woken).toEqual({ events: 1, poll: 0 });
  });

  it('still wakes waiters when the stream is connected but silent, by the slow safety poll', async () => {
    const events = await eventsServer();
    let filePosition = 3n;
    watcher = new PositionWatcher({ readPosition: () => filePosition, pollMs: 5, events: { api: events.url, database: 'other.db' } });
    await until(() => watcher!.streaming);
    const started = performance.now();
    const done = watcher.waitFor(4n, 5_000);
    setTimeout(() => (filePosition = 4n), 50);
    expect(await done).toBe(true);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(45);
    expect(elapsed).toBeLessThan(50 + STREAMING_POLL_MS + 500); // not the 5 s budget
    expect(watcher.woken).toEqual({ events: 0, poll: 1 });
  });

  it("follows the role LiteFS reports, keeping the primary's name while a replica is cut off", async () => {
    const events = await eventsServer();
    watcher = new PositionWatcher({ readPosition: () => 1n, events: { api: events.url, database: 'app.db' } });
    await until(() => watcher!.streaming);
    expect(watcher.role()).toEqual({ isPrimary: false, primary: 'fra-1' });
    events.sendRaw({ type: 'primaryChange', data: { isPrimary: false, hostname: '' } });
    await sleep(50);
    expect(watcher.role()).toEqual({ isPrimary: false, primary: 'fra-1' });
    events.sendRaw({ type: 'primaryChange', data: { isPrimary: true } });
    await until(() => watcher!.role()?.isPrimary === true);
    events.dropClients();
    await until(() => !watcher!.streaming);
    expect(watcher.role()).toBeNull(); // not streaming: the files decide again
  });

  it('falls back to polling the pos file while the stream is down, and reconnects', async () => {
    const events = await eventsServer();
    let filePosition = 3n;
    watcher = new PositionWatcher({ readPosition: () => filePosition, pollMs: 5, events: { api: events.url, database: 'app.db' } });
    await until(() => watcher!.streaming);
    events.dropClients();
    await until(() => !watcher!.streaming);

    const done = watcher.waitFor(4n, 5_000);
    setTimeout(() => (filePosition = 4n), 50);
    expect(await done).toBe(true);

    await until(() => watcher!.streaming && events.connected() === 1);
  });
});
