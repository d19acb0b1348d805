/**
 * The browser tier: what an author feels, in Debian's Chromium, against a
 * real LiteFS cluster (Toxiproxy on each replica's link, the edge routing
 * per region and honouring fly-replay). Regions: fra is the primary, syd
 * falls back by replaying to it, ewr by serving stale (marked).
 *
 * Every test saves screenshots to test-results/browser/. Bounds are generous
 * and sit far from what a broken app does (a lost article, a form emptied, a
 * notice that never goes).
 */
import type { Browser, Page, Response } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../../tools/cluster/cluster.js';
import { Browser as HttpClient } from '../cluster/browser.js';
import { startTestCluster, WAIT_MS } from '../cluster/harness.js';
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
} from './chromium.js';

const tier = browserTierAvailability();
const ARTICLE_PATH = /^\/articles\/\d+$/;

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
      startTestCluster({ nodeEnv: { ewr: { RYW_FALLBACK: 'stale' } } }),
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

  const newPage = async (options: Parameters<typeof guardedContext>[1] = {}): Promise<{ page: Page; guard: GuardedContext }> => {
    const guard = await guardedContext(browser, options);
    contexts.push(guard);
    return { page: await guard.context.newPage(), guard };
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

  it('1. an author near syd publishes and lands on the article with its text, served in syd; the home page lists it', async () => {
    await cluster.lag('syd', 300); // below the 500 ms budget: syd waits rather than replays
    const { page, guard } = await newPage();
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
      expect(await page.locator('.notice-waited').innerText()).toMatch(/^This page waited \d+ ms for your latest change to reach region syd\.$/);
    } else {
      expect(await page.locator('.notice-fresh').innerText()).toBe('This page includes your latest change.');
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
    const { page, guard } = await newPage();
    const title = unique('Posted near Newark');
    const { landed } = await publish(page, cluster.edgeUrl('ewr'), title, 'Eventually here, and the page says so meanwhile.');

    expect(rywDecision(await landed.allHeaders())).toBe('stale');
    expect(await page.locator('body').getAttribute('data-ryw')).toBe('stale');
    const notice = page.locator('.notice-stale');
    expect(await notice.getAttribute('role')).toBe('status');
    expect(await notice.innerText()).toMatch(/^Your latest change is still on its way to this region \(ewr\), so this page may not show it yet\./);
    expect(await page.locator('h1').innerText()).toBe('Not here yet');
    expect(await footer(page)).toMatch(/Served from region ewr by instance ewr-1 \(replica\)/);
    expect(await cumulativeLayoutShift(page)).toBe(0);
    const topWithNotice = await mainTop(page);
    await screenshot(page, '2-stale-notice');

    // The page checks by itself and reloads once ewr has the article: the lag is still injected.
    await page.locator('body:not([data-ryw="stale"])').waitFor({ timeout: lagMs + 15_000 });
    await page.waitForLoadState('load');
    expect(await page.locator('h1').innerText()).toBe(title);
    expect(await page.locator('.notice-stale').count()).toBe(0);
    expect(await page.locator('.notice-fresh').innerText()).toBe('This page includes your latest change.');
    expect(await footer(page)).toMatch(/Served from region ewr by instance ewr-1 \(replica\)/);
    expect(await mainTop(page)).toBe(topWithNotice); // the notice went without moving the page
    expect(cluster.faults().ewr?.latencyMs).toBe(lagMs);
    await screenshot(page, '2-caught-up');
    expect(guard.external).toEqual([]);
  }, 60_000);

  it('3. with the primary down, Publish shows an error and keeps every word; once it is back, publishing creates exactly one article', async () => {
    const { page, guard } = await newPage();
    const syd = cluster.edgeUrl('syd');
    const title = unique('Written while Frankfurt was down — <naïve> & “quoted”');
    const content = '  Indented first line, kept.\n\nSecond paragraph with <b>markup</b>, ampersands & emoji-free unicode: Zürich, Łódź.\n\n\nLast line with trailing spaces   ';
    await fillForm(page, syd, title, content);

    await cluster.stopNode(cluster.primaryRegion);
    try {
      const [post] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.getByRole('button', { name: 'Publish' }).click(),
      ]);
      expect(post.status()).toBe(502); // the edge could not reach fra-1
      const problem = page.locator('.form-status .problem');
      await problem.waitFor();
      expect(await problem.innerText()).toMatch(/was not published.*Nothing was lost: your text is still here/s);
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
    expect(await page.locator('.content').innerText()).toContain('Second paragraph with <b>markup</b>, ampersands & emoji-free unicode: Zürich, Łódź.');
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
    const { page, guard } = await newPage();
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
    const cells = (region: string) => page.locator(`tr[data-region="${region}"] td`);
    await cells('syd').nth(6).filter({ hasText: `lag ${lagMs} ms` }).waitFor();

    const writer = new HttpClient();
    await writer.postArticle(cluster.edgeUrl(), unique('Status page write'));
    await page.waitForFunction(() => /^[1-9]\d* tx$/.test(document.querySelector('tr[data-region="syd"] td:nth-child(5)')?.textContent ?? ''), null, {
      timeout: lagMs,
    });
    await screenshot(page, '5-lagging');

    await cluster.heal('syd');
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('#nodes tr')];
        const positions = new Set(rows.map((r) => r.querySelector('td:nth-child(4)')?.textContent));
        return (
          rows.length === 3 &&
          positions.size === 1 &&
          !positions.has('?') &&
          rows.every((r) => r.querySelector('td:nth-child(5)')?.textContent === '0 tx' && r.querySelector('td:nth-child(7)')?.textContent === 'none')
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
    for (const [device, viewport] of [['phone', PHONE], ['desktop', DESKTOP]] as const) {
      for (const colorScheme of ['light', 'dark'] as const) {
        const shot = (name: string) => `6-${name}-${device}-${colorScheme}`;
        const { page, guard } = await newPage({ viewport, colorScheme });
        const check = async (name: string): Promise<void> => {
          await page.waitForLoadState('load');
          found.push({ page: shot(name), violations: await axeViolations(page) });
          expect(await cumulativeLayoutShift(page), shot(name)).toBe(0);
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
        const { landed } = await publish(page, syd, unique(`Looks on a ${device}`), 'Paragraph one.\n\nParagraph two is a little longer, to wrap on a phone and show the measure of a line.');
        await check('article');
        await page.goto(`${syd}/?search=paragraph`);
        await check('search');
        await page.goto(`${syd}/articles/999999`);
        await check('not-found');

        // The notice slot: the same height whatever it says. syd has the
        // author's articles (fresh); ewr, 60 s behind, has not (stale).
        await page.goto(`${syd}/`);
        expect(await page.locator('.notice-fresh').isVisible()).toBe(true);
        const topFresh = await mainTop(page);
        await publish(page, cluster.edgeUrl('ewr'), unique('Stale on a ' + device), 'Still on its way.');
        expect(await page.locator('body').getAttribute('data-ryw')).toBe('stale');
        await check('stale-notice');
        await page.goto(`${cluster.edgeUrl('ewr')}/`);
        expect(await page.locator('.notice-stale').isVisible()).toBe(true);
        expect(await mainTop(page), `${device}: a stale notice must take the room of any other`).toBe(topFresh);
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
    const { page } = await newPage();
    await page.goto(`${cluster.edgeUrl('syd')}/new`);
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        const style = el ? getComputedStyle(el) : null;
        return { id: el?.id ?? '', tag: el?.tagName ?? '', text: el?.textContent?.trim() ?? '', outline: style ? `${style.outlineStyle} ${style.outlineWidth}` : '' };
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
    const { page, guard } = await newPage({ javaScriptEnabled: false });
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
});

/** `n` random lowercase letters: a word the search index treats as one token. */
function letters(n: number): string {
  return Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(Math.random() * 26))).join('');
}
