/**
 * Writing takes a signed-in author. These sign a SessionClient in the way a
 * person does, through the pages: `/setup` creates the blog's first author
 * on a fresh database (and signs its browser in), `/signin` signs in as an
 * author that exists. Shared by the checker, the benchmarks and the tests.
 */
import { hiddenFields, type Answer, type SessionClient } from './session-client.js';

export interface AuthorCredentials {
  readonly name: string;
  readonly password: string;
}

/** The one author of a checker run or a benchmark's cluster (a fresh database each time). */
export const TOOLS_AUTHOR: AuthorCredentials = { name: 'Checker Author', password: 'a long enough password for the tools' };

/** One request of a sign-in, for a caller that records what it did. */
export interface SignInStep {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly answer: Answer;
}

export type SignInResult =
  | { readonly ok: true; readonly via: 'setup' | 'signin'; readonly steps: readonly SignInStep[] }
  | { readonly ok: false; readonly reason: string; readonly steps: readonly SignInStep[] };

/**
 * Signs `client` in at `baseUrl` (an edge or app URL). With `setup`, first
 * tries `/setup`: on a blog without an author it creates `author` and is
 * done; when the blog has one (GET redirects to `/signin`, or another client
 * won the race: 409) it signs in. Never throws for an HTTP answer: the
 * caller decides whether to retry.
 */
export async function signIn(
  client: SessionClient,
  baseUrl: string,
  author: AuthorCredentials,
  options: { setup?: boolean } = {},
): Promise<SignInResult> {
  const steps: SignInStep[] = [];
  const step = async (method: 'GET' | 'POST', path: string, fields?: Record<string, string>): Promise<Answer> => {
    const answer = method === 'GET' ? await client.get(`${baseUrl}${path}`) : await client.postForm(`${baseUrl}${path}`, fields ?? {});
    steps.push({ method, path, answer });
    return answer;
  };
  if (options.setup) {
    const page = await step('GET', '/setup');
    const fields = page.status === 200 ? hiddenFields(page.body) : {};
    if (fields._csrf !== undefined) {
      const created = await step('POST', '/setup', { ...fields, name: author.name, password: author.password });
      if (created.status === 303) return { ok: true, via: 'setup', steps };
      if (created.status !== 409) return { ok: false, reason: `POST /setup answered ${describe(created)}`, steps };
      // 409: the blog has its author (another client was first): sign in as it.
    } else if (page.status !== 303) {
      return { ok: false, reason: `GET /setup answered ${describe(page)}`, steps };
    }
  }
  const form = await step('GET', '/signin');
  // The sign-in page sends a signed-in reader on at once.
  if (form.status === 303) return { ok: true, via: 'signin', steps };
  const fields = form.status === 200 ? hiddenFields(form.body) : {};
  if (fields._csrf === undefined) return { ok: false, reason: `GET /signin answered ${describe(form)} without its form`, steps };
  const answer = await step('POST', '/signin', { ...fields, name: author.name, password: author.password });
  if (answer.status !== 303) return { ok: false, reason: `POST /signin answered ${describe(answer)}`, steps };
  return { ok: true, via: 'signin', steps };
}

/** signIn(), or an error naming what went wrong: for callers (benchmarks, tests) with no use for a client that is not signed in. */
export async function mustSignIn(
  client: SessionClient,
  baseUrl: string,
  author: AuthorCredentials = TOOLS_AUTHOR,
  options: { setup?: boolean } = { setup: true },
): Promise<void> {
  const result = await signIn(client, baseUrl, author, options);
  if (!result.ok) throw new Error(`signing in as ${JSON.stringify(author.name)} at ${baseUrl}: ${result.reason}`);
}

function describe(answer: Answer): string {
  if (answer.status === null) return `nothing (${answer.error ?? 'no answer'})`;
  const problem = /<p class="problem">([\s\S]*?)<\/p>/
    .exec(answer.body)?.[1]
    ?.replace(/<[^>]+>/g, '')
    .trim();
  return `${answer.status}${problem ? `: ${problem}` : ''}`;
}
