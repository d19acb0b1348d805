/**
 * Durable acknowledgements (RYW_DURABILITY=standby): the primary answers a
 * write only once a standby has it. The standby is a real HTTP server on
 * 127.0.0.1 streaming LiteFS-shaped `/events` (test/support/fake-events.ts);
 * the test plays LiteFS: each commit moves the primary's pos file, and the
 * standby reports it applied, or stays silent (its link is stalled).
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { TOKEN_COOKIE, TOKEN_HEADER } from '../../src/ryw/index.js';
import { fakeEvents, type FakeEvents } from '../support/fake-events.js';
import { cookiePair, FakeLiteFS, serverTiming, TEST_PASSWORD } from '../support/fake-litefs.js';
import { formOf, openEdit, openForm, openPage, postForm, saveEdit, sessionOf, submitForm, type App } from '../support/forms.js';

/**
 * The apps' RYW_DURABILITY_WAIT_MS here. Generous next to STANDBY_DELAY_MS: a
 * standby that reports a commit after STANDBY_DELAY_MS must be heard within
 * it on a loaded CI machine (at 400 ms, one such write timed out in a run).
 */
const WAIT_MS = 800;
/** How long after a commit the healthy standby reports it: long enough to tell "waited" from "answered at once". */
const STANDBY_DELAY_MS = 150;
const UNCONFIRMED = 'saved on the primary but not yet confirmed elsewhere';
const article = { title: 'Kept through a failover', content: 'Every word of it.\n\nOn two machines before anyone is told.' };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * Until the primary follows the standby's stream again (a wait that timed out
 * dropped it as silent): a write sent again can then be confirmed.
 */
async function untilStandbyFollowed(blog: { ryw: { standbys(): { streaming: number } | null } }): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((blog.ryw.standbys()?.streaming !== 1 || standby.connected() !== 1) && Date.now() < deadline) await sleep(5);
  expect(blog.ryw.standbys()?.streaming).toBe(1);
  expect(standby.connected()).toBe(1);
}
const tx = (n: bigint) => n.toString(16).padStart(16, '0');
const unescapeHtml = (s: string) =>
  s.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&amp;', '&');

let fs: FakeLiteFS;
let standby: FakeEvents;
let marks: NodeJS.Timeout | undefined;
afterEach(async () => {
  clearInterval(marks);
  fs?.close();
  await standby?.close();
});

/** Whether the standby applies what the primary commits (false: its link is stalled). */
interface Link {
  up: boolean;
}

/**
 * The standby, as the test plays it: whose link is up reports a position
 * applied STANDBY_DELAY_MS after the primary committed it.
 */
function receiving(events: FakeEvents, link: Link): (position: bigint) => void {
  return (position) => {
    if (link.up) setTimeout(() => events.send(tx(position)), STANDBY_DELAY_MS);
  };
}

/**
 * LiteFS streams every commit, the durability marker's too (a bumped row in
 * durability_marks, committed when a write waits for a standby whose stream
 * just opened): the test, playing LiteFS, watches that row.
 */
function watchMarks(commit: () => void): void {
  let seen: number | null = null;
  marks = setInterval(() => {
    const db = new Database(fs.dbPath, { readonly: true });
    try {
      const row = db.prepare('SELECT marked FROM durability_marks').get() as { marked: number } | undefined;
      if (row && seen !== null && row.marked !== seen) commit();
      if (row) seen = row.marked;
    } catch {
      // Not migrated yet, or mid-write: the next look sees it.
    } finally {
      db.close();
    }
  }, 5);
}

async function primary(link: Link, env: Record<string, string> = {}, follows = 'fra-1', afterCommit?: () => void) {
  standby = await fakeEvents({ isPrimary: false, hostname: follows });
  fs = new FakeLiteFS({ role: 'primary', position: 1n });
  const receive = receiving(standby, link);
  // LiteFS on the primary: every commit moves the pos file by one, and is streamed to the standby.
  const onCommit = (position: bigint) => {
    receive(position);
    afterCommit?.();
  };
  const built = fs.app({
    region: 'fra',
    instance: 'fra-1',
    wrapStore: fs.committing(onCommit),
    env: { RYW_DURABILITY: 'standby', RYW_STANDBYS: standby.url.href.replace(/\/$/, ''), RYW_DURABILITY_WAIT_MS: String(WAIT_MS), ...env },
  });
  // The standby's stream is open before the first write (when it is followed at all).
  const followed = (env.RYW_DURABILITY ?? 'standby') === 'standby' && env.RYW_STANDBYS !== '';
  const deadline = Date.now() + 5_000;
  while (followed && standby.connected() === 0 && Date.now() < deadline) await sleep(5);
  expect(standby.connected()).toBe(followed ? 1 : 0);
  watchMarks(() => onCommit(fs.commit()));
  return built;
}

function countArticles(): number {
  const db = new Database(fs.dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM articles').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const hasToken = (res: request.Response) =>
  cookiePair(res.headers, TOKEN_COOKIE) !== undefined || res.headers[TOKEN_HEADER.toLowerCase()] !== undefined;
/** A metric's value from /metrics, summed over its labels (`labels`: only the series with exactly these, e.g. `{reason="timeout"}`). */
const metric = async (app: App, name: string, labels?: string) => {
  const text = (await request(app).get('/metrics').expect(200)).text;
  const series = text
    .split('\n')
    .filter((l) => (labels === undefined ? l.startsWith(`${name} `) || l.startsWith(`${name}{`) : l.startsWith(`${name}${labels} `)));
  return series.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
};

/** Publishes the article while no standby has it: 503, and the form it comes back with (its draft id kept), to send again. */
async function publishUnconfirmed(app: App) {
  const form = await openForm(app);
  const first = await submitForm(app, form, { ...article, _draft: form.draft }).expect(503);
  return formOf(first.text, form.cookie);
}

async function publishTimed(app: App, form: Awaited<ReturnType<typeof openForm>>) {
  const started = performance.now();
  const res = await submitForm(app, form, { ...article, _draft: form.draft });
  return { res, ms: performance.now() - started };
}

describe('publishing with RYW_DURABILITY=standby', () => {
  it('answers once the standby has the article: 303 with a token, after the standby reported it', async () => {
    const { app } = await primary({ up: true });
    const { res, ms } = await publishTimed(app, await openForm(app));
    expect(res.status).toBe(303);
    expect(hasToken(res)).toBe(true);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('issued');
    expect(String(res.headers['server-timing'])).toMatch(/durable;desc=confirmed;dur=\d+/);
    // Not before the standby had it, and not the whole budget either.
    expect(ms).toBeGreaterThanOrEqual(STANDBY_DELAY_MS - 10);
    expect(ms).toBeLessThan(WAIT_MS + 2_000);
    expect(await metric(app, 'ryw_durability_wait_seconds_count')).toBe(1);
    expect(await metric(app, 'ryw_durability_timeouts_total')).toBe(0);
    // What an operator looks at when writes are refused: is any standby following us?
    expect(await metric(app, 'ryw_standbys', '{state="known"}')).toBe(1);
    expect(await metric(app, 'ryw_standbys', '{state="streaming"}')).toBe(1);
  });

  it('with the standby silent: 503, Retry-After, the form with everything typed and why, and no token', async () => {
    const { app } = await primary({ up: false });
    const form = await openForm(app);
    const { res, ms } = await publishTimed(app, form);
    expect(res.status).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(ms).toBeGreaterThanOrEqual(WAIT_MS - 10);
    expect(ms).toBeLessThan(WAIT_MS + 3_000);
    expect(hasToken(res)).toBe(false);
    expect(String(res.headers['server-timing'])).toMatch(/durable;desc=timeout;dur=\d+/);
    const page = unescapeHtml(res.text);
    expect(page).toContain(UNCONFIRMED);
    expect(page).toContain(`value="${article.title}"`);
    expect(page).toContain(article.content);
    // The same draft: sending it again finds this article.
    expect(formOf(res.text, form.cookie).draft).toBe(form.draft);
    expect(await metric(app, 'ryw_durability_timeouts_total', '{reason="timeout"}')).toBe(1);
    expect(await metric(app, 'ryw_durability_timeouts_total')).toBe(1);
  });

  it('a JSON client gets 503 and the reason, no token', async () => {
    const { app } = await primary({ up: false });
    const form = await openForm(app);
    const res = await submitForm(app, form, { ...article, _draft: form.draft }).set('Accept', 'application/json');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error: 'unconfirmed' });
    expect(res.body.message).toContain(UNCONFIRMED);
    expect(hasToken(res)).toBe(false);
  });

  it('sent again once the standby caught up: the one article (303 to it, with a token), never a second', async () => {
    const link = { up: false };
    const { app, blog } = await primary(link);
    const again = await publishUnconfirmed(app);
    // The standby's link heals: it applies what it missed.
    link.up = true;
    standby.send(tx(fs.position()!));
    await untilStandbyFollowed(blog);
    const started = performance.now();
    const second = await submitForm(app, again, { ...article, _draft: again.draft }).expect(303);
    // Already on the standby: confirmed without waiting for anything new.
    expect(performance.now() - started).toBeLessThan(WAIT_MS);
    expect(hasToken(second)).toBe(true);
    expect(countArticles()).toBe(1);
    const page = await request(app)
      .get(second.headers.location as string)
      .expect(200);
    expect(unescapeHtml(page.text)).toContain(article.title);
  });

  it('sent again while the standby is still behind: 503 again, and still one article', async () => {
    const { app } = await primary({ up: false });
    const again = await publishUnconfirmed(app);
    await submitForm(app, again, { ...article, _draft: again.draft }).expect(503);
    expect(countArticles()).toBe(1);
    expect(await metric(app, 'ryw_durability_timeouts_total')).toBe(2);
  });

  it('a standby that follows another primary confirms nothing: 503', async () => {
    const { app } = await primary({ up: true }, {}, 'fra-0');
    const { res } = await publishTimed(app, await openForm(app));
    expect(res.status).toBe(503);
    expect(hasToken(res)).toBe(false);
  });

  it('sent again after the standby’s stream reopened (nothing new to report): confirmed, the one article', async () => {
    const link = { up: false };
    const { app, blog } = await primary(link);
    const again = await publishUnconfirmed(app);
    // The standby catches up, but its stream to us is lost meanwhile: when it
    // is back, LiteFS's init says whom it follows, not where it is.
    link.up = true;
    standby.dropClients();
    standby.send(tx(fs.position()!));
    await untilStandbyFollowed(blog);
    expect(standby.connected()).toBe(1);
    const second = await submitForm(app, again, { ...article, _draft: again.draft });
    expect(second.status).toBe(303);
    expect(hasToken(second)).toBe(true);
    expect(countArticles()).toBe(1);
  });

  it('a primary that lost the lease as it committed confirms nothing, though the standby reports the TXID: 503', async () => {
    const { app } = await primary({ up: true }, {}, 'fra-1', () => fs.setPrimary('fra-0'));
    const { res } = await publishTimed(app, await openForm(app));
    expect(res.status).toBe(503);
    expect(hasToken(res)).toBe(false);
    expect(String(res.headers['server-timing'])).toMatch(/durable;desc=not-primary/);
  });

  it('a write still waiting when the layer closes (shutdown) is told so, not timed out', async () => {
    const { app, blog } = await primary({ up: false });
    const form = await openForm(app);
    setTimeout(() => blog.ryw.close(), 100);
    const { res, ms } = await publishTimed(app, form);
    expect(res.status).toBe(503);
    expect(ms).toBeLessThan(WAIT_MS);
    expect(String(res.headers['server-timing'])).toMatch(/durable;desc=aborted/);
  });

  it('without RYW_STANDBYS a primary confirms nothing: 503 at once', async () => {
    const { app } = await primary({ up: true }, { RYW_STANDBYS: '' });
    const { res, ms } = await publishTimed(app, await openForm(app));
    expect(res.status).toBe(503);
    expect(ms).toBeLessThan(WAIT_MS);
    expect(hasToken(res)).toBe(false);
    // Told apart from a slow standby on /metrics: a configuration to fix, not a link.
    expect(await metric(app, 'ryw_durability_timeouts_total', '{reason="no-standbys"}')).toBe(1);
    expect(await metric(app, 'ryw_durability_timeouts_total', '{reason="timeout"}')).toBe(0);
  });

  it('with RYW_DURABILITY=local (the default) answers without asking the standby', async () => {
    const { app } = await primary({ up: false }, { RYW_DURABILITY: 'local' });
    expect((await request(app).get('/metrics').expect(200)).text).not.toMatch(/^ryw_standbys\{/m);
    const { res } = await publishTimed(app, await openForm(app));
    expect(res.status).toBe(303);
    expect(hasToken(res)).toBe(true);
  });
});

describe('editing and deleting with RYW_DURABILITY=standby', () => {
  async function published(app: App): Promise<number> {
    const form = await openForm(app);
    const res = await submitForm(app, form, { ...article, _draft: form.draft }).expect(303);
    return Number(/(\d+)$/.exec(res.headers.location as string)![1]);
  }

  it('an edit no standby confirmed: 503 with the text; sent again, saved once, never a 409', async () => {
    const link = { up: true };
    const { app, blog } = await primary(link);
    const id = await published(app);
    link.up = false;
    const edit = await openEdit(app, id);
    const changed = { title: 'Kept through a failover, edited', content: 'New words.' };
    const first = await saveEdit(app, edit, changed).expect(503);
    expect(hasToken(first)).toBe(false);
    expect(unescapeHtml(first.text)).toContain(UNCONFIRMED);
    expect(unescapeHtml(first.text)).toContain(changed.content);
    const again = formOf(first.text, edit.cookie);
    // The form now starts from the author's own save.
    expect(again.revision).toBe(2);
    link.up = true;
    standby.send(tx(fs.position()!));
    await untilStandbyFollowed(blog);
    const second = await saveEdit(app, again, changed).expect(303);
    expect(hasToken(second)).toBe(true);
    // The original form sent again (a browser's retry) is no conflict either.
    await saveEdit(app, edit, changed).expect(303);
    const db = new Database(fs.dbPath, { readonly: true });
    const row = db.prepare('SELECT revision, content FROM articles WHERE id = ?').get(id) as { revision: number; content: string };
    db.close();
    expect(row).toEqual({ revision: 2, content: changed.content });
  });

  it('an unconfirmed edit changed once more before sending again: saved on top of the author’s own, no 409', async () => {
    const { app } = await primary({ up: true });
    const id = await published(app);
    // The standby is gone altogether.
    await standby.close();
    const edit = await openEdit(app, id);
    const first = await saveEdit(app, edit, { title: article.title, content: 'First change.' }).expect(503);
    const again = formOf(first.text, edit.cookie);
    const second = await saveEdit(app, again, { title: article.title, content: 'Second change.' });
    // Still no standby: unconfirmed again, but saved, not refused as a conflict with their own save.
    expect(second.status).toBe(503);
    expect(unescapeHtml(second.text)).toContain(UNCONFIRMED);
    expect(formOf(second.text, edit.cookie).revision).toBe(3);
  });

  it('the page script’s edit (JSON) no standby confirmed: 503 naming the saved revision; changed and sent at it, no 409', async () => {
    const link = { up: true };
    const { app } = await primary(link);
    const id = await published(app);
    link.up = false;
    const edit = await openEdit(app, id);
    const first = await saveEdit(app, edit, { title: article.title, content: 'First change.' }).set('Accept', 'application/json');
    expect(first.status).toBe(503);
    expect(first.body).toMatchObject({ error: 'unconfirmed', revision: 2 });
    link.up = true;
    // The script sends its form again at the revision it was told, with one more change.
    const second = await saveEdit(app, { ...edit, revision: first.body.revision }, { title: article.title, content: 'Second change.' }).set(
      'Accept',
      'application/json',
    );
    expect(second.status).toBe(200);
  });

  it('a delete no standby confirmed: 503; pressed again once it caught up, done (303)', async () => {
    const link = { up: true };
    const { app, blog } = await primary(link);
    const id = await published(app);
    link.up = false;
    const session = sessionOf(app);
    const page = await openPage(app, `/articles/${id}/delete`, session);
    const post = () => postForm(app, `/articles/${id}/delete`, { ...page, cookie: `${page.cookie}; ${session}` }, { _revision: '1' });
    const first = await post().expect(503);
    expect(first.headers['retry-after']).toBeDefined();
    expect(first.text).toContain('deleted on the primary but not yet confirmed elsewhere');
    expect(hasToken(first)).toBe(false);
    link.up = true;
    standby.send(tx(fs.position()!));
    await untilStandbyFollowed(blog);
    const second = await post();
    expect(second.status, second.text.slice(0, 400)).toBe(303);
    expect(hasToken(second)).toBe(true);
  });
});

describe('signing in with RYW_DURABILITY=standby', () => {
  it('is never refused for want of a standby, but then carries no token', async () => {
    const { app } = await primary({ up: false });
    await fs.insertAuthor('Ada');
    const page = await openPage(app, '/signin');
    const started = performance.now();
    const res = await postForm(app, '/signin', page, { name: 'Ada', password: TEST_PASSWORD }).expect(303);
    // It asked the standby first (for the whole wait, since it is silent).
    expect(performance.now() - started).toBeGreaterThanOrEqual(WAIT_MS - 10);
    expect(cookiePair(res.headers, 'session')).toBeDefined();
    expect(hasToken(res)).toBe(false);
  });
});
