/**
 * The edge router against stand-in apps (no LiteFS needed, so this always
 * runs): routing, fly-replay as Fly honours it, the 1 MiB replay buffer and
 * the replay bound.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEdge, DEFAULT_MAX_REPLAYS, REPLAY_UNREACHABLE_RETRY_AFTER_S, type Edge } from '../../tools/edge/edge-router.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../tools/edge/request-body.js';
import { formatFlyReplay, formatReplaySource, parseFlyReplay, parseReplaySource } from '../../src/ryw/fly-replay.js';

interface Seen {
  instance: string;
  method: string;
  url: string;
  body: string;
  replaySrc: string | undefined;
  flyRegion: string | undefined;
}

/** A stand-in app: its behaviour per path, and a log of what reached it. */
function standIn(instance: string, region: string, seen: Seen[]) {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const replaySrc = req.headers['fly-replay-src'] as string | undefined;
      seen.push({
        instance,
        method: req.method!,
        url: req.url!,
        body,
        replaySrc,
        flyRegion: req.headers['fly-region'] as string | undefined,
      });
      const path = req.url!.split('?')[0];
      const reply = (status: number, headers: http.OutgoingHttpHeaders, text: string) => {
        res.writeHead(status, headers);
        res.end(text);
      };
      if (path === '/healthz') {
        return reply(
          200,
          { 'content-type': 'application/json' },
          JSON.stringify({
            region,
            instance,
            role: region === 'fra' ? 'primary' : 'replica',
            position: region === 'fra' ? '0000000000000009' : '0000000000000007',
          }),
        );
      }
      if (path === '/loop') return reply(409, { 'fly-replay': `instance=${instance}` }, 'again');
      if (path === '/nowhere') return reply(409, { 'fly-replay': 'instance=mars-1' }, 'nowhere');
      if (path === '/to-syd' && region !== 'syd') return reply(409, { 'fly-replay': 'region=syd;state=from-test' }, 'go to syd');
      if (req.method !== 'GET' && region !== 'fra')
        return reply(409, { 'fly-replay': 'instance=fra-1', 'server-timing': 'ryw;desc=replayed;dur=0' }, 'read-only replica');
      reply(
        200,
        { 'content-type': 'text/plain', 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'], 'server-timing': 'ryw;desc=none;dur=0' },
        `${instance}:${body.length}`,
      );
    });
  });
}

describe('edge router', () => {
  const seen: Seen[] = [];
  const apps: http.Server[] = [];
  const nodes: { instance: string; region: string; url: string }[] = [];
  let edge: Edge;

  beforeAll(async () => {
    for (const region of ['fra', 'ewr', 'syd']) {
      const server = standIn(`${region}-1`, region, seen);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      apps.push(server);
      nodes.push({ instance: `${region}-1`, region, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    }
    edge = await startEdge({ nodes: () => nodes, primaryRegion: 'fra', mainPort: 0, regionPorts: { fra: 0, ewr: 0, syd: 0 } });
  });
  afterAll(async () => {
    await edge?.close();
    for (const app of apps) app.close();
  });
  beforeEach(() => {
    seen.length = 0;
  });

  it('sends a region port to that region, and the main port by fly-prefer-region, else to the primary', async () => {
    expect(await (await fetch(`${edge.regionUrls.syd}/`)).text()).toBe('syd-1:0');
    expect(await (await fetch(`${edge.mainUrl}/`)).text()).toBe('fra-1:0');
    expect(await (await fetch(`${edge.mainUrl}/`, { headers: { 'fly-prefer-region': 'ewr' } })).text()).toBe('ewr-1:0');
    expect(await (await fetch(`${edge.mainUrl}/`, { headers: { 'fly-prefer-region': 'mars' } })).text()).toBe('fra-1:0');
    expect(seen.map((s) => s.flyRegion)).toEqual(['syd', 'fra', 'ewr', 'fra']);
  });

  it('replays a write answered with fly-replay to the named instance, body and all, and tells it where it came from', async () => {
    const before = Date.now() * 1000;
    const res = await fetch(`${edge.regionUrls.ewr}/new`, { method: 'POST', body: 'title=hello&content=world' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('fra-1:25');
    expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(res.headers.get('server-timing')).toMatch(/^ryw;desc=none;dur=0, edge;desc="ewr-1>fra-1";dur=[\d.]+$/);
    expect(seen.map((s) => [s.instance, s.method, s.body])).toEqual([
      ['ewr-1', 'POST', 'title=hello&content=world'],
      ['fra-1', 'POST', 'title=hello&content=world'],
    ]);
    const src = seen[1]!.replaySrc!;
    expect(src).toMatch(/^instance=ewr-1;region=ewr;t=\d+$/);
    const t = Number(/t=(\d+)/.exec(src)![1]);
    expect(t).toBeGreaterThanOrEqual(before - 1000);
    expect(t).toBeLessThanOrEqual(Date.now() * 1000 + 1000);
  });

  it('replays to a region and passes state= along in fly-replay-src', async () => {
    const res = await fetch(`${edge.regionUrls.ewr}/to-syd`);
    expect(await res.text()).toBe('syd-1:0');
    expect(seen[1]!.replaySrc).toMatch(/^instance=ewr-1;region=ewr;t=\d+;state=from-test$/);
  });

  it('ignores a fly-replay-src sent by the client (it would suppress replays)', async () => {
    await fetch(`${edge.regionUrls.syd}/`, { headers: { 'fly-replay-src': 'instance=fra-1;region=fra;t=1' } });
    expect(seen[0]!.replaySrc).toBeUndefined();
  });

  it('buffers bodies up to 1 MiB for replay and answers 413 beyond, without bothering the app', async () => {
    const max = 'x'.repeat(DEFAULT_MAX_BODY_BYTES);
    const ok = await fetch(`${edge.regionUrls.ewr}/new`, { method: 'POST', body: max });
    expect(await ok.text()).toBe(`fra-1:${DEFAULT_MAX_BODY_BYTES}`);
    seen.length = 0;
    const tooBig = await fetch(`${edge.regionUrls.ewr}/new`, { method: 'POST', body: `${max}y` });
    expect(tooBig.status).toBe(413);
    expect(seen).toEqual([]);
  });

  it('gives up with 508 after a bounded number of replays', async () => {
    const res = await fetch(`${edge.regionUrls.ewr}/loop`);
    expect(res.status).toBe(508);
    expect(seen).toHaveLength(DEFAULT_MAX_REPLAYS + 1);
  });

  it('answers 502 when fly-replay names no known node', async () => {
    const res = await fetch(`${edge.regionUrls.ewr}/nowhere`);
    expect(res.status).toBe(502);
    expect(await res.text()).toContain('mars-1');
  });

  it('serves a live status page and its JSON', async () => {
    const page = await fetch(`${edge.mainUrl}/_cluster`);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('/_cluster/status.json');
    const status = (await (await fetch(`${edge.regionUrls.syd}/_cluster/status.json`)).json()) as {
      nodes: { region: string; role: string; behindTx: number | null; edgeUrl: string }[];
    };
    expect(status.nodes.map((n) => [n.region, n.role, n.behindTx])).toEqual([
      ['fra', 'primary', 0],
      ['ewr', 'replica', 2],
      ['syd', 'replica', 2],
    ]);
    expect(status.nodes[1]!.edgeUrl).toBe(edge.regionUrls.ewr);
    expect(seen.every((s) => s.url === '/healthz')).toBe(true);
  });
});

describe('edge router, a region with two instances', () => {
  const seen: Seen[] = [];
  const apps: http.Server[] = [];
  /** fra-1 and fra-2 in fra (fra-2 is the primary now, as after a failover), syd-1 in syd. */
  const nodes: { instance: string; region: string; url: string; live: boolean }[] = [];
  let edge: Edge;

  beforeAll(async () => {
    for (const [instance, region] of [
      ['fra-1', 'fra'],
      ['fra-2', 'fra'],
      ['syd-1', 'syd'],
    ] as const) {
      const server = http.createServer((req, res) => {
        seen.push({ instance, method: req.method!, url: req.url!, body: '', replaySrc: undefined, flyRegion: undefined });
        req.resume();
        // A replica names the primary it follows (fra-2) as an app does from LiteFS's .primary.
        if (req.method !== 'GET' && instance !== 'fra-2') {
          res.writeHead(409, { 'fly-replay': 'instance=fra-2' });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(instance);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      apps.push(server);
      nodes.push({ instance, region, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, live: true });
    }
    edge = await startEdge({ nodes: () => nodes, primaryRegion: 'fra', mainPort: 0, regionPorts: { fra: 0, syd: 0 } });
  });
  afterAll(async () => {
    await edge?.close();
    for (const app of apps) app.close();
  });
  beforeEach(() => {
    seen.length = 0;
    for (const node of nodes) node.live = true;
  });

  it("spreads a region's users over its live instances", async () => {
    const served = new Set<string>();
    for (let i = 0; i < 40; i++) served.add(await (await fetch(`${edge.regionUrls.fra}/`)).text());
    expect([...served].sort()).toEqual(['fra-1', 'fra-2']);
  });

  it('sends nobody to an instance that is down, and says so when the region has none left', async () => {
    nodes[0]!.live = false; // fra-1 killed
    for (let i = 0; i < 10; i++) expect(await (await fetch(`${edge.regionUrls.fra}/`)).text()).toBe('fra-2');
    nodes[1]!.live = false;
    const none = await fetch(`${edge.regionUrls.fra}/`);
    expect(none.status).toBe(502);
    expect(await none.text()).toBe('edge: no live node in region fra\n');
    expect(seen.filter((s) => s.instance !== 'syd-1')).toHaveLength(10);
  });

  it('replays a write to exactly the instance named, whichever is primary, and never to another one when it is down', async () => {
    const write = await fetch(`${edge.regionUrls.syd}/new`, { method: 'POST', body: 'x' });
    expect(await write.text()).toBe('fra-2');
    expect(write.headers.get('server-timing')).toMatch(/edge;desc="syd-1>fra-2"/);
    nodes[1]!.live = false; // the primary it names is down: fra-1 is up, but a write must not land there
    seen.length = 0;
    const refused = await fetch(`${edge.regionUrls.syd}/new`, { method: 'POST', body: 'x' });
    // The primary just crashed and the replica still names it: try again, once a new one is elected.
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe(String(REPLAY_UNREACHABLE_RETRY_AFTER_S));
    expect(await refused.text()).toBe('edge: syd-1 asked to replay to instance=fra-2, which is down; try again in a moment\n');
    expect(seen.map((s) => s.instance)).toEqual(['syd-1']);
  });
});

describe('edge router, a replay whose target has just crashed', () => {
  const apps: http.Server[] = [];
  /** syd-1 names fra-1 as the primary; fra-1 is "up" as far as the edge knows, but its app refuses or resets connections. */
  const nodes: { instance: string; region: string; url: string }[] = [];
  let replicaHits = 0;
  let edge: Edge;
  let refusingUrl: string;
  let resettingUrl: string;

  const listen = async (server: http.Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    apps.push(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  beforeAll(async () => {
    const replica = http.createServer((req, res) => {
      replicaHits++;
      req.resume();
      res.writeHead(409, { 'fly-replay': 'instance=fra-1' });
      res.end();
    });
    // A crashed process: its port is free again, so connecting is refused.
    const gone = http.createServer();
    refusingUrl = await listen(gone);
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    // A process dying mid-request: the connection is reset.
    resettingUrl = await listen(http.createServer((req) => req.socket.resetAndDestroy()));
    nodes.push({ instance: 'syd-1', region: 'syd', url: await listen(replica) }, { instance: 'fra-1', region: 'fra', url: refusingUrl });
    edge = await startEdge({ nodes: () => nodes, primaryRegion: 'fra', mainPort: 0, regionPorts: { fra: 0, syd: 0 } });
  });
  afterAll(async () => {
    await edge?.close();
    for (const app of apps) app.close();
  });

  it.each([
    ['refused', () => refusingUrl, 'ECONNREFUSED'],
    ['reset', () => resettingUrl, 'ECONNRESET'],
  ])('answers 503 with Retry-After, not 502, when the connection is %s', async (_how, url, code) => {
    nodes[1]!.url = url();
    replicaHits = 0;
    const res = await fetch(`${edge.regionUrls.syd}/new`, { method: 'POST', body: 'title=t' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe(String(REPLAY_UNREACHABLE_RETRY_AFTER_S));
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toBe(`edge: fra-1 cannot be reached (${code}); try again in a moment\n`);
    expect(replicaHits).toBe(1);
  });

  it('still answers 502 when the instance a user was routed to first cannot be reached (that is no replay)', async () => {
    nodes[1]!.url = refusingUrl;
    const res = await fetch(`${edge.regionUrls.fra}/`);
    expect(res.status).toBe(502);
    expect(res.headers.get('retry-after')).toBeNull();
  });
});

describe('parseFlyReplay', () => {
  it.each([
    ['instance=fra-1', { instance: 'fra-1' }],
    ['instance=fra-1;state=ryw', { instance: 'fra-1', state: 'ryw' }],
    ['region=syd;elsewhere=true', { region: 'syd', elsewhere: true }],
    [' region = ewr , state = x ', { region: 'ewr', state: 'x' }],
  ])('%s', (value, target) => {
    expect(parseFlyReplay(value)).toEqual({ ok: true, target });
  });

  it('reads back what the app writes, and the app reads back what the edge writes (one codec)', () => {
    for (const target of [
      { instance: 'fra-1' },
      { instance: 'fra-1', state: 'ryw' },
      { region: 'syd' },
      { region: 'syd', elsewhere: true },
    ]) {
      expect(parseFlyReplay(formatFlyReplay(target))).toEqual({ ok: true, target });
    }
    const source = formatReplaySource({ instance: 'ewr-1', region: 'ewr', timeMicros: 1_700_000_000_000_000, state: 'ryw' });
    expect(source).toBe('instance=ewr-1;region=ewr;t=1700000000000000;state=ryw');
    expect(parseReplaySource(source)).toEqual({ instance: 'ewr-1', region: 'ewr', timeMicros: 1_700_000_000_000_000, state: 'ryw' });
  });

  it('refuses what it cannot honour', () => {
    expect(parseFlyReplay('state=x').ok).toBe(false);
    expect(parseFlyReplay('app=other;instance=a').ok).toBe(false);
  });
});
