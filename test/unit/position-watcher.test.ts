import { afterEach, describe, expect, it } from 'vitest';
import { PositionWatcher, EVENT_GRACE_MS, STREAMING_POLL_MS } from '../../src/ryw/litefs/position-watcher.js';
import { Waiters } from '../../src/ryw/waiters.js';
import { fakeEvents } from '../support/fake-events.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const until = async (condition: () => boolean, ms = 3_000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
};

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
    const started = performance.now();
    /** Notes the outcome; resolves with the ms it took. */
    const settled = (name: string) => (ok: boolean) => {
      outcomes.push(`${name}:${ok}`);
      return performance.now() - started;
    };
    const long = waiters.add(9n, 400).then(settled('long'));
    const short = waiters.add(9n, 100).then(settled('short'));
    // Not before its own deadline, and not kept until the later one.
    expect(await short).toBeGreaterThanOrEqual(95);
    expect(outcomes).toEqual(['short:false']);
    expect(waiters.size).toBe(1);
    const longMs = await long;
    expect(outcomes).toEqual(['short:false', 'long:false']);
    expect(longMs).toBeGreaterThanOrEqual(395);
    expect(longMs).toBeLessThan(2_000);
  });
});

describe('the pos-file poller', () => {
  let watcher: PositionWatcher | undefined;
  afterEach(() => watcher?.close());

  /**
   * Resolves once `n` poll ticks have run: a watcher of its own, waited on at
   * the same pace, counts them. Proof that a poller which should be still had
   * every chance to read, without guessing at a sleep.
   */
  async function pollTicks(n: number): Promise<void> {
    const metronome = new PositionWatcher({ readPosition: () => 0n, pollMs: 5 });
    void metronome.waitFor(1n, 60_000);
    try {
      await until(() => metronome.fileReads >= n);
    } finally {
      metronome.close();
    }
  }

  it('reads the file only while somebody waits, once per tick however many wait', async () => {
    let position = 1n;
    // Reads made in one turn of the event loop are one tick's.
    let burst = 0;
    let largestBurst = 0;
    watcher = new PositionWatcher({
      readPosition: () => {
        if (burst++ === 0) setImmediate(() => (burst = 0));
        largestBurst = Math.max(largestBurst, burst);
        return position;
      },
      pollMs: 5,
    });
    await pollTicks(10);
    expect(watcher.fileReads).toBe(0);

    const many = Array.from({ length: 500 }, () => watcher!.waitFor(2n, 5_000));
    await until(() => watcher!.fileReads >= 10);
    // 500 waiters, ten ticks and more: one read per tick, not one per waiter.
    expect(largestBurst).toBe(1);
    position = 2n;
    expect(await Promise.all(many)).toEqual(Array(500).fill(true));

    // Nobody waits any more: ticks come and go, the file is not read again.
    const afterWake = watcher.fileReads;
    await pollTicks(10);
    expect(watcher.fileReads).toBe(afterWake);
  });
});

describe('the LiteFS /events watcher', () => {
  let watcher: PositionWatcher | undefined;
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    watcher?.close();
    await close?.();
  });

  async function eventsServer() {
    const events = await fakeEvents();
    close = events.close;
    return events;
  }

  it('wakes waiters on the tx event without reading the pos file', async () => {
    const events = await eventsServer();
    const filePosition = 3n;
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

  it('leaves the waking to the event when the safety poll finds the file a moment ahead of it (LiteFS moves the file first)', async () => {
    const events = await eventsServer();
    let filePosition = 3n;
    watcher = new PositionWatcher({ readPosition: () => filePosition, pollMs: 5, events: { api: events.url, database: 'app.db' } });
    await until(() => watcher!.streaming);
    const done = watcher.waitFor(4n, 5_000);
    // The commit: the file at once, the event a little after the safety poll's first tick has read the file.
    filePosition = 4n;
    setTimeout(() => events.send('0000000000000004'), STREAMING_POLL_MS + EVENT_GRACE_MS / 2);
    expect(await done).toBe(true);
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
    // What the poll read is what the process now knows: decisions and /metrics see it too.
    expect(watcher.current()).toBe(4n);
  });

  it('learns a commit from the pos file before its tx event arrives, and keeps it when the event comes late', async () => {
    const events = await eventsServer();
    let filePosition = 3n;
    watcher = new PositionWatcher({ readPosition: () => filePosition, events: { api: events.url, database: 'app.db' } });
    await until(() => watcher!.streaming);
    filePosition = 5n;
    expect(watcher.current()).toBe(3n); // the stream has not said so yet
    expect(watcher.refresh()).toBe(5n);
    expect(watcher.current()).toBe(5n);
    // The stream's events for 4 and 5 arrive after the read: 4 must not take us back.
    events.send('0000000000000004');
    // An event after it, whose effect we can see, proves the 4 was processed.
    events.sendRaw({ type: 'primaryChange', data: { isPrimary: false, hostname: 'fra-2' } });
    await until(() => watcher!.role()?.primary === 'fra-2');
    expect(watcher.current()).toBe(5n);
    events.send('0000000000000006');
    await until(() => watcher!.current() === 6n);
  });

  it('follows the position down when the pos file confirms it (a restore)', async () => {
    const events = await eventsServer();
    let filePosition = 9n;
    watcher = new PositionWatcher({ readPosition: () => filePosition, events: { api: events.url, database: 'app.db' } });
    await until(() => watcher!.streaming);
    expect(watcher.current()).toBe(9n);
    filePosition = 2n;
    events.send('0000000000000002');
    await until(() => watcher!.current() === 2n);
  });

  it("follows the role LiteFS reports, keeping the primary's name while a replica is cut off", async () => {
    const events = await eventsServer();
    watcher = new PositionWatcher({ readPosition: () => 1n, events: { api: events.url, database: 'app.db' } });
    await until(() => watcher!.streaming);
    expect(watcher.role()).toEqual({ isPrimary: false, primary: 'fra-1' });
    events.sendRaw({ type: 'primaryChange', data: { isPrimary: false, hostname: '' } });
    // An event after it, whose effect we can see, proves the change was processed.
    events.send('0000000000000002');
    await until(() => watcher!.current() === 2n);
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

  it('tells onState of a stream lost, but not of its own close() (a shutdown loses nothing)', async () => {
    const events = await eventsServer();
    const states: boolean[] = [];
    watcher = new PositionWatcher({
      readPosition: () => 1n,
      events: { api: events.url, database: 'app.db', onState: (connected) => states.push(connected) },
    });
    await until(() => watcher!.streaming);
    events.dropClients();
    await until(() => !watcher!.streaming);
    await until(() => watcher!.streaming);
    watcher.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(states).toEqual([true, false, true]);
    expect(watcher.streaming).toBe(false);
  });
});
