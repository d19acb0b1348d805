/**
 * One user's browser as the checker drives it: a cookie jar (the `ryw` token
 * and the CSRF cookie), manual redirects, and what each answer says about how
 * it was served. Only ever talks to the cluster's own 127.0.0.1 addresses.
 */

/** Longest any single request may take before it counts as failed (and the run goes on). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface Answer {
  readonly status: number | null;
  readonly error?: string;
  readonly headers: Headers | null;
  readonly body: string;
  readonly sentAt: number;
  readonly doneAt: number;
  readonly decision: string | null;
  readonly waitMs: number | null;
  readonly hops: readonly string[];
  /** The page was served stale and says so (`<body data-ryw="stale">`); for a redirect, the app decided `stale`. */
  readonly stale: boolean;
}

const RYW_TIMING = /(?:^|,\s*)ryw;desc=("?)([a-z]+)\1;dur=(\d+(?:\.\d+)?)/;
const EDGE_TIMING = /(?:^|,\s*)edge;desc="([^"]*)"/;

export class SessionClient {
  private readonly cookies = new Map<string, string>();

  constructor(
    /** Milliseconds since the run started: every time in the history is on this clock. */
    private readonly clock: () => number,
    private readonly timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ) {}

  get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.request(url, { method: 'GET', headers });
  }

  postForm(url: string, fields: Record<string, string>): Promise<Answer> {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }

  hasCookie(name: string): boolean {
    return this.cookies.has(name);
  }

  /** Drops one cookie, as if it had expired (a benchmark's author starting without an earlier token). */
  forget(name: string): void {
    this.cookies.delete(name);
  }

  private async request(url: string, init: { method: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const sentAt = this.clock();
    try {
      const res = await fetch(url, {
        method: init.method,
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(init.body !== undefined ? { body: init.body } : {}),
      });
      const body = await res.text();
      const doneAt = this.clock();
      for (const cookie of res.headers.getSetCookie()) this.store(cookie);
      const timing = res.headers.get('server-timing') ?? '';
      const ryw = RYW_TIMING.exec(timing);
      return {
        status: res.status,
        headers: res.headers,
        body,
        sentAt,
        doneAt,
        decision: ryw?.[2] ?? null,
        waitMs: ryw ? Number(ryw[3]) : null,
        hops: (EDGE_TIMING.exec(timing)?.[1] ?? '')
          .split('>')
          .filter(Boolean)
          .map((h) => h.split(':')[0]!),
        // A page says so in its body; a redirect has none to say it with, so the
        // app's decision speaks for it (the page it leads to is marked in turn).
        stale: /<body[^>]*\bdata-ryw="stale"/.test(body) || (res.status >= 300 && res.status < 400 && ryw?.[2] === 'stale'),
      };
    } catch (err) {
      return {
        status: null,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        headers: null,
        body: '',
        sentAt,
        doneAt: this.clock(),
        decision: null,
        waitMs: null,
        hops: [],
        stale: false,
      };
    }
  }

  private store(setCookie: string): void {
    const [pair, ...attributes] = setCookie.split(';');
    const eq = pair!.indexOf('=');
    if (eq <= 0) return;
    const name = pair!.slice(0, eq).trim();
    const value = pair!.slice(eq + 1).trim();
    const expired = attributes.some((a) => {
      const [k, v = ''] = a.trim().split('=');
      const key = k!.toLowerCase();
      return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) <= Date.now());
    });
    if (expired || value === '') this.cookies.delete(name);
    else this.cookies.set(name, value);
  }
}

/** The hidden inputs of the app's form (`_csrf`, the draft id, …), sent back as a browser would. */
export function hiddenFields(body: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [input] of body.matchAll(/<input\b[^>]*>/g)) {
    if (!/\btype="hidden"/.test(input)) continue;
    const name = /\bname="([^"]*)"/.exec(input)?.[1];
    const value = /\bvalue="([^"]*)"/.exec(input)?.[1];
    if (name !== undefined && value !== undefined) fields[name] = unescapeHtml(value);
  }
  return fields;
}

/** The article ids the home page lists, in order (only its article list, not the navigation). */
export function listedArticleIds(body: string): number[] {
  return listedArticles(body).map((a) => a.id);
}

/** The articles the home page lists, in order, with the titles it shows (unescaped). */
export function listedArticles(body: string): { id: number; title: string }[] {
  const list = /<ol class="articles">([\s\S]*?)<\/ol>/.exec(body)?.[1] ?? '';
  return [...list.matchAll(/<a\b[^>]*\bhref="\/articles\/(\d+)"[^>]*>([\s\S]*?)<\/a>/g)].map((m) => ({
    id: Number(m[1]),
    title: unescapeHtml(m[2]!),
  }));
}

/** The title an article page shows in its `<article><h1>`, unescaped; null when there is none. */
export function articleTitle(body: string): string | null {
  const raw = /<article>\s*<h1\b[^>]*>([\s\S]*?)<\/h1>/.exec(body)?.[1];
  return raw === undefined ? null : unescapeHtml(raw);
}

/** What the edit form holds: the title in its field and the revision it started from; null when the page has no such form. */
export function editFormOf(body: string): { title: string; revision: number | null } | null {
  const title = /<input\b[^>]*\bid="title"[^>]*>/.exec(body)?.[0];
  const value = title ? /\bvalue="([^"]*)"/.exec(title)?.[1] : undefined;
  if (value === undefined) return null;
  return { title: unescapeHtml(value), revision: revisionOf(body) };
}

/** What a delete confirmation asks about: the article's title and the revision it was shown at; null without the form. */
export function deleteFormOf(body: string): { title: string; revision: number | null } | null {
  if (!/<form\b[^>]*\baction="\/articles\/\d+\/delete"/.test(body)) return null;
  const raw = /<strong\b[^>]*>([\s\S]*?)<\/strong>/.exec(/<main\b[\s\S]*<\/main>/.exec(body)?.[0] ?? '')?.[1];
  return raw === undefined ? null : { title: unescapeHtml(raw), revision: revisionOf(body) };
}

function revisionOf(body: string): number | null {
  const value = hiddenFields(body)._revision;
  return value !== undefined && /^[1-9][0-9]*$/.test(value) ? Number(value) : null;
}

/**
 * Whether a page shows its reader signed in: its nav says "Signed in as";
 * signed out, it offers "Sign in". Null for an answer that says neither (no
 * answer, plain text, JSON, an error page whose session lookup failed).
 */
export function signedInOf(status: number | null, body: string): boolean | null {
  const nav = status === null ? null : /<nav aria-label="Main">([\s\S]*?)<\/nav>/.exec(body);
  if (!nav) return null;
  if (/class="signed-in"/.test(nav[1]!)) return true;
  return /<a href="\/signin">Sign in<\/a>/.test(nav[1]!) ? false : null;
}

/** Whether a `Location` sends the browser to sign in. */
export function isSignInLocation(location: string | null | undefined): boolean {
  return typeof location === 'string' && new URL(location, 'http://x').pathname === '/signin';
}

/** The id in a `Location: /articles/<id>`; null for anything else. */
export function articleIdFromLocation(location: string | null): number | null {
  if (!location) return null;
  const match = /^\/articles\/(\d+)$/.exec(new URL(location, 'http://x').pathname);
  return match ? Number(match[1]) : null;
}

function unescapeHtml(text: string): string {
  return text
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&#039;', "'")
    .replaceAll('&amp;', '&');
}
