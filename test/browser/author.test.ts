/**
 * The browser tier: what an author feels, in Debian's Chromium, against a
 * real LiteFS cluster (Toxiproxy on each replica's link, the edge routing
 * per region and honouring fly-replay). Regions: fra is the primary, syd
 * falls back by replaying to it, ewr by serving stale (marked). The primary
 * is fixed (a static lease): these tests stop it to see what an author sees
 * while it is down, which on a Consul lease would be a failover instead
 * (test/cluster/failover.test.ts).
 *
 * Writing takes a signed-in author: the first test sets the blog up through
 * `/setup` on the fresh cluster; the tests after it start signed in as that
 * author (the cookies of a sign-in through the pages).
 *
 * Every test saves screenshots to test-results/browser/. Bounds are generous
 * and sit far from what a broken app does (a lost article, a form emptied, a
 * notice that never goes, an old version after an edit).
 */
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SIGN_IN_REFUSED } from '../../src/http/auth.js';
import type { Cluster } from '../../tools/cluster/cluster.js';
import { Browser as HttpClient } from '../cluster/browser.js';
import { startTestCluster, WAIT_MS } from '../cluster/harness.js';
import { signIn, TEST_AUTHOR } from '../cluster/sign-in.js';
import {
  axeViolations,
  browserTierAvailability,
  cumulativeLayoutShift,
  DESKTOP,
  guardedContext,
  launchChromium,
  PHONE,
  rywDecision,
  screenshot,
  type AxeViolation,
  type GuardedContext,
  type StorageState,
} from './chromium.js';

const tier = browserTierAvailability();
const ARTICLE_PATH = /^\/articles\/\d+$/;
/** The blog's one author: the cluster tier's, so that its HTTP helper (sign-in.ts) signs in as the same. */
const AUTHOR = TEST_AUTHOR;
const LOOKS = [
  ['phone', PHONE, 'light'],
  ['phone', PHONE, 'dark'],
  ['desktop', DESKTOP, 'light'],
  ['desktop', DESKTOP, 'dark'],
] as const;

describe.runIf(!tier.run && process.env.CI === 'true')('browser tier prerequisites (CI)', () => {
  it('has Chromium and the cluster tools installed', () => {
    expect(tier.missing, 'apt-get install -y chromium and npm run setup:cluster must run before the tests in CI').toEqual([]);
  });
});

describe.skipIf(!tier.run)("the author's experience in a real browser, on a real cluster", () => {
  let cluster: Cluster;
  let browser: Browser;
  const contexts: GuardedContext[] = [];
  let counter = 0;
  /** A title no other test (or earlier run) shares. */
  const unique = (what: string): string => `${what} ${++counter}${Date.now().toString(36)}`;

  beforeAll(async () => {
    [cluster, browser] = await Promise.all([
      startTestCluster({ lease: 'static', nodeEnv: { ewr: { RYW_FALLBACK: 'stale' } } }),
      launchChromium(),
    ]);
  }, 120_000);

  afterEach(async () => {
    for (const { context } of contexts.splice(0)) await context.close().catch(() => {});
    await cluster.heal();
    await cluster.waitForSync(20_000);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  }, 60_000);

  /** The signed-in author's cookies: from test 0's setup, or (when it did not run) a sign-in through the pages. */
  let authorState: StorageState | undefined;
  const signedInState = async (): Promise<StorageState> => {
    if (authorState) return authorState;
    const guard = await guardedContext(browser);
    contexts.push(guard);
    const page = await guard.context.newPage();
    await signInThroughPages(page, cluster.edgeUrl());
    authorState = await guard.context.storageState();
    return authorState;
  };

  /** A new browser context (one user) and a page in it; `signedIn`: as the blog's author. */
  const newPage = async (
    options: Parameters<typeof guardedContext>[1] & { signedIn?: boolean } = {},
  ): Promise<{ page: Page; guard: GuardedContext }> => {
    const { signedIn, ...rest } = options;
    const guard = await guardedContext(browser, { ...rest, ...(signedIn ? { storageState: await signedInState() } : {}) });
    contexts.push(guard);
    return { page: await guard.context.newPage(), guard };
  };

  /** Signs in as AUTHOR the way a person does: `/setup` while the blog has no author, else the sign-in form. */
  const signInThroughPages = async (page: Page, edge: string): Promise<void> => {
    await page.goto(`${edge}/setup`);
    const setup = page.getByRole('button', { name: 'Create author and sign in' });
    await page.getByLabel('Name', { exact: true }).fill(AUTHOR.name);
    await page.getByLabel('Password', { exact: true }).fill(AUTHOR.password);
    const button = (await setup.count()) > 0 ? setup : page.getByRole('button', { name: 'Sign in', exact: true });
    await Promise.all([page.waitForURL((url) => !['/setup', '/signin'].includes(url.pathname)), button.click()]);
    expect(await signedInAs(page)).toBe(AUTHOR.name);
  };

  /** The name the nav says is signed in, or null for "Sign in". */
  const signedInAs = async (page: Page): Promise<string | null> => {
    const name = page.locator('nav .signed-in strong');
    return (await name.count()) > 0 ? name.innerText() : null;
  };

  /** axe, layout shift and a screenshot of the page as it is now: the violations, by the screenshot's name. */
  const look = async (page: Page, name: string): Promise<{ page: string; violations: AxeViolation[] }> => {
    await page.waitForLoadState('load');
    const shift = await cumulativeLayoutShift(page);
    expect(shift.value, `${name}: ${shift.moved}`).toBe(0);
    const violations = await axeViolations(page);
    await screenshot(page, name);
    return { page: name, violations };
  };

  const fillForm = async (page: Page, edge: string, title: string, content: string): Promise<void> => {
    await page.goto(`${edge}/new`);
    await page.getByLabel('Title', { exact: true }).fill(title);
    await page.getByLabel('Content', { exact: true }).fill(content);
  };

  /** Presses Publish; resolves with the publish answer and the page landed on. */
  const pressPublish = async (page: Page, press: 'click' | 'dblclick' = 'click'): Promise<{ post: Response; landed: Response }> => {
    const [post, landed] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.waitForResponse((r) => r.request().isNavigationRequest() && ARTICLE_PATH.test(new URL(r.url()).pathname)),
      page.getByRole('button', { name: 'Publish' })[press](),
    ]);
    // The response can arrive before the page commits to it: wait for the new document.
    await page.waitForURL((url) => ARTICLE_PATH.test(url.pathname));
    return { post, landed };
  };

  const publish = async (page: Page, edge: string, title: string, content: string): Promise<{ post: Response; landed: Response }> => {
    await fillForm(page, edge, title, content);
    return pressPublish(page);
  };

  const footer = (page: Page) => page.locator('footer.site').innerText();
  const mainTop = async (page: Page): Promise<number> => (await page.locator('main').boundingBox())!.y;

  it('0. on the fresh blog, an author near syd (lag on syd) sets it up through /setup and is signed in on the next page there; signing in through syd works alike', async () => {
    await cluster.lag('syd', 300); // below the budget: syd waits for the new session rather than replaying
    const syd = cluster.edgeUrl('syd');
    const found: { page: string; violations: AxeViolation[] }[] = [];
    const external: string[] = [];

    // /setup exists only while the blog has no author: every look at it first.
    for (const [device, viewport, colorScheme] of LOOKS) {
      const { page, guard } = await newPage({ viewport, colorScheme });
      await page.goto(`${syd}/setup`);
      expect(await page.locator('h1').innerText()).toBe('Set up your blog');
      found.push(await look(page, `0-setup-${device}-${colorScheme}`));
      external.push(...guard.external);
    }

    const { page, guard } = await newPage();
    await page.goto(`${syd}/setup`);
    await page.getByLabel('Name', { exact: true }).fill(AUTHOR.name);
    await page.getByLabel('Password', { exact: true }).fill(AUTHOR.password);
    const [post, landed] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.waitForResponse((r) => r.request().method() === 'GET' && r.request().isNavigationRequest() && new URL(r.url()).pathname === '/'),
      page.getByRole('button', { name: 'Create author and sign in' }).click(),
    ]);
    await page.waitForURL(`${syd}/`);
    expect(post.status()).toBe(303);
    expect((await post.allHeaders())['server-timing']).toContain('edge;desc="syd-1>fra-1"'); // a write: replayed to the primary
    // The very next page, on the replica, knows the new session: it waited for it if it had to, never "signed out".
    expect(landed.status()).toBe(200);
    expect(['waited', 'fresh']).toContain(rywDecision(await landed.allHeaders()));
    expect(await signedInAs(page)).toBe(AUTHOR.name);
    expect(await footer(page)).toMatch(/Served from region syd by instance syd-1 \(replica\)/);
    await screenshot(page, '0-signed-in-after-setup');
    authorState = await page.context().storageState();
    // The setup page is gone for good.
    await page.goto(`${syd}/setup`);
    expect(new URL(page.url()).pathname).not.toBe('/setup');
    external.push(...guard.external);

    // Signing in, through syd, from the form a signed-out author is sent to.
    for (const [device, viewport, colorScheme] of LOOKS) {
      const other = await newPage({ viewport, colorScheme });
      await other.page.goto(`${syd}/new`);
      expect(`${new URL(other.page.url()).pathname}${new URL(other.page.url()).search}`).toBe('/signin?next=%2Fnew');
      expect(await signedInAs(other.page)).toBeNull();
      found.push(await look(other.page, `0-signin-${device}-${colorScheme}`));
      // A wrong password: refused, the name kept, nothing said about which was wrong.
      await other.page.getByLabel('Name', { exact: true }).fill(AUTHOR.name);
      await other.page.getByLabel('Password', { exact: true }).fill(`${AUTHOR.password} but wrong`);
      const [refused] = await Promise.all([
        other.page.waitForResponse((r) => r.request().method() === 'POST'),
        other.page.getByRole('button', { name: 'Sign in', exact: true }).click(),
      ]);
      expect(refused.status()).toBe(401);
      await other.page.waitForLoadState('load');
      expect(await other.page.locator('.form-status .problem').innerText()).toBe(SIGN_IN_REFUSED);
      expect(await other.page.getByLabel('Name', { exact: true }).inputValue()).toBe(AUTHOR.name);
      found.push(await look(other.page, `0-signin-refused-${device}-${colorScheme}`));
      await other.page.getByLabel('Password', { exact: true }).fill(AUTHOR.password);
      const [, form] = await Promise.all([
        other.page.waitForResponse((r) => r.request().method() === 'POST'),
        other.page.waitForResponse((r) => r.request().method() === 'GET' && new URL(r.url()).pathname === '/new'),
        other.page.getByRole('button', { name: 'Sign in', exact: true }).click(),
      ]);
      await other.page.waitForURL(`${syd}/new`);
      expect(form.status()).toBe(200);
      expect(await signedInAs(other.page)).toBe(AUTHOR.name);
      expect(await other.page.getByRole('button', { name: 'Publish' }).isVisible()).toBe(true);
      expect(await footer(other.page)).toMatch(/Served from region syd by instance syd-1 \(replica\)/);
      external.push(...other.guard.external);
    }
    expect(found.filter((f) => f.violations.length > 0)).toEqual([]);
    expect(external).toEqual([]);
  }, 180_000);

  it('1. an author near syd publishes and lands on the article with its text, served in syd; the home page lists it', async () => {
    await cluster.lag('syd', 300); // below the 500 ms budget: syd waits rather than replays
    const { page, guard } = await newPage({ signedIn: true });
    const navigations: number[] = [];
    page.on('response', (r) => {
      if (r.request().isNavigationRequest()) navigations.push(r.status());
    });
    const title = unique('Posted near Sydney');
    const content = 'Replicas are close to readers.\n\nThe write went to Frankfurt; this page came from Sydney.';
    await fillForm(page, cluster.edgeUrl('syd'), title, content);
    await screenshot(page, '1-form-filled');
    const { post, landed } = await pressPublish(page);

    expect(post.status()).toBe(201);
    expect((await post.allHeaders())['server-timing']).toContain('edge;desc="syd-1>fra-1"'); // replayed to the primary
    expect(landed.status()).toBe(200);
    expect(new URL(page.url()).origin).toBe(cluster.edgeUrl('syd'));
    expect(await page.locator('h1').innerText()).toBe(title);
    expect(await page.locator('.content p').allInnerTexts()).toEqual(content.split('\n\n'));
    expect(await footer(page)).toMatch(/Served from region syd by instance syd-1 \(replica\)/);

    const decision = rywDecision(await landed.allHeaders());
    expect(['waited', 'fresh']).toContain(decision); // never replayed: 300 ms is within the budget
    expect(await page.locator('body').getAttribute('data-ryw')).toBe(decision);
    expect(await footer(page)).toContain(`read-your-writes: ${decision}`);
    if (decision === 'waited') {
      expect(await page.locator('.notice-waited').innerText()).toMatch(
        /^This page waited \d+ ms for your latest change to reach region syd\.$/,
      );
    } else {
      // A page that simply has the change says nothing about it.
      expect(await page.locator('.notice-slot').count()).toBe(0);
    }
    await screenshot(page, '1-article');

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Articles' }).click();
    await page.waitForURL(`${cluster.edgeUrl('syd')}/`);
    const listed = page.locator('ol.articles a', { hasText: title });
    expect(await listed.count()).toBe(1);
    expect(await listed.getAttribute('href')).toBe(new URL(landed.url()).pathname);
    await screenshot(page, '1-home');

    expect(navigations.filter((s) => s !== 200)).toEqual([]); // never a 404 on the way
    expect(guard.external).toEqual([]);
  }, 60_000);

  it('2. with the stale policy and lag above the budget, a polite notice says the change is on its way, and goes once ewr caught up', async () => {
    const lagMs = WAIT_MS * 8;
    await cluster.lag('ewr', lagMs);
    const { page, guard } = await newPage({ signedIn: true });
    const title = unique('Posted near Newark');
    const { landed } = await publish(page, cluster.edgeUrl('ewr'), title, 'Eventually here, and the page says so meanwhile.');

    expect(rywDecision(await landed.allHeaders())).toBe('stale');
    expect(await page.locator('body').getAttribute('data-ryw')).toBe('stale');
    const notice = page.locator('.notice-stale');
    expect(await notice.getAttribute('role')).toBe('status');
    expect(await notice.innerText()).toMatch(
      /^Your latest change is still on its way to this region \(ewr\), so this page may not show it yet\./,
    );
    expect(await page.locator('h1').innerText()).toBe('Not here yet');
    expect(await footer(page)).toMatch(/Served from region ewr by instance ewr-1 \(replica\)/);
    const shift = await cumulativeLayoutShift(page);
    expect(shift.value, shift.moved).toBe(0);
    const topWithNotice = await mainTop(page);
    await screenshot(page, '2-stale-notice');

    // The page checks by itself and reloads once ewr has the article: the lag is still injected.
    await page.locator('body:not([data-ryw="stale"])').waitFor({ timeout: lagMs + 15_000 });
    await page.waitForLoadState('load');
    expect(await page.locator('h1').innerText()).toBe(title);
    expect(await page.locator('.notice-stale').count()).toBe(0);
    // The page it reloaded into says the change arrived, in the slot the stale notice held.
    expect(await page.locator('.notice-caught-up').innerText()).toBe('Your latest change has reached region ewr: this page shows it now.');
    expect(await footer(page)).toMatch(/Served from region ewr by instance ewr-1 \(replica\)/);
    expect(await mainTop(page)).toBe(topWithNotice); // the notice went without moving the page
    expect(cluster.faults().ewr?.latencyMs).toBe(lagMs);
    await screenshot(page, '2-caught-up');
    expect(guard.external).toEqual([]);
  }, 60_000);

  it('3. with the primary down, Publish shows an error and keeps every word; once it is back, publishing creates exactly one article', async () => {
    const { page, guard } = await newPage({ signedIn: true });
    const syd = cluster.edgeUrl('syd');
    const title = unique('Written while Frankfurt was down — <naïve> & “quoted”');
    const content =
      '  Indented first line, kept.\n\nSecond paragraph with <b>markup</b>, ampersands & emoji-free unicode: Zürich, Łódź.\n\n\nLast line with trailing spaces   ';
    await fillForm(page, syd, title, content);

    await cluster.stopNode(cluster.primaryRegion);
    try {
      const [post] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.getByRole('button', { name: 'Publish' }).click(),
      ]);
      // No primary to take it (syd waited a moment for one, or the edge could not reach fra-1): 503 with Retry-After, nothing applied.
      expect(post.status()).toBe(503);
      expect(post.headers()['retry-after']).toMatch(/^\d+$/);
      const problem = page.locator('.form-status .problem');
      await problem.waitFor();
      // The app's answer (no primary to take it) or the script's own (no answer at all): either way nothing saved, nothing lost.
      expect(await problem.innerText()).toMatch(/(was not saved.*Nothing was lost: |Nothing was saved and )your text is still here/s);
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('form-status'); // announced and focused
      expect(page.url()).toBe(`${syd}/new`);
      expect(await page.getByLabel('Title', { exact: true }).inputValue()).toBe(title);
      expect(await page.getByLabel('Content', { exact: true }).inputValue()).toBe(content);
      await expect(page.getByRole('button', { name: 'Publish' }).isEnabled()).resolves.toBe(true);
      await screenshot(page, '3-primary-down');

      // Even a reload keeps the words: the draft (and its id) is kept in the tab.
      await page.reload();
      expect(await page.getByLabel('Title', { exact: true }).inputValue()).toBe(title);
      expect(await page.getByLabel('Content', { exact: true }).inputValue()).toBe(content);
      expect(await page.locator('.form-status .info').innerText()).toMatch(/restored/);
      await screenshot(page, '3-restored-after-reload');
    } finally {
      await cluster.startNode(cluster.primaryRegion);
    }

    // A double click: the second press must not make a second article.
    const { post, landed } = await pressPublish(page, 'dblclick');
    expect(post.status()).toBe(201);
    expect(landed.status()).toBe(200);
    expect(await page.locator('h1').innerText()).toBe(title);
    expect(await page.locator('.content').innerText()).toContain(
      'Second paragraph with <b>markup</b>, ampersands & emoji-free unicode: Zürich, Łódź.',
    );
    await screenshot(page, '3-published-after-recovery');

    // Counted on the primary (the main edge routes there): exactly one.
    await page.goto(`${cluster.edgeUrl()}/`);
    expect(await page.locator('ol.articles a').filter({ hasText: title }).count()).toBe(1);
    // And the draft was forgotten: a new form starts empty.
    await page.goto(`${syd}/new`);
    expect(await page.getByLabel('Title', { exact: true }).inputValue()).toBe('');
    expect(guard.external).toEqual([]);
  }, 90_000);

  it('4. search finds the new article, highlighted, in every region once caught up', async () => {
    const { page, guard } = await newPage({ signedIn: true });
    const word = `quokka${letters(8)}`;
    const title = `Meeting a ${word} on Rottnest`;
    const { landed } = await publish(page, cluster.edgeUrl('syd'), title, `The ${word} smiled for the camera, then left.`);
    const path = new URL(landed.url()).pathname;
    await cluster.waitForSync(20_000);

    for (const region of cluster.regions) {
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.request().isNavigationRequest()),
        page.goto(`${cluster.edgeUrl(region)}/?search=${word}`),
      ]);
      expect(res.status()).toBe(200);
      expect(rywDecision(await res.allHeaders())).toBe('fresh'); // caught up: answered in its own region
      const hits = page.locator('ol.results > li');
      expect(await hits.count()).toBe(1);
      expect(await hits.locator('a').getAttribute('href')).toBe(path);
      const marks = await hits.locator('mark').allInnerTexts();
      expect(marks.length).toBeGreaterThanOrEqual(2); // in the title and in the snippet
      expect(marks.every((m) => m.toLowerCase() === word)).toBe(true);
      expect(await footer(page)).toContain(`Served from region ${region}`);
      await screenshot(page, `4-search-${region}`);
    }
    expect(guard.external).toEqual([]);
  }, 60_000);

  it('5. the cluster status page shows the injected lag, a replica falling behind, and positions converging', async () => {
    const { page } = await newPage();
    await page.goto(`${cluster.edgeUrl()}/_cluster`);
    const lagMs = 6_000;
    await cluster.lag('syd', lagMs);
    // Columns: region, instance, role, lease, position, behind, LiteFS .lag, injected, …
    const cells = (region: string) => page.locator(`tr[data-region="${region}"] td`);
    await cells('syd')
      .nth(7)
      .filter({ hasText: `lag ${lagMs} ms` })
      .waitFor();

    const writer = new HttpClient();
    await signIn(writer, cluster.edgeUrl());
    await writer.postArticle(cluster.edgeUrl(), unique('Status page write'));
    await page.waitForFunction(
      () => /^[1-9]\d* tx$/.test(document.querySelector('tr[data-region="syd"] td:nth-child(6)')?.textContent ?? ''),
      null,
      {
        timeout: lagMs,
      },
    );
    await screenshot(page, '5-lagging');

    await cluster.heal('syd');
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('#nodes tr')];
        const positions = new Set(rows.map((r) => r.querySelector('td:nth-child(5)')?.textContent));
        return (
          rows.length === 3 &&
          positions.size === 1 &&
          !positions.has('?') &&
          rows.every(
            (r) => r.querySelector('td:nth-child(6)')?.textContent === '0 tx' && r.querySelector('td:nth-child(8)')?.textContent === 'none',
          )
        );
      },
      null,
      { timeout: 20_000 },
    );
    await screenshot(page, '5-converged');
    expect(await axeViolations(page)).toEqual([]);
  }, 60_000);

  it('6. the pages pass axe, load nothing from elsewhere, and keep their layout, on a phone and a desktop, light and dark', async () => {
    // ewr far behind: every page there is stale for an author who just wrote.
    await cluster.lag('ewr', 60_000);
    const found: { page: string; violations: AxeViolation[] }[] = [];
    const external: string[] = [];
    for (const [device, viewport] of [
      ['phone', PHONE],
      ['desktop', DESKTOP],
    ] as const) {
      for (const colorScheme of ['light', 'dark'] as const) {
        const shot = (name: string) => `6-${name}-${device}-${colorScheme}`;
        const { page, guard } = await newPage({ viewport, colorScheme, signedIn: true });
        const check = async (name: string): Promise<void> => {
          await page.waitForLoadState('load');
          const shift = await cumulativeLayoutShift(page);
          expect(shift.value, `${shot(name)}: ${shift.moved}`).toBe(0);
          found.push({ page: shot(name), violations: await axeViolations(page) });
          await screenshot(page, shot(name));
        };
        const syd = cluster.edgeUrl('syd');
        await page.goto(`${syd}/`);
        await check('home');
        await page.goto(`${syd}/new`);
        await page.getByRole('button', { name: 'Publish' }).click(); // empty: errors on both fields
        await page.locator('#title-error').waitFor();
        expect(await page.getByLabel('Title', { exact: true }).getAttribute('aria-invalid')).toBe('true');
        await check('form-errors');
        const { landed } = await publish(
          page,
          syd,
          unique(`Looks on a ${device}`),
          'Paragraph one.\n\nParagraph two is a little longer, to wrap on a phone and show the measure of a line.',
        );
        await check('article');
        await page.goto(`${syd}/?search=paragraph`);
        await check('search');
        await page.goto(`${syd}/articles/999999`);
        await check('not-found');

        // The notice: none on a page that simply has the author's articles
        // (syd); ewr, 60 s behind, has not, and says so in a slot drawn with
        // the page (test 2 shows it keeps its room when it changes).
        await page.goto(`${syd}/`);
        expect(await page.locator('.notice-slot').count()).toBe(0);
        const topNone = await mainTop(page);
        await publish(page, cluster.edgeUrl('ewr'), unique('Stale on a ' + device), 'Still on its way.');
        expect(await page.locator('body').getAttribute('data-ryw')).toBe('stale');
        await check('stale-notice');
        await page.goto(`${cluster.edgeUrl('ewr')}/`);
        expect(await page.locator('.notice-stale').isVisible()).toBe(true);
        expect(await mainTop(page), `${device}: the stale notice takes its room in the page as first drawn`).toBeGreaterThan(topNone);
        // A reader who wrote nothing gets no slot at all.
        const reader = await newPage({ viewport, colorScheme });
        await reader.page.goto(`${cluster.edgeUrl('ewr')}/`);
        expect(await reader.page.locator('.notice-slot').count()).toBe(0);
        expect(landed.status()).toBe(200);
        external.push(...guard.external, ...reader.guard.external);
      }
    }
    expect(found.filter((f) => f.violations.length > 0)).toEqual([]);
    expect(external).toEqual([]);
  }, 180_000);

  it('7. the form works from the keyboard alone, with labels and a visible focus', async () => {
    const { page } = await newPage({ signedIn: true });
    await page.goto(`${cluster.edgeUrl('syd')}/new`);
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        const style = el ? getComputedStyle(el) : null;
        return {
          id: el?.id ?? '',
          tag: el?.tagName ?? '',
          text: el?.textContent?.trim() ?? '',
          outline: style ? `${style.outlineStyle} ${style.outlineWidth}` : '',
        };
      });

    await page.keyboard.press('Tab');
    const skip = await focused();
    expect(skip.text).toBe('Skip to content');
    expect(skip.outline).toMatch(/^solid [1-9]/);
    expect((await page.locator('a.skip').boundingBox())!.x).toBeGreaterThanOrEqual(0); // on screen when focused
    await screenshot(page, '7-skip-link-focused');

    let tabs = 0;
    while ((await focused()).id !== 'title' && tabs++ < 15) await page.keyboard.press('Tab');
    const title = await focused();
    expect(title.id).toBe('title');
    expect(title.outline).toMatch(/^solid [1-9]/);
    const name = unique('Typed with the keyboard');
    await page.keyboard.type(name);
    await page.keyboard.press('Tab');
    expect((await focused()).id).toBe('content');
    await page.keyboard.type('No mouse was used.');
    await page.keyboard.press('Tab');
    const button = await focused();
    expect(button.text).toBe('Publish');
    expect(button.outline).toMatch(/^solid [1-9]/);
    await screenshot(page, '7-publish-focused');
    await page.keyboard.press('Enter');
    await page.waitForURL((url) => ARTICLE_PATH.test(url.pathname));
    expect(await page.locator('h1').innerText()).toBe(name);
  }, 60_000);

  it('8. without JavaScript the form still publishes (a plain POST and a 303) and lands on the article', async () => {
    await cluster.lag('syd', 300);
    const { page, guard } = await newPage({ javaScriptEnabled: false, signedIn: true });
    const title = unique('Published without JavaScript');
    await fillForm(page, cluster.edgeUrl('syd'), title, 'Forms are enough.');
    const [post] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Publish' }).click(),
    ]);
    expect(post.status()).toBe(303);
    await page.waitForURL((url) => ARTICLE_PATH.test(url.pathname));
    expect(await page.locator('h1').innerText()).toBe(title);
    expect(await footer(page)).toMatch(/Served from region syd by instance syd-1 \(replica\)/);
    expect(guard.external).toEqual([]);
  }, 60_000);

  it('9. an author near syd (lag on syd) edits an article and sees the edit at once there; a concurrent edit is refused with both versions; a deleted article is never seen again', async () => {
    await cluster.lag('syd', 300); // below the budget: syd waits rather than replays, so each page comes from syd
    const syd = cluster.edgeUrl('syd');
    const { page, guard } = await newPage({ signedIn: true });
    const title = unique('Written near Sydney');
    const { landed } = await publish(page, syd, title, 'The first version.');
    const path = new URL(landed.url()).pathname;
    const id = path.split('/').pop()!;
    // Each change below is checked on its own: syd has everything before it (the lag stays).
    await cluster.waitForSync(20_000);

    // Edit, from the article's own page.
    await page.goto(`${syd}${path}`);
    await page.getByRole('link', { name: 'Edit', exact: true }).click();
    await page.waitForURL(`${syd}${path}/edit`);
    expect(await page.getByLabel('Title', { exact: true }).inputValue()).toBe(title);
    expect(await page.locator('input[name="_revision"]').inputValue()).toBe('1');
    const edited = unique('Edited near Sydney');
    await page.getByLabel('Title', { exact: true }).fill(edited);
    await page.getByLabel('Content', { exact: true }).fill('The **second** version.\n\nWith a second paragraph.');
    await screenshot(page, '9-edit-form');
    const [post, shown] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.waitForResponse((r) => r.request().isNavigationRequest() && new URL(r.url()).pathname === path),
      page.getByRole('button', { name: 'Save changes' }).click(),
    ]);
    await page.waitForURL(`${syd}${path}`);
    expect(post.status()).toBe(200); // the form's script asked for JSON
    expect((await post.allHeaders())['server-timing']).toContain('edge;desc="syd-1>fra-1"');
    expect(shown.status()).toBe(200);
    expect(['waited', 'fresh']).toContain(rywDecision(await shown.allHeaders())); // at once, on syd: never the old version
    expect(await page.locator('h1').innerText()).toBe(edited);
    expect(await page.locator('.content strong').innerText()).toBe('second');
    expect(await footer(page)).toMatch(/Served from region syd by instance syd-1 \(replica\)/);
    await screenshot(page, '9-edited');
    await page.reload();
    expect(await page.locator('h1').innerText()).toBe(edited);
    await page.goto(`${syd}/`);
    expect(await page.locator('ol.articles a', { hasText: edited }).count()).toBe(1);
    expect(await page.locator('ol.articles a', { hasText: title }).count()).toBe(0);

    // Two tabs edit at once: the second save is refused (409) with both versions on the page, nothing lost.
    const mine = page;
    const theirs = await page.context().newPage();
    await mine.goto(`${syd}${path}/edit`);
    await theirs.goto(`${syd}${path}/edit`);
    const theirTitle = unique('Saved in the other tab');
    await theirs.getByLabel('Title', { exact: true }).fill(theirTitle);
    await Promise.all([theirs.waitForURL(`${syd}${path}`), theirs.getByRole('button', { name: 'Save changes' }).click()]);
    const myTitle = unique('Saved in this tab');
    await mine.getByLabel('Title', { exact: true }).fill(myTitle);
    await mine.getByLabel('Content', { exact: true }).fill('Mine, typed while the other tab saved.');
    const [conflict] = await Promise.all([
      mine.waitForResponse((r) => r.request().method() === 'POST'),
      mine.getByRole('button', { name: 'Save changes' }).click(),
    ]);
    expect(conflict.status()).toBe(409);
    await mine.locator('section.conflict').waitFor();
    expect(mine.url()).toBe(`${syd}${path}/edit`); // the form stayed
    expect(await mine.locator('.form-status .problem').innerText()).toMatch(/Someone saved a new version.*your changes were not saved/s);
    expect(await mine.locator('.conflict .theirs-title').innerText()).toBe(theirTitle);
    expect(await mine.getByLabel('Title', { exact: true }).inputValue()).toBe(myTitle);
    expect(await mine.getByLabel('Content', { exact: true }).inputValue()).toBe('Mine, typed while the other tab saved.');
    await screenshot(mine, '9-conflict');
    // Saving again, knowingly over their version, goes through.
    await Promise.all([mine.waitForURL(`${syd}${path}`), mine.getByRole('button', { name: 'Save changes' }).click()]);
    expect(await mine.locator('h1').innerText()).toBe(myTitle);
    await theirs.close();
    await cluster.waitForSync(20_000);

    // Delete, from the article's page, after its confirmation.
    await mine.goto(`${syd}${path}`);
    await mine.getByRole('link', { name: 'Delete', exact: true }).click();
    await mine.waitForURL(`${syd}${path}/delete`);
    expect(await mine.locator('main strong').first().innerText()).toBe(myTitle);
    await screenshot(mine, '9-delete-confirm');
    const [deleted, home] = await Promise.all([
      mine.waitForResponse((r) => r.request().method() === 'POST'),
      mine.waitForResponse((r) => r.request().method() === 'GET' && new URL(r.url()).searchParams.get('deleted') === id),
      mine.getByRole('button', { name: 'Delete the article' }).click(),
    ]);
    expect(deleted.status()).toBe(303);
    expect(home.status()).toBe(200);
    expect(['waited', 'fresh']).toContain(rywDecision(await home.allHeaders()));
    expect(await mine.locator('main .info').innerText()).toBe('The article was deleted.');
    expect(await mine.locator('ol.articles a', { hasText: myTitle }).count()).toBe(0);
    expect(await footer(mine)).toMatch(/Served from region syd by instance syd-1 \(replica\)/);
    await screenshot(mine, '9-deleted');
    // From now on, on syd: 410 every time, from the first moment (the lag is still injected).
    for (let i = 0; i < 5; i++) {
      const gone = await mine.goto(`${syd}${path}`);
      expect(gone!.status()).toBe(410);
      expect(await mine.locator('h1').innerText()).toBe('This article was deleted');
      expect(await footer(mine)).toMatch(/Served from region syd by instance syd-1 \(replica\)/);
    }
    expect(cluster.faults().syd?.latencyMs).toBe(300);
    await screenshot(mine, '9-gone');
    expect(guard.external).toEqual([]);
  }, 90_000);

  it('10. the edit, delete, conflict and deleted pages pass axe and keep their layout, on a phone and a desktop, light and dark, through syd with lag', async () => {
    await cluster.lag('syd', 300);
    const syd = cluster.edgeUrl('syd');
    const found: { page: string; violations: AxeViolation[] }[] = [];
    const external: string[] = [];
    for (const [device, viewport, colorScheme] of LOOKS) {
      const shot = (name: string) => `10-${name}-${device}-${colorScheme}`;
      const { page, guard } = await newPage({ viewport, colorScheme, signedIn: true });
      const { landed } = await publish(
        page,
        syd,
        unique(`Edited on a ${device}`),
        'Paragraph one.\n\nParagraph two, a little longer, to wrap on a phone.',
      );
      const path = new URL(landed.url()).pathname;
      await page.goto(`${syd}${path}/edit`);
      found.push(await look(page, shot('edit')));

      // The conflict page as the server draws it: a plain POST answered 409, the form's
      // script kept away (not JavaScript itself, which axe needs to run).
      const plain = await newPage({ viewport, colorScheme, signedIn: true });
      await plain.page.route('**/static/app.js', (route) => route.abort());
      await plain.page.goto(`${syd}${path}/edit`);
      await page.getByLabel('Title', { exact: true }).fill(unique('Saved first'));
      await Promise.all([page.waitForURL(`${syd}${path}`), page.getByRole('button', { name: 'Save changes' }).click()]);
      await plain.page.getByLabel('Content', { exact: true }).fill('Saved second, from an older form.');
      const [refused] = await Promise.all([
        plain.page.waitForResponse((r) => r.request().method() === 'POST'),
        plain.page.getByRole('button', { name: 'Save changes' }).click(),
      ]);
      expect(refused.status()).toBe(409);
      await plain.page.locator('section.conflict').waitFor();
      found.push(await look(plain.page, shot('conflict')));

      await page.goto(`${syd}${path}/delete`);
      found.push(await look(page, shot('delete-confirm')));
      await Promise.all([
        page.waitForURL((url) => url.searchParams.has('deleted')),
        page.getByRole('button', { name: 'Delete the article' }).click(),
      ]);
      found.push(await look(page, shot('deleted')));
      const gone = await page.goto(`${syd}${path}`);
      expect(gone!.status()).toBe(410);
      found.push(await look(page, shot('gone')));
      external.push(...guard.external, ...plain.guard.external);
    }
    expect(found.filter((f) => f.violations.length > 0)).toEqual([]);
    expect(external).toEqual([]);
  }, 180_000);
});

/** `n` random lowercase letters: a word the search index treats as one token. */
function letters(n: number): string {
  return Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join('');
}
