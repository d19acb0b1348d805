/**
 * The read-your-writes scenarios of the cluster tier, written once against
 * the `Cluster` interface and run on every backend: real processes
 * (test/cluster/process.test.ts) and containers of the project's image
 * (test/containers/containers.test.ts). The app on real LiteFS, replicas
 * streaming through Toxiproxy, every request from the client's side through
 * the edge router (except scenario 6, which skips it on purpose). Real clocks,
 * generous but meaningful bounds: each bound sits well away from what a broken
 * app does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LINEAGE_MARGIN_MS } from '../../src/ryw/decide.js';
import type { Cluster } from '../../tools/cluster/cluster.js';
import { Browser } from './browser.js';
import { articlePath, WAIT_MS } from './harness.js';
import { signIn } from './sign-in.js';

/** How long a backend gets to start the whole cluster. */
export const CLUSTER_START_TIMEOUT_MS = 180_000;

/**
 * Defines the scenarios in a `describe` named after the backend. `start` must
 * give a fresh cluster whose apps run with `RYW_WAIT_MS=WAIT_MS` and
 * `RYW_FALLBACK=replay`, with the regions fra (primary), ewr and syd. On
 * either lease: none of these moves the primary (fra-1); on a Consul lease
 * fra-2 is one more replica, and a user near fra may land on it.
 */
export function defineClusterScenarios(name: string, start: () => Promise<Cluster>): void {
  describe(`read-your-writes on ${name}`, () => {
    let cluster: Cluster;
    /** Nodes restarted with other settings, put back after each test. */
    const restarted = new Set<string>();
    let counter = 0;
    const title = (what: string): string => `${what} ${++counter} ${Date.now().toString(36)}`;

    beforeAll(async () => {
      cluster = await start();
    }, CLUSTER_START_TIMEOUT_MS);

    afterEach(async () => {
      await cluster.heal();
      for (const region of restarted) await cluster.restartNode(region);
      restarted.clear();
      await cluster.waitForSync(15_000);
    }, 60_000);

    afterAll(async () => {
      await cluster?.stop();
    }, 60_000);

    /** An author, signed in near the primary before any fault is injected (signing in is a write). */
    const newAuthor = async (): Promise<Browser> => {
      const author = new Browser();
      await signIn(author, cluster.edgeUrl(cluster.primaryRegion));
      return author;
    };

    const restartWith = async (region: string, env: Record<string, string | undefined>): Promise<void> => {
      restarted.add(region);
      await cluster.restartNode(region, env);
    };

    it('1. an author near ewr posts: the write goes to the primary, the redirect lands on ewr, which shows the article', async () => {
      const author = await newAuthor();
      await cluster.lag('ewr', 150);
      const name = title('Posted near ewr');
      const { location, page: post } = await author.postArticle(cluster.edgeUrl('ewr'), name);
      expect(post.hops).toEqual(['ewr-1', 'fra-1']);
      expect(author.hasCookie('ryw')).toBe(true);

      const read = await author.get(`${cluster.edgeUrl('ewr')}${articlePath(location)}`);
      expect(read.status).toBe(200);
      expect(read.body).toContain(name);
      expect(read.hops).toEqual(['ewr-1']);
      expect(['waited', 'fresh']).toContain(read.decision);
      expect(read.ms).toBeLessThan(WAIT_MS);
    }, 30_000);

    it('2. with ewr lagging past the wait budget, the read is replayed to the primary; with fallback stale, ewr serves it marked stale', async () => {
      const lagMs = WAIT_MS * 4;
      const author = await newAuthor();
      await cluster.lag('ewr', lagMs);
      const name = title('Replayed read');
      const { location } = await author.postArticle(cluster.edgeUrl('ewr'), name);

      const read = await author.get(`${cluster.edgeUrl('ewr')}${articlePath(location)}`);
      expect(read.status).toBe(200);
      expect(read.body).toContain(name);
      expect(read.hops).toEqual(['ewr-1', 'fra-1']);
      expect(read.decision).toBe('replayed');
      // It waited for the budget, then gave up: it did not sit out the lag.
      expect(read.ms).toBeGreaterThanOrEqual(WAIT_MS - 20);
      expect(read.ms).toBeLessThan(lagMs);

      await restartWith('ewr', { RYW_FALLBACK: 'stale' }); // the lag stays: it lives in Toxiproxy
      const staleName = title('Stale read');
      const second = await author.postArticle(cluster.edgeUrl('ewr'), staleName);
      const stale = await author.get(`${cluster.edgeUrl('ewr')}/`);
      expect(stale.status).toBe(200);
      expect(stale.hops).toEqual(['ewr-1']);
      expect(stale.decision).toBe('stale');
      expect(stale.body).toMatch(/<body[^>]*data-ryw="stale"/);
      expect(stale.body).not.toContain(staleName); // served from ewr, which has not got it
      expect(stale.ms).toBeLessThan(lagMs);
      expect(second.page.hops).toEqual(['ewr-1', 'fra-1']);
    }, 90_000);

    it('3. syd cut off: token reads replay after the budget, writes still succeed; after heal syd catches up and serves fresh', async () => {
      const author = await newAuthor();
      await cluster.cut('syd');
      const name = title('Written while syd is cut off');
      const { location, page: post } = await author.postArticle(cluster.edgeUrl('syd'), name);
      expect(post.hops).toEqual(['syd-1', 'fra-1']);
      const primaryPos = await cluster.node('fra').position();
      // ewr, not cut off, has the write: the primary sent it out; syd still has not got it.
      await cluster.node('ewr').waitForPosition(primaryPos!.txid, 10_000);
      expect((await cluster.node('syd').position())!.txid).toBeLessThan(primaryPos!.txid);

      const during = await author.get(`${cluster.edgeUrl('syd')}${articlePath(location)}`);
      expect(during.status).toBe(200);
      expect(during.body).toContain(name);
      expect(during.hops).toEqual(['syd-1', 'fra-1']);
      expect(during.decision).toBe('replayed');
      // The whole budget, then the primary: not before it, and not stuck on the cut-off replica.
      expect(during.ms).toBeGreaterThanOrEqual(WAIT_MS - 20);
      expect(during.ms).toBeLessThan(WAIT_MS * 4);

      const another = await author.postArticle(cluster.edgeUrl('syd'), title('Second write while cut'));
      expect(another.page.status).toBe(303);

      await cluster.heal('syd');
      const target = (await cluster.node('fra').position())!;
      await cluster.node('syd').waitForPosition(target.txid, 10_000);
      const after = await author.get(`${cluster.edgeUrl('syd')}${articlePath(location)}`);
      expect(after.status).toBe(200);
      expect(after.body).toContain(name);
      expect(after.hops).toEqual(['syd-1']);
      expect(after.decision).toBe('fresh');
      expect(after.ms).toBeLessThan(WAIT_MS);
    }, 60_000);

    it('4. a reader with no token never waits, whatever the lag', async () => {
      const lagMs = WAIT_MS * 4;
      const author = await newAuthor();
      await cluster.lag('ewr', lagMs);
      const name = title('Not yet in ewr');
      const { location } = await author.postArticle(cluster.edgeUrl('fra'), name);

      const reader = new Browser();
      for (const path of ['/', articlePath(location), '/']) {
        const page = await reader.get(`${cluster.edgeUrl('ewr')}${path}`);
        expect(page.hops).toEqual(['ewr-1']);
        expect(page.decision).toBe('none');
        // Waiting at all would take the whole budget: the lag outlasts it.
        expect(page.ms).toBeLessThan(WAIT_MS - 100);
        expect(page.body).not.toContain(name);
      }
    }, 30_000);

    it('6. a write sent straight to a replica app (no router) gets 409 with fly-replay, not a read-only error', async () => {
      const direct = new Browser();
      const name = title('Straight to a replica');
      const form = await direct.get(`${cluster.appUrl('ewr')}/new`);
      const csrf = /name="_csrf"\s+value="([^"]+)"/.exec(form.body)?.[1] ?? '';
      const post = await direct.postForm(`${cluster.appUrl('ewr')}/new`, { title: name, content: `Text of ${name}.`, _csrf: csrf });
      expect(post.status).toBe(409);
      expect(post.headers.get('fly-replay')).toMatch(/(^|;)\s*instance=fra-1\s*(;|$)/);
      expect(post.body).not.toMatch(/disk I\/O|SQLITE_|readonly database|attempt to write/i);
      const home = await new Browser().get(`${cluster.edgeUrl('fra')}/`);
      expect(home.body).not.toContain(name);
    }, 30_000);

    describe('7. a replica app is woken by the position arriving', () => {
      const lagMs = 200;
      /** Tries at a read that meets ewr behind (see raced()). */
      const RACE_ATTEMPTS = 3;

      /**
       * Posts near fra, then reads near ewr with the token while watching
       * ewr's `-pos` file: returns how long after the position arrived the
       * read was answered.
       */
      const readRace = async (): Promise<{
        decision: string | null;
        sinceArrivalMs: number;
        totalMs: number;
        body: string;
        name: string;
      }> => {
        const author = await newAuthor();
        const name = title('Woken read');
        const { location } = await author.postArticle(cluster.edgeUrl('fra'), name);
        const target = (await cluster.node('fra').position())!.txid;
        const ewr = cluster.node('ewr');
        const arrival = ewr.waitForPosition(target, 10_000).then(() => performance.now());
        const read = await author.get(`${cluster.edgeUrl('ewr')}${articlePath(location)}`);
        const arrivedAt = await arrival;
        return {
          decision: read.decision,
          sinceArrivalMs: read.doneAt - arrivedAt,
          totalMs: read.ms,
          body: read.body,
          name,
        };
      };

      /**
       * readRace() until the read really met ewr behind (any decision but
       * `fresh`), at most RACE_ATTEMPTS times, with ewr's wake-up counts
       * from just before it. A busy machine can stall between the post and
       * the read for longer than the lag: then the position is there first,
       * the read is served fresh, and nothing was woken; that is no race,
       * not a wrong answer (the body still has to show the article).
       */
      const raced = async () => {
        const decisions: (string | null)[] = [];
        for (let attempt = 1; attempt <= RACE_ATTEMPTS; attempt++) {
          const before = await wakeups();
          const read = await readRace();
          if (read.decision !== 'fresh') return { before, read };
          expect(read.body).toContain(read.name);
          decisions.push(read.decision);
        }
        throw new Error(
          `the position reached ewr before the read ${RACE_ATTEMPTS} times out of ${RACE_ATTEMPTS} (${decisions.join(', ')}): no wake-up to see`,
        );
      };

      /** How many waiting requests ewr's app says were woken, by the event stream and by polling. */
      const wakeups = async (): Promise<{ events: number; poll: number }> => {
        const text = await (await fetch(`${cluster.appUrl('ewr')}/metrics`)).text();
        const count = (source: string): number => {
          const match = new RegExp(`ryw_wakeups_total\\{source="${source}"\\} (\\d+)`).exec(text);
          if (!match) throw new Error(`no ryw_wakeups_total{source="${source}"} in ewr's /metrics`);
          return Number(match[1]);
        };
        return { events: count('events'), poll: count('poll') };
      };

      it('with LiteFS /events, within a small margin of the position arriving', async () => {
        await cluster.lag('ewr', lagMs);
        const { before, read: race } = await raced();
        // Woken by the stream, not by the slow safety poll that runs beside it.
        expect(await wakeups(), `decided ${race.decision} in ${Math.round(race.totalMs)} ms`).toEqual({
          events: before.events + 1,
          poll: before.poll,
        });
        expect(race.decision).toBe('waited');
        expect(race.body).toContain(race.name);
        // It really waited for the lag (not served from a stale page) …
        expect(race.totalMs).toBeGreaterThanOrEqual(lagMs / 2);
        // … and answered promptly once the position was there.
        expect(race.sinceArrivalMs).toBeLessThan(150);
      }, 30_000);

      it('with LITEFS_API unset, by polling', async () => {
        await restartWith('ewr', { LITEFS_API: undefined });
        await cluster.lag('ewr', lagMs);
        const { before, read: race } = await raced();
        expect(await wakeups(), `decided ${race.decision} in ${Math.round(race.totalMs)} ms`).toEqual({
          events: before.events,
          poll: before.poll + 1,
        });
        expect(race.decision).toBe('waited');
        expect(race.body).toContain(race.name);
        expect(race.totalMs).toBeGreaterThanOrEqual(lagMs / 2);
        expect(race.sinceArrivalMs).toBeLessThan(WAIT_MS - lagMs);
      }, 60_000);
    });

    // Last: it replaces the primary's database.
    it('5. a token from an older lineage is dropped, not waited on', async () => {
      const author = await newAuthor();
      for (let i = 0; i < 3; i++) await author.postArticle(cluster.edgeUrl('ewr'), title('Old lineage'));
      const issuedBy = Date.now(); // the token was issued before this
      await cluster.waitForSync(10_000);
      const before = (await cluster.node('fra').position())!;

      await cluster.restartPrimaryWithFreshData();
      const after = await cluster.waitForSync(30_000);
      // The author's token names a TXID the new lineage has not reached: a
      // replica that trusted it would wait for the whole budget.
      expect(after.txid).toBeLessThan(before.txid);
      // ewr must have heard from the new primary more than the lineage margin
      // after the token was issued (its `.lag` says when it last did): that is
      // how a replica tells an older lineage from a write still on its way.
      // A restart faster than a heartbeat or two leaves it short of that.
      const ewr = cluster.node('ewr');
      const heardAfter = issuedBy + LINEAGE_MARGIN_MS + 100;
      for (let deadline = Date.now() + 10_000; Date.now() - ((await ewr.lagMs()) ?? Infinity) < heardAfter;) {
        if (Date.now() > deadline) throw new Error(`ewr has not heard from the new primary since ${new Date(heardAfter).toISOString()}`);
        await sleep(50);
      }

      // ewr has heard from the new primary long after the token was issued, so
      // it knows the token is of another lineage: dropped on the first read,
      // without a wait, and gone (cookie cleared) for the second.
      const first = await author.get(`${cluster.edgeUrl('ewr')}/`);
      const second = await author.get(`${cluster.edgeUrl('ewr')}/`);
      for (const page of [first, second]) expect(page.status).toBe(200);
      expect(first.decision).toBe('dropped');
      expect(second.decision).toBe('none');
      for (const page of [first, second]) expect(page.ms).toBeLessThan(WAIT_MS - 100);
    }, 90_000);
  });
}
