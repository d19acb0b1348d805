/**
 * Writing takes a signed-in author: this signs a scenario's browser in as
 * the cluster tier's author, creating it through `/setup` on a blog that has
 * none yet. A blog without sign-in (the form opens at once) needs nothing.
 */
import type { Browser } from './browser.js';

export const TEST_AUTHOR = { name: 'Cluster Tester', password: 'a long enough test password' };

const CSRF = /name="_csrf"\s+value="([^"]+)"/;

/** Signs `browser` in at `baseUrl` (an edge URL); resolves once `/new` opens. */
export async function signIn(browser: Browser, baseUrl: string): Promise<void> {
  const form = await browser.get(`${baseUrl}/new`);
  if (form.status === 200) return; // signed in already, or no sign-in at all
  const setup = await browser.get(`${baseUrl}/setup`);
  if (setup.status === 200 && CSRF.test(setup.body)) {
    const created = await browser.postForm(`${baseUrl}/setup`, { ...TEST_AUTHOR, _csrf: CSRF.exec(setup.body)![1]! });
    if (created.status === 303) return expectForm(browser, baseUrl);
    // 409: another browser created it first; sign in as it below.
  }
  const page = await browser.get(`${baseUrl}/signin?next=/new`);
  const csrf = CSRF.exec(page.body)?.[1];
  if (!csrf) throw new Error(`GET /signin answered ${page.status} without a form: ${page.body.slice(0, 200)}`);
  const answer = await browser.postForm(`${baseUrl}/signin`, { ...TEST_AUTHOR, next: '/new', _csrf: csrf });
  if (answer.status !== 303) throw new Error(`POST /signin answered ${answer.status}: ${answer.body.slice(0, 300)}`);
  await expectForm(browser, baseUrl);
}

async function expectForm(browser: Browser, baseUrl: string): Promise<void> {
  const form = await browser.get(`${baseUrl}/new`);
  if (form.status !== 200) throw new Error(`signed in, but GET /new answered ${form.status}`);
}
