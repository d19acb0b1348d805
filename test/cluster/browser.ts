/**
 * A user's browser, reduced to what the scenarios need: one cookie jar for
 * 127.0.0.1 (browsers do not separate cookies by port, so the per-region edge
 * ports share it, as they would for a real user), manual redirects, timings,
 * and the app's forms with their CSRF token.
 */

export interface Page {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** Wall-clock time from sending the request to having the whole body. */
  readonly ms: number;
  /** The app's read-your-writes decision, from `Server-Timing: ryw;desc=…`. */
  readonly decision: string | null;
  /** The instances the edge sent the request to, in order (from `Server-Timing: edge`). */
  readonly hops: readonly string[];
  /** When the response was complete (performance.now()). */
  readonly doneAt: number;
}

export class Browser {
  private readonly cookies = new Map<string, string>();

  async get(url: string, headers: Record<string, string> = {}): Promise<Page> {
    return this.request(url, { method: 'GET', headers });
  }

  async postForm(url: string, fields: Record<string, string>): Promise<Page> {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /**
   * Posts an article the way a person does: opens the form at `baseUrl`, then
   * submits it there. Returns the 303's target and the response.
   */
  async postArticle(baseUrl: string, title: string, content = `Text of ${title}, long enough to pass validation.`): Promise<{ location: string; page: Page }> {
    const form = await this.get(`${baseUrl}/new`);
    if (form.status !== 200) throw new Error(`GET /new answered ${form.status}: ${form.body.slice(0, 200)}`);
    const csrf = /name="_csrf"\s+value="([^"]+)"/.exec(form.body)?.[1] ?? /value="([^"]+)"\s+name="_csrf"/.exec(form.body)?.[1];
    if (!csrf) throw new Error('the form has no _csrf input');
    const page = await this.postForm(`${baseUrl}/new`, { title, content, _csrf: csrf });
    const location = page.headers.get('location');
    if (page.status !== 303 || !location) {
      throw new Error(`POST /new answered ${page.status} (expected 303): ${page.body.slice(0, 300)}`);
    }
    return { location, page };
  }

  hasCookie(name: string): boolean {
    return this.cookies.has(name);
  }

  private async request(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<Page> {
    const started = performance.now();
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const res = await fetch(url, {
      method: init.method,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(30_000),
      ...(init.body !== undefined ? { body: init.body } : {}),
    });
    const body = await res.text();
    const doneAt = performance.now();
    for (const cookie of res.headers.getSetCookie()) this.store(cookie);
    const timing = res.headers.get('server-timing') ?? '';
    return {
      status: res.status,
      headers: res.headers,
      body,
      ms: doneAt - started,
      decision: /(?:^|,\s*)ryw;desc=("?)([a-z]+)\1/.exec(timing)?.[2] ?? null,
      hops: (/(?:^|,\s*)edge;desc="([^"]*)"/.exec(timing)?.[1] ?? '').split('>').filter(Boolean).map((h) => h.split(':')[0]!),
      doneAt,
    };
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
