/**
 * LiteFS's `/events` reader shared by the position watcher and the standby
 * follower: the codec of one line as a table, and the stream (framing, the
 * bound on a line, back-off, close) against a tiny HTTP server on 127.0.0.1
 * that the test drives, with real clocks.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventStream, parseEvent, type EventStreamOptions, type LiteFSEvent } from '../../src/ryw/litefs/event-stream.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const CHECKSUM = 'ab'.repeat(8);
const line = (event: object) => `${JSON.stringify(event)}\n`;
const init = line({ type: 'init', data: { isPrimary: false, hostname: 'fra-1' } });
const tx = (txID: string, extra: object = {}) => line({ type: 'tx', db: 'app.db', data: { txID, ...extra } });
const INIT: LiteFSEvent = { type: 'init', isPrimary: false, hostname: 'fra-1' };

let cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

/** Resolves once `ready()` holds, re-checked at each `name` event of `emitter`; rejects after 5 s. */
async function whenever(emitter: EventEmitter, name: string, ready: () => boolean): Promise<void> {
  while (!ready()) await once(emitter, name, { signal: AbortSignal.timeout(5_000) });
}

/** An `/events` endpoint whose every request is answered by `answer` (with its index); remembers when each came. */
async function serve(answer: (res: ServerResponse, index: number) => void) {
  const arrivals: number[] = [];
  const news = new EventEmitter();
  const server = createServer((_req, res) => {
    arrivals.push(performance.now());
    answer(res, arrivals.length - 1);
    news.emit('request');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    arrivals,
    arrived: (count: number) => whenever(news, 'request', () => arrivals.length >= count),
  };
}

/** An EventStream on `api` that records what it hears. */
function follow(api: URL, options: Partial<EventStreamOptions> = {}, onEvent?: (event: LiteFSEvent, stream: EventStream) => void) {
  const events: LiteFSEvent[] = [];
  const news = new EventEmitter();
  let losses = 0;
  const stream: EventStream = new EventStream({
    api,
    reconnectMinMs: 50,
    reconnectMaxMs: 400,
    onEvent: (event) => {
      events.push(event);
      onEvent?.(event, stream);
      news.emit('event');
    },
    onLost: () => {
      losses++;
      news.emit('lost');
    },
    ...options,
  });
  cleanups.push(() => stream.close());
  return {
    stream,
    events,
    losses: () => losses,
    heard: (count: number) => whenever(news, 'event', () => events.length >= count),
    lost: (count: number) => whenever(news, 'lost', () => losses >= count),
  };
}

describe('parseEvent', () => {
  it.each<[string, string, LiteFSEvent | null]>([
    ['a replica’s init', init.trim(), INIT],
    [
      'a primary’s change',
      line({ type: 'primaryChange', data: { isPrimary: true } }),
      { type: 'primaryChange', isPrimary: true, hostname: null },
    ],
    [
      'a replica cut off (no hostname)',
      line({ type: 'primaryChange', data: { isPrimary: false, hostname: '' } }),
      { type: 'primaryChange', isPrimary: false, hostname: null },
    ],
    [
      'a hostname we could not put in a header',
      line({ type: 'init', data: { isPrimary: false, hostname: 'fra 1\r\nx: y' } }),
      { type: 'init', isPrimary: false, hostname: null },
    ],
    [
      'an overlong hostname',
      line({ type: 'init', data: { hostname: 'a'.repeat(256) } }),
      { type: 'init', isPrimary: false, hostname: null },
    ],
    ['isPrimary that is not true', line({ type: 'init', data: { isPrimary: 'yes', hostname: 'fra-1' } }), INIT],
    ['an init without data', line({ type: 'init' }), { type: 'init', isPrimary: false, hostname: null }],
    [
      'a tx with its checksum',
      tx('000000000000002a', { postApplyChecksum: CHECKSUM }),
      { type: 'tx', db: 'app.db', txid: 42n, checksum: CHECKSUM },
    ],
    [
      'a tx with a malformed checksum',
      tx('000000000000002a', { postApplyChecksum: 'AB'.repeat(8) }),
      { type: 'tx', db: 'app.db', txid: 42n, checksum: null },
    ],
    ['a tx without a checksum', tx('000000000000002a'), { type: 'tx', db: 'app.db', txid: 42n, checksum: null }],
    ['a tx with a short TXID', tx('2a'), null],
    ['a tx with an uppercase TXID', tx('000000000000002A'), null],
    ['a tx with a numeric TXID', line({ type: 'tx', db: 'app.db', data: { txID: 42 } }), null],
    ['a tx without a database', line({ type: 'tx', data: { txID: '000000000000002a' } }), null],
    ['another event type', line({ type: 'heartbeat', data: {} }), null],
    ['not JSON', '{"type":"tx",', null],
    ['JSON null', 'null', null],
    ['a JSON number', '42', null],
    ['an empty line', '', null],
  ])('%s', (_what, text, expected) => {
    expect(parseEvent(text.replace(/\n$/, ''))).toEqual(expected);
  });
});

describe('EventStream', () => {
  it('frames lines split anywhere across chunks, even inside a character, and skips what it cannot use', async () => {
    const body = Buffer.from(
      `${init}${line({ type: 'tx', db: 'blé.db', data: { txID: '000000000000002a' } })}not json\n${tx('000000000000002b', { postApplyChecksum: CHECKSUM })}`,
    );
    const split = body.indexOf(Buffer.from('é')) + 1; // between the two bytes of é
    const server = await serve((res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(body.subarray(0, 11)); // `{"type":"in`
      setTimeout(() => res.write(body.subarray(11, split)), 30);
      setTimeout(() => res.write(body.subarray(split)), 60);
    });
    const before = performance.now();
    const { stream, events, heard, losses } = follow(server.url);
    expect(stream.heardAt).toBe(0);
    await heard(3);
    await sleep(30);
    expect(events).toEqual([
      INIT,
      { type: 'tx', db: 'blé.db', txid: 42n, checksum: null },
      { type: 'tx', db: 'app.db', txid: 43n, checksum: CHECKSUM },
    ]);
    expect(stream.heardAt).toBeGreaterThan(before);
    expect(losses()).toBe(0);
    expect(server.arrivals).toHaveLength(1);
  });

  it('drops a stream whose line grows past the bound, and opens it again', async () => {
    const server = await serve((res, index) => {
      res.writeHead(200);
      res.write(init);
      if (index > 0) return;
      // Just under the bound, in pieces: a long line is not a long stream.
      const long = tx('000000000000002a', { padding: 'p'.repeat(900) });
      res.write(long.slice(0, 500));
      setTimeout(() => res.write(long.slice(500)), 20);
      setTimeout(() => res.write('x'.repeat(600)), 40);
      setTimeout(() => res.write('x'.repeat(600)), 60);
    });
    const { events, heard, losses } = follow(server.url, { maxLineBytes: 1_024 });
    await heard(3);
    expect(events).toEqual([INIT, { type: 'tx', db: 'app.db', txid: 42n, checksum: null }, INIT]);
    expect(losses()).toBe(1);
    expect(server.arrivals).toHaveLength(2);
  });

  it('waits longer after each loss, up to the longest pause, and the shortest again once a stream said init', async () => {
    const server = await serve((res, index) => {
      // Four refusals, then a stream that says init and ends, then one that stays.
      if (index < 4) return void res.writeHead(503).end();
      res.writeHead(200);
      res.write(init);
      if (index === 4) res.end();
    });
    const { heard, losses } = follow(server.url, { reconnectMinMs: 100, reconnectMaxMs: 400 });
    await server.arrived(6);
    await heard(2);
    const gaps = server.arrivals.slice(1).map((at, i) => at - server.arrivals[i]!);
    // Timers never fire early; they may fire late on a busy machine.
    expect(gaps[0]).toBeGreaterThanOrEqual(95);
    expect(gaps[1]).toBeGreaterThanOrEqual(195);
    expect(gaps[2]).toBeGreaterThanOrEqual(395);
    expect(gaps[3]).toBeGreaterThanOrEqual(395);
    expect(gaps[3]).toBeLessThan(790); // capped, not doubled again
    expect(gaps[4]).toBeGreaterThanOrEqual(95);
    expect(gaps[4]).toBeLessThan(300); // back to the shortest pause after the init
    expect(losses()).toBe(5);
  });

  it('close() drops the stream for good, without reporting it lost', async () => {
    let closed = false;
    const server = await serve((res) => {
      res.writeHead(200);
      res.write(init);
      res.on('close', () => (closed = true));
    });
    const { stream, heard, losses } = follow(server.url);
    await heard(1);
    stream.close();
    await sleep(300); // six of the shortest pauses
    expect(closed).toBe(true);
    expect(server.arrivals).toHaveLength(1);
    expect(losses()).toBe(0);
  });

  it('close() during the pause after a loss: it is not opened again', async () => {
    const server = await serve((res) => void res.writeHead(503).end());
    const { stream, lost } = follow(server.url, { reconnectMinMs: 100 });
    await lost(1);
    stream.close();
    await sleep(400);
    expect(server.arrivals).toHaveLength(1);
  });

  it('a listener that drops the stream hears nothing more from it, and the stream is opened again', async () => {
    const server = await serve((res, index) => {
      res.writeHead(200);
      // One chunk: init and two transactions.
      res.write(index === 0 ? `${init}${tx('0000000000000001')}${tx('0000000000000002')}` : init);
    });
    const { events, heard, losses } = follow(server.url, {}, (event, stream) => {
      if (event.type === 'tx' && event.txid === 1n) stream.reconnect();
    });
    await heard(3);
    await sleep(50);
    expect(events).toEqual([INIT, { type: 'tx', db: 'app.db', txid: 1n, checksum: null }, INIT]);
    expect(losses()).toBe(1);
    expect(server.arrivals).toHaveLength(2);
  });

  it('a listener that throws ends neither the process nor the stream: it is dropped and opened again, also when onLost throws', async () => {
    const server = await serve((res, index) => {
      res.writeHead(200);
      res.write(index === 0 ? `${init}${tx('0000000000000001')}${tx('0000000000000002')}` : init);
    });
    const { events, heard, losses } = follow(server.url, {}, (event) => {
      if (event.type === 'tx' && event.txid === 1n) throw new Error('a bug in a listener');
    });
    await heard(3);
    await sleep(50);
    // Nothing after the throw was handed on; the next stream began with its init.
    expect(events).toEqual([INIT, { type: 'tx', db: 'app.db', txid: 1n, checksum: null }, INIT]);
    expect(losses()).toBe(1);
    expect(server.arrivals).toHaveLength(2);

    const again = await serve((res, index) => {
      res.writeHead(200);
      res.write(init);
      if (index === 0) setTimeout(() => res.end(), 20);
    });
    let lost = 0;
    const opened = new EventStream({
      api: again.url,
      reconnectMinMs: 50,
      reconnectMaxMs: 400,
      onEvent: () => {},
      onLost: () => {
        lost++;
        throw new Error('a bug in onLost');
      },
    });
    cleanups.push(() => opened.close());
    await again.arrived(2);
    expect(lost).toBe(1);
  });
});
