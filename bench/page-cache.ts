import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTxid } from '../src/ryw/position.js';
import { signToken, tokenPayload } from '../src/ryw/token.js';
import { fakeEvents, type FakeEvents } from '../test/support/fake-events.js';
import { BENCH_SECRET, FakeReplicaDir, startProcess, startReplicaApp, type AppProcess } from './support/app-process.js';
import { load, type LoadResult } from './support/load.js';
import { capturedPage, fixtureKey, MEMORY_SERVER_SCRIPT, type CapturedPage } from './support/memory-server.js';
import { metricValue, rawGet, scrape } from './support/raw-http.js';
import { median } from './support/stats.js';
import type { BenchMode } from './types.js';

/**
 * 8. The page cache against sending bytes from memory: a replica's pages
 * with a met token, served by the app with the page cache on and off, by
 * Express sending the very bytes the app sent (headers too) from memory, and
 * by bare `node:http` doing the same; and a 304 to `If-None-Match` against
 * Express (and `node:http`) answering a bare 304. All four servers run at
 * once, each its own process, measured in rotation round by round.
 *
 * The replica is a LiteFS-shaped directory with a LiteFS API of which only
 * `/events` speaks (as on Fly.io, where LITEFS_API is set): the app knows its
 * role and position from the stream, not from a file read per request.
 */

export const PAGE_CACHE_TARGETS = { page: 0.8, notModified: 0.9 } as const;
export const SERVERS = ['app, cache on', 'app, cache off', 'Express from memory', 'node:http from memory'] as const;
export type Server = (typeof SERVERS)[number];
const POSITION = 1_000n;
const ARTICLES = 60;
const ARTICLE_ID = 30;
const CONNECTIONS = 10;
/** What a browser asks for; the app answers brotli. */
const BROWSER_ENCODINGS = 'gzip, deflate, br, zstd';

export interface PageCacheCell {
  readonly server: Server;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** This server's throughput / Express-from-memory's in the same round, median over rounds. */
  readonly vsExpress: number;
  /** The same against bare node:http. */
  readonly vsNode: number;
}

export interface PageCacheRow {
  readonly request: string;
  readonly status: 200 | 304;
  /** Bytes of the body sent (compressed when asked). */
  readonly bytes: number;
  readonly target: number;
  readonly cells: readonly PageCacheCell[];
}

export interface PageCacheResult {
  readonly rounds: number;
  readonly durationS: number;
  readonly connections: number;
  readonly articles: number;
  /** Hits the cache-on app counted while measured, against the requests it answered. */
  readonly hits: number | null;
  readonly answered: number;
  readonly rows: readonly PageCacheRow[];
  /** Requests not measured, and why (e.g. no ETag from the app). */
  readonly notes: readonly string[];
}

interface RequestCase {
  readonly request: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly status: 200 | 304;
  /** For a conditional GET: the `If-None-Match` each server is sent (its own ETag). */
  readonly etags?: ReadonlyMap<Server, string>;
  readonly servers: readonly Server[];
}

const headersOf = (c: RequestCase, server: Server): Record<string, string> =>
  c.etags ? { ...c.headers, 'if-none-match': c.etags.get(server)! } : { ...c.headers };

export async function benchPageCache(mode: BenchMode): Promise<PageCacheResult> {
  const rounds = mode.quick ? 1 : 4;
  const durationS = mode.quick ? 1 : 3;
  const dir = new FakeReplicaDir(ARTICLES, POSITION);
  const scratch = mkdtempSync(join(tmpdir(), 'bench-page-cache-'));
  const servers = new Map<Server, AppProcess>();
  let events: FakeEvents | null = null;
  try {
    events = await fakeEvents({ isPrimary: false, hostname: 'fra-1' });
    const env = { LITEFS_API: events.url.href.replace(/\/$/, '') };
    servers.set('app, cache on', await startReplicaApp(dir, env));
    servers.set('app, cache off', await startReplicaApp(dir, { ...env, PAGE_CACHE_MB: '0' }));
    events.send(formatTxid(POSITION));
    const cookie = `ryw=${encodeURIComponent(signToken(tokenPayload(POSITION, Date.now()), [BENCH_SECRET]))}`;
    const on = servers.get('app, cache on')!;

    // The bytes the yardsticks send are the cache-on app's own, captured here (its second answer: a hit).
    const pages: Record<string, CapturedPage> = {};
    const capture = async (path: string, headers: Record<string, string>) => {
      await rawGet(`${on.url}${path}`, headers);
      const res = await rawGet(`${on.url}${path}`, headers);
      if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}`);
      const timing = String(res.headers['server-timing'] ?? '');
      if (!/ryw;desc=fresh/.test(timing)) throw new Error(`GET ${path} with a met token: Server-Timing ${timing}, expected fresh`);
      pages[fixtureKey(path, headers['accept-encoding'])] = capturedPage(res);
      return res;
    };
    const home = await capture('/', { cookie });
    const article = await capture(`/articles/${ARTICLE_ID}`, { cookie });
    const homeBr = await capture('/', { cookie, 'accept-encoding': BROWSER_ENCODINGS });
    const pagesFile = join(scratch, 'pages.json');
    writeFileSync(pagesFile, JSON.stringify(pages));
    const memoryServer = [process.execPath, '--import', 'tsx', MEMORY_SERVER_SCRIPT];
    servers.set('Express from memory', await startProcess(memoryServer, { MEMORY_SERVER: 'express', MEMORY_PAGES: pagesFile }));
    servers.set('node:http from memory', await startProcess(memoryServer, { MEMORY_SERVER: 'node', MEMORY_PAGES: pagesFile }));

    const notes: string[] = [];
    const all = [...SERVERS];
    const cases: RequestCase[] = [
      { request: 'GET / (token met)', path: '/', headers: { cookie }, status: 200, servers: all },
      {
        request: `GET /articles/${ARTICLE_ID} (token met)`,
        path: `/articles/${ARTICLE_ID}`,
        headers: { cookie },
        status: 200,
        servers: all,
      },
      {
        request: `GET / (token met), Accept-Encoding: ${BROWSER_ENCODINGS}`,
        path: '/',
        headers: { cookie, 'accept-encoding': BROWSER_ENCODINGS },
        status: 200,
        servers: all,
      },
    ];
    const bytes = new Map<string, number>([
      [cases[0]!.request, home.body.length],
      [cases[1]!.request, article.body.length],
      [cases[2]!.request, homeBr.body.length],
    ]);
    if (homeBr.headers['content-encoding'] === undefined)
      notes.push(`the app sent GET / uncompressed to Accept-Encoding: ${BROWSER_ENCODINGS}`);
    // Each app's own ETag (it names the process that sent the bytes); the yardsticks answer any If-None-Match with a bare 304.
    const etags = new Map<Server, string>();
    for (const server of ['app, cache on', 'app, cache off'] as const) {
      const url = `${servers.get(server)!.url}/`;
      const etag = (await rawGet(url, { cookie })).headers.etag;
      const check = etag ? await rawGet(url, { cookie, 'if-none-match': etag }) : null;
      if (etag && check?.status === 304) etags.set(server, etag);
      else notes.push(`${server}: ${etag ? `answered ${check?.status} to If-None-Match: ${etag}` : 'sent no ETag'}, so it has no 304 row`);
    }
    const anyEtag = etags.get('app, cache on') ?? etags.get('app, cache off') ?? '"none"';
    etags.set('Express from memory', anyEtag).set('node:http from memory', anyEtag);
    if (etags.has('app, cache on') || etags.has('app, cache off')) {
      cases.push({
        request: 'GET / (token met), If-None-Match → 304',
        path: '/',
        headers: { cookie },
        etags,
        status: 304,
        servers: SERVERS.filter((server) => etags.has(server)),
      });
      bytes.set(cases[3]!.request, 0);
    }

    // Warm every server (the JIT, SQLite's page cache) before anything counts; quick figures are not for comparison anyway.
    if (!mode.quick)
      for (const c of cases)
        for (const s of c.servers)
          await load({
            url: `${servers.get(s)!.url}${c.path}`,
            headers: headersOf(c, s),
            status: c.status,
            connections: CONNECTIONS,
            durationS: 1,
          });
    const hitsBefore = metricValue(await scrape(on.url), 'page_cache_hits_total');
    let answered = 0;
    const samples = new Map<string, LoadResult[]>();
    for (let round = 0; round < rounds; round++) {
      for (const c of cases) {
        // Rotate who goes first each round, so a trend in the machine's load favours no one.
        const order = c.servers.map((_, i) => c.servers[(i + round) % c.servers.length]!);
        for (const s of order) {
          const result = await load({
            url: `${servers.get(s)!.url}${c.path}`,
            headers: headersOf(c, s),
            status: c.status,
            connections: CONNECTIONS,
            durationS,
          });
          if (result.non2xx > 0 || result.errors > 0)
            throw new Error(`page-cache ${s}, ${c.request}: ${result.non2xx} answers not ${c.status}, ${result.errors} errors`);
          if (s === 'app, cache on') answered += result.latency.count;
          const key = `${s}|${c.request}`;
          samples.set(key, [...(samples.get(key) ?? []), result]);
          mode.log(
            `page-cache ${s}, ${c.request}, round ${round + 1}: ${Math.round(result.rps)} req/s, p50 ${result.latency.p50.toFixed(2)} ms, p99 ${result.latency.p99.toFixed(2)} ms`,
          );
        }
      }
    }
    const hitsAfter = metricValue(await scrape(on.url), 'page_cache_hits_total');
    // Figures of a cache that never hit would be the cache-off app's under another name.
    if (hitsBefore !== null && hitsAfter === hitsBefore)
      throw new Error('page-cache: the cache-on app answered every request without one hit');

    const rows = cases.map((c): PageCacheRow => {
      const express = samples.get(`Express from memory|${c.request}`)!;
      const node = samples.get(`node:http from memory|${c.request}`)!;
      const cells = c.servers.map((server): PageCacheCell => {
        const list = samples.get(`${server}|${c.request}`)!;
        return {
          server,
          rps: median(list.map((r) => r.rps)),
          p50: median(list.map((r) => r.latency.p50)),
          p99: median(list.map((r) => r.latency.p99)),
          // Ratios within a round (measured seconds apart), then the median over rounds: drift cancels.
          vsExpress: median(list.map((r, i) => r.rps / express[i]!.rps)),
          vsNode: median(list.map((r, i) => r.rps / node[i]!.rps)),
        };
      });
      const target = c.status === 304 ? PAGE_CACHE_TARGETS.notModified : PAGE_CACHE_TARGETS.page;
      return { request: c.request, status: c.status, bytes: bytes.get(c.request) ?? 0, target, cells };
    });
    return {
      rounds,
      durationS,
      connections: CONNECTIONS,
      articles: ARTICLES,
      hits: hitsBefore === null || hitsAfter === null ? null : hitsAfter - hitsBefore,
      answered,
      rows,
      notes,
    };
  } finally {
    for (const server of servers.values()) await server.stop();
    await events?.close();
    dir.remove();
    rmSync(scratch, { recursive: true, force: true });
  }
}
