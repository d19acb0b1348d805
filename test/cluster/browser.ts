/**
 * A user's browser, reduced to what the scenarios need: one cookie jar for
 * 127.0.0.1 (browsers do not separate cookies by port, so the per-region edge
 * ports share it, as they would for a real user), manual redirects, timings,
 * and the app's forms with their CSRF token. The HTTP side is the checker's
 * SessionClient; this adds a wall-clock duration per request, throws where a
 * request fails outright, and posts articles the way a person does.
 */
import { SessionClient, type Answer } from '../../tools/checker/session-client.js';

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
  private readonly session = new SessionClient(() => performance.now());

  async get(url: string, headers: Record<string, string> = {}): Promise<Page> {
    return pageOf(url, await this.session.get(url, headers));
  }

  async postForm(url: string, fields: Record<string, string>): Promise<Page> {
    return pageOf(url, await this.session.postForm(url, fields));
  }

  /**
   * Posts an article the way a person does: opens the form at `baseUrl`, then
   * submits it there. Returns the 303's target and the response.
   */
  async postArticle(
    baseUrl: string,
    title: string,
    content = `Text of ${title}, long enough to pass validation.`,
  ): Promise<{ location: string; page: Page }> {
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
    return this.session.hasCookie(name);
  }
}

/** A scenario has no use for a request that got no answer at all: it fails there. */
function pageOf(url: string, answer: Answer): Page {
  if (answer.status === null || answer.headers === null) throw new Error(`${url}: ${answer.error ?? 'no answer'}`);
  return {
    status: answer.status,
    headers: answer.headers,
    body: answer.body,
    ms: answer.doneAt - answer.sentAt,
    decision: answer.decision,
    hops: answer.hops,
    doneAt: answer.doneAt,
  };
}
