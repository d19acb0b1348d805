import { randomBytes } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { readCookie, type ImmediateRead, type Position, type ReplicaNode, type Role } from '../ryw/index.js';
import type { Site } from '../site.js';
import { SHARED_REVALIDATE } from './cache-control.js';
import { compressed, exactBuffer, MIN_COMPRESS_BYTES } from './compression.js';
import { CAUGHT_UP_COOKIE } from './notice.js';
import {
  etagOf,
  isSharedTiming,
  memoizedPreferredEncoding,
  noneMatch,
  pageKey,
  stateOf,
  type Encoding,
  type SharedTiming,
} from './page-cache-key.js';
import { ByteLru } from './page-cache-lru.js';
import { baseUrl } from './site.js';
import type { Render } from './views.js';

/** PAGE_CACHE_MB unset: room for a few thousand pages with their compressed copies. */
export const DEFAULT_PAGE_CACHE_MB = 32;
/** What an entry costs beyond its bodies: its key, header objects and the map's slot (counted, so that many tiny pages stay bounded). */
export const ENTRY_OVERHEAD_BYTES = 512;
/**
 * The only views that may be shared, and only as rendered for a visitor who
 * is not signed in, with no CSRF token and no notice of their own: the list,
 * a search and an article. A positive list: a new view is per visitor until
 * someone says otherwise here.
 */
export const SHAREABLE_VIEWS: ReadonlySet<string> = new Set(['home', 'search', 'article']);
/**
 * What a shared page varies by besides its URL: the coding, and the cookies
 * and token header that make another variant (signed in, a token to meet).
 */
export const SHARED_VARY = 'Accept-Encoding, Cookie, RYW-Token';

export interface PageCacheOptions {
  /** The bound (PAGE_CACHE_MB); 0 keeps nothing, while shared pages still get ETags, 304s and compression. */
  maxBytes: number;
  /**
   * Where the position comes from (in memory while LiteFS's event stream is
   * followed), and the checksum after it that names its lineage. A
   * replicated node that cannot name both now (no position yet; no checksum,
   * e.g. a replica not yet heard from its new primary, whose database a
   * snapshot may still replace: see LiteFSNode.checksumAt()) has nothing
   * cached or confirmed until it can.
   */
  node: Pick<ReplicaNode, 'position' | 'role' | 'checksumAt'>;
  /**
   * Moves on every commit this process makes (and, standalone, any other
   * process makes); null when the database cannot say now (standalone: the
   * file missing or busy): then nothing is cached or confirmed for that request.
   */
  generation: () => string | null;
  /** Links name the site's base (SITE_URL, or the request's own host): part of the key. */
  site: Site;
  /**
   * For answer(): the read-your-writes layer's decision for a bare request
   * (ReadYourWrites.immediate()), and the cookies that make a page one
   * visitor's (a session, a notice of their own): with any of them, the
   * request goes to the app, which looks. Without it, answer() answers nothing.
   */
  lane?: { immediate: (req: IncomingMessage) => ImmediateRead | null; visitorCookies: readonly string[] };
}

export interface PageCacheStats {
  hits: number;
  misses: number;
  /** Pushed out by the bound (`full`), or dropped because the state (position, checksum, generation) moved (`moved`). */
  evictions: { full: number; moved: number };
  bytes: number;
  entries: number;
  maxBytes: number;
}

export interface PageCache {
  /** Mount after readYourWrites() and sessionMiddleware(): every decision is made by then. */
  middleware: RequestHandler;
  /** Wraps the views' renderer: marks a response shareable when its page has nothing of one visitor's. */
  shareable(render: Render): Render;
  /** What it counted and holds now (a function: pass it on, e.g. to metrics.watchPageCache()). */
  stats: () => PageCacheStats;
  /**
   * Answers a hit before the app sees the request (the server's first
   * step), with the very bytes and headers the app's own hit would send;
   * false hands the request to the app. See answer() in createPageCache().
   */
  answer(req: IncomingMessage, res: ServerResponse): boolean;
}

/** Headers of an answer that are the connection's, the request's or the representation's own: never learnt for another answer. */
const OWN_HEADERS: ReadonlySet<string> = new Set([
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'set-cookie',
  'content-type',
  'content-length',
  'content-encoding',
  'etag',
  'vary',
  'server-timing',
]);

/** One coding of a page, with the headers it goes out with, built once. */
interface Representation {
  body: Buffer;
  ok: OutgoingHttpHeaders;
  notModified: OutgoingHttpHeaders;
}

interface CachedPage {
  key: string;
  bytes: number;
  reps: Partial<Record<Encoding, Representation>>;
  pending: Partial<Record<Encoding, Promise<Representation>>>;
  state: string;
  /** The epoch of `state` when the page was rendered: see etagOf(). */
  epoch: number;
  timing: SharedTiming;
  contentType: string;
}

/**
 * The rendered-page cache: a page that is the same for every visitor is
 * kept, in each coding asked for, until the node's position (its checksum,
 * the database's generation) moves, and answered from memory, or with 304 to a
 * matching `If-None-Match`. It runs after the read-your-writes decision, so
 * a reader whose token the node had not met has waited (or been replayed)
 * before anything here is looked up: a hit or a 304 is always of a state at
 * or past their token. See docs/decisions/0011-page-cache.md.
 *
 * @example
 * const pages = createPageCache({ maxBytes: 32 << 20, node: ryw.node, generation, site });
 * const render = pages.shareable(renderer);
 * app.use(ryw.middleware);
 * app.use(sessionMiddleware({ … }));
 * app.use(pages.middleware);
 */
export function createPageCache(options: PageCacheOptions): PageCache {
  const { node, generation, site } = options;
  const lru = new ByteLru<CachedPage>(options.maxBytes);
  const keeping = options.maxBytes > 0;
  const marked = new WeakSet<Response>();
  const encodingOf = memoizedPreferredEncoding();
  // This process's own: no restart or other instance confirms bytes it did not send.
  const boot = randomBytes(6).toString('base64url');
  // The state as last seen, and how many times it has changed (see etagOf()).
  let current = '';
  let epoch = 0;
  // The last state's parts: most requests find them unchanged, and build no string.
  let lastRole = '';
  let lastPosition: Position | null = null;
  let lastChecksum: string | null = null;
  let lastGeneration = '';
  // With SITE_URL the request plays no part in the base: computed once.
  const fixedBase = site.url === null ? null : baseUrl({} as Request, site);
  let hits = 0;
  let misses = 0;
  let moved = 0;
  // What the app sends around a cached page, by decision, as seen on its last hit (see answer()):
  // shared by every page of that decision, so nothing is held per page.
  const learnt: Partial<Record<SharedTiming, OutgoingHttpHeaders>> = {};

  /**
   * Looks at the state now: a new one (another position, checksum, role or
   * generation) empties the cache and starts an epoch, even when it is one
   * seen before, since its pages were dropped. False when it cannot be
   * named now: nothing is looked up, kept or confirmed for that request.
   */
  const observe = (role: Role): boolean => {
    const gen = generation();
    if (gen === null) return false;
    let position: Position | null = null;
    let checksum: string | null = null;
    if (role !== 'standalone') {
      position = node.position();
      if (position === null) return false;
      // A map lookup (LiteFSNode keeps the checksums of its lineage): cheap enough for every request.
      checksum = node.checksumAt?.(position) ?? null;
      if (checksum === null) return false;
    }
    if (role !== lastRole || position !== lastPosition || checksum !== lastChecksum || gen !== lastGeneration) {
      lastRole = role;
      lastPosition = position;
      lastChecksum = checksum;
      lastGeneration = gen;
      const named = stateOf(role, position, checksum, gen);
      if (named !== current) {
        // Its pages show what the database no longer holds; were it to come back, they are gone with their epoch.
        moved += lru.clear();
        current = named;
        epoch++;
      }
    }
    return true;
  };

  const representation = (page: CachedPage, body: Buffer, encoding: Encoding): Representation => {
    const etag = etagOf(page.state, page.epoch, page.timing, boot, encoding);
    // Names in lower case, as res.getHeaders() gives them: merged over the learnt ones (answer()), they replace, never repeat.
    const notModified: OutgoingHttpHeaders = { etag, vary: SHARED_VARY };
    // A `fresh` page: cacheControl() makes it private as the headers go out.
    if (page.timing === 'none') notModified['cache-control'] = SHARED_REVALIDATE;
    const ok: OutgoingHttpHeaders = { ...notModified, 'content-type': page.contentType, 'content-length': body.length };
    if (encoding !== 'identity') ok['content-encoding'] = encoding;
    return { body, ok, notModified };
  };

  /** The page in `encoding`, compressed once (off the event loop) and kept beside the others. */
  const inEncoding = (page: CachedPage, encoding: Exclude<Encoding, 'identity'>): Promise<Representation> => {
    const pending = page.pending[encoding];
    if (pending) return pending;
    const identity = page.reps.identity!;
    const made = compressed(identity.body, encoding, 'page').then(
      (body) => {
        const rep = body === null ? identity : representation(page, body, encoding);
        page.reps[encoding] = rep;
        if (rep !== identity) {
          page.bytes += body!.length;
          if (lru.peek(page.key) === page) lru.resized(page.key, body!.length);
        }
        return rep;
      },
      // Never expected; the page still goes out, as it is.
      () => identity,
    );
    page.pending[encoding] = made;
    return made;
  };

  const send = (req: Request, res: Response, rep: Representation, stored: CachedPage | null, hit: SharedTiming | null = null) => {
    if (res.writableEnded || res.destroyed) return;
    const inm = req.headers['if-none-match'];
    const notModified = inm !== undefined && noneMatch(inm, rep.ok.etag as string);
    if (notModified) res.writeHead(304, rep.notModified);
    else res.writeHead(200, rep.ok);
    // A cookie set as the headers went out (a token handed out by a listener
    // that runs after mayShare()) makes the page this reader's: not kept.
    if (stored !== null && res.hasHeader('Set-Cookie') && lru.peek(stored.key) === stored) lru.delete(stored.key);
    // A hit as the app answers it: what answer() is to send around the same pages.
    if (hit !== null && !res.hasHeader('Set-Cookie')) learn(hit, res);
    if (notModified || req.method === 'HEAD') res.end();
    else res.end(rep.body);
  };

  /**
   * Keeps what the app sent around a hit (everything but the page's own
   * headers), when it changed. These are set before the cache by middleware
   * that sets the same on every request (helmet's, Cache-Control by the
   * decision): a middleware mounted before the cache that set one of its
   * own per request (a request id) would have it listed in OWN_HEADERS.
   */
  const learn = (timing: SharedTiming, res: Response) => {
    const around: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(res.getHeaders())) if (!OWN_HEADERS.has(name) && value !== undefined) around[name] = value;
    const known = learnt[timing];
    if (known === undefined || !sameHeaders(known, around)) learnt[timing] = around;
  };

  /**
   * A hit costs what sending bytes costs only outside Express (its request
   * set-up, router and on-headers listeners cost more than the page: see
   * docs/benchmarks.md). So the server asks answer() first: a GET or HEAD
   * from a visitor with no session, that the read-your-writes layer would
   * serve at once (no token, or one met) and whose page is kept, is answered
   * from memory with the headers the app gave its last hit of that kind
   * (helmet's, Cache-Control), learnt as the app sends them. Anything
   * else, the first hit of a kind included, is the app's, which decides it again.
   */
  const answer = (req: IncomingMessage, res: ServerResponse): boolean => {
    const { lane } = options;
    if (!keeping || lane === undefined || lru.size === 0) return false;
    const { method } = req;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const cookies = req.headers.cookie;
    if (cookies !== undefined) for (const name of lane.visitorCookies) if (readCookie(cookies, name) !== undefined) return false;
    const read = lane.immediate(req);
    if (read === null) return false;
    const around = learnt[read.timing];
    if (around === undefined || !observe(read.role)) return false;
    // immediate() took only a plain path: `/…`, then the query if any.
    const url = req.url!;
    const q = url.indexOf('?');
    const key = pageKey(
      fixedBase ?? baseUrl(req, site),
      q === -1 ? url : url.slice(0, q),
      q === -1 ? null : parseQuery(url.slice(q + 1)),
      read.timing,
    );
    const page = lru.get(key);
    // Not kept, or not yet in this coding (the app compresses it, off the event loop).
    const rep = page?.reps[encodingOf(req.headers['accept-encoding'])];
    if (rep === undefined) return false;
    const inm = req.headers['if-none-match'];
    const notModified = inm !== undefined && noneMatch(inm, rep.ok.etag as string);
    // The learnt headers, then the page's own (of the same, lower-case, names where both set one).
    res.writeHead(notModified ? 304 : 200, { ...around, 'server-timing': read.serverTiming, ...(notModified ? rep.notModified : rep.ok) });
    // Counted once the answer is the lane's: a throw before this goes to the app, which counts it.
    hits++;
    read.served();
    if (notModified || method === 'HEAD') res.end();
    else res.end(rep.body);
    return true;
  };

  /**
   * Sends the page in the coding asked for; `stored`: the page this request
   * just rendered and kept. `next` takes what goes wrong once the answer
   * waits for a compression (a miss's own `next` has been called, and
   * Express's router goes on to the error handler from where it is).
   */
  const serve = (
    req: Request,
    res: Response,
    next: NextFunction,
    page: CachedPage,
    stored: CachedPage | null,
    hit: SharedTiming | null = null,
  ) => {
    const encoding = encodingOf(req.headers['accept-encoding']);
    const rep = page.reps[encoding];
    if (rep) return send(req, res, rep, stored, hit);
    inEncoding(page, encoding as Exclude<Encoding, 'identity'>)
      .then((made) => send(req, res, made, stored, hit))
      .catch((error: unknown) => {
        // Headers out already: the answer cannot become an error page; end it rather than leave it hanging.
        if (res.headersSent) res.destroy();
        else next(error);
      });
  };

  /** Whether the page just rendered is the same for every visitor of its variant, checked as it is sent. */
  const mayShare = (res: Response, timing: SharedTiming) =>
    marked.has(res) &&
    res.statusCode === 200 &&
    // Looked up and nobody: a page whose session lookup never ran is not everyone's either.
    res.locals.author === null &&
    res.locals.ryw?.timing === timing &&
    // A write the route committed gets a token as the headers go out: its answer is the writer's.
    res.locals.ryw.committed !== true &&
    res.locals.ryw.lostWrite !== true &&
    !res.hasHeader('Set-Cookie') &&
    !res.hasHeader('Cache-Control') &&
    !res.hasHeader('Content-Encoding') &&
    String(res.getHeader('Content-Type')).startsWith('text/html');

  const middleware: RequestHandler = function pageCacheMiddleware(req, res, next) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const timing = res.locals.ryw?.timing;
    // A decision that shows on the page as a notice (waited, stale, replayed…) is the reader's own.
    if (!isSharedTiming(timing)) return next();
    if ((res.locals.author ?? null) !== null || res.hasHeader('Set-Cookie')) return next();
    // The page a stale page reloads into says "caught up" to that reader alone (notice.ts).
    if ((req.cookies as Record<string, unknown> | undefined)?.[CAUGHT_UP_COOKIE] !== undefined) return next();
    if (res.locals.ryw?.lostWrite === true) return next();
    const role = res.locals.ryw?.served?.role ?? node.role().role;
    if (!observe(role)) return next();
    const state = current;
    const stateEpoch = epoch;
    const key = pageKey(fixedBase ?? baseUrl(req, site), req.path, req.originalUrl.includes('?') ? req.query : null, timing);
    const cached = keeping ? lru.get(key) : undefined;
    if (cached !== undefined) {
      hits++;
      return serve(req, res, next, cached, null, timing);
    }

    // A miss: the page is kept (and sent from here) only if its renderer marked it shareable.
    const original = res.send;
    res.send = function sendShareable(this: Response, body?: unknown) {
      res.send = original;
      if (typeof body !== 'string' || !mayShare(res, timing)) return original.call(this, body);
      misses++;
      // Of its own size: a slice of Buffer.from()'s shared pool would hold 8 KiB that the bound does not count.
      const identity = exactBuffer(body);
      const page: CachedPage = {
        key,
        bytes: identity.length + 2 * key.length + ENTRY_OVERHEAD_BYTES,
        reps: {},
        pending: {},
        state,
        epoch: stateEpoch,
        timing,
        contentType: String(res.getHeader('Content-Type')),
      };
      const rep = representation(page, identity, 'identity');
      page.reps.identity = rep;
      // Too small to gain from compression: every coding is the page as it is.
      if (identity.length < MIN_COMPRESS_BYTES) page.reps.br = page.reps.gzip = rep;
      // Rendered while the state moved on (a long search; a write landing mid-render): sent, not kept.
      const kept = keeping && observe(role) && epoch === stateEpoch && lru.set(key, page);
      serve(req, res, next, page, kept ? page : null);
      return this;
    } as Response['send'];
    next();
  };

  return {
    middleware,
    answer,
    shareable(render) {
      return (res, view, data = {}, status = 200) => {
        const shareable =
          status === 200 && SHAREABLE_VIEWS.has(view) && res.locals.author === null && data.csrfToken === undefined && !data.deleted;
        if (shareable) marked.add(res);
        else marked.delete(res);
        render(res, view, data, status);
      };
    },
    stats: () => ({
      hits,
      misses,
      evictions: { full: lru.evicted, moved },
      bytes: lru.bytes,
      entries: lru.size,
      maxBytes: options.maxBytes,
    }),
  };
}

function sameHeaders(a: OutgoingHttpHeaders, b: OutgoingHttpHeaders): boolean {
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  return names.every((name) => String(a[name]) === String(b[name]));
}
