/**
 * The primary moves: a real LiteFS cluster on a real Consul lease (fra-1 and
 * fra-2 candidates, ewr-1 and syd-1 replicas), crashed and handed off the way
 * production sees it, and a static lease that must not move. Every write
 * goes through the edge, as a user's does. Bounds come from the lease's own
 * settings (Consul expires a dead holder's session after twice its TTL).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../../tools/cluster/process-cluster-type.js';
import { callControl } from '../../tools/cluster/control-client.js';
import type { EdgeStatus } from '../../tools/edge/status.js';
import { Browser } from './browser.js';
import { articleTitle, hiddenFields as hiddenFieldsOf } from '../../tools/checker/session-client.js';
import { articlePath, clusterTierAvailability, startTestCluster, WAIT_MS } from './harness.js';
import { CLUSTER_START_TIMEOUT_MS } from './scenarios.js';
import { signIn } from './sign-in.js';

const tier = clusterTierAvailability();
const CLI = resolve('tools/cluster/cli.ts');

/** Runs `npm run cluster -- …` against the cluster's directory. */
function cli(cluster: ProcessCluster, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args, '--dir', cluster.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

/** Posts until one write is acknowledged (303) or `deadline` passes; every other answer is kept. */
async function writeUntilAcknowledged(author: Browser, url: string, title: string, deadline: number) {
  const failures: string[] = [];
  for (;;) {
    try {
      const { location, page } = await author.postArticle(url, title);
      return { location, page, at: performance.now(), failures };
    } catch (err) {
      failures.push(String(err).slice(0, 120));
      if (performance.now() > deadline)
        throw new Error(`no write acknowledged in time; answers: ${failures.slice(-3).join(' | ')}`, { cause: err });
      await sleep(50);
    }
  }
}

/**
 * Reads `path` with `reader`'s token straight on every live node: each must
 * honour the token (serve the page fresh, or after a wait shorter than the
 * budget), never drop it and never spend the whole budget on it (LiteFS
 * #430), and show `title`.
 */
async function expectTokenHonoured(cluster: ProcessCluster, reader: Browser, path: string, title: string): Promise<void> {
  const live = cluster.instances.filter((i) => cluster.node(i).live);
  expect(live.length).toBe(cluster.instances.length);
  for (const instance of live) {
    const page = await reader.get(`${cluster.appUrl(instance)}${path}`);
    const seen = { instance, status: page.status, decision: page.decision, title: articleTitle(page.body) };
    expect(seen).toEqual({ instance, status: 200, decision: expect.stringMatching(/^(fresh|waited)$/), title });
    expect(page.ms, `${instance}: ${page.decision} in ${Math.round(page.ms)} ms`).toBeLessThan(WAIT_MS);
  }
}

/** Every acknowledged article, read straight on every node, shows its title. */
async function expectAllPresent(cluster: ProcessCluster, written: readonly { path: string; title: string }[]): Promise<void> {
  const reader = new Browser();
  const missing: string[] = [];
  for (const instance of cluster.instances) {
    for (const { path, title } of written) {
      const page = await reader.get(`${cluster.appUrl(instance)}${path}`);
      const shown = page.status === 200 ? articleTitle(page.body) : null;
      if (shown !== title)
        missing.push(`${instance} ${path}: ${page.status} ${JSON.stringify(shown)} (acknowledged ${JSON.stringify(title)})`);
    }
  }
  expect(missing).toEqual([]);
}

/**
 * The default cluster (a Consul lease, two fra candidates) with `env` for
 * every app, an author signed in through fra, and the bound within which a
 * crashed holder is replaced (the issue's: two TTLs, the lock delay, 2 s).
 */
async function startFailoverCluster(
  env?: Record<string, string>,
): Promise<{ cluster: ProcessCluster; author: Browser; failoverBoundMs: number }> {
  const cluster = await startTestCluster(env ? { env } : undefined);
  if (cluster.lease.type !== 'consul') throw new Error('the default cluster must run on a Consul lease');
  const author = new Browser();
  await signIn(author, cluster.edgeUrl('fra'));
  return { cluster, author, failoverBoundMs: 2 * cluster.lease.ttlMs + cluster.lease.lockDelayMs + 2000 };
}

describe.skipIf(!tier.run)('failover on a Consul lease (processes)', () => {
  let cluster: ProcessCluster;
  let author: Browser;
  /** A crashed holder is replaced within this of the kill (the bound). */
  let failoverBoundMs = 0;
  let counter = 0;
  const title = (what: string): string => `${what} ${++counter} ${Date.now().toString(36)}`;

  beforeAll(async () => {
    ({ cluster, author, failoverBoundMs } = await startFailoverCluster());
  }, CLUSTER_START_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('starts with two lease candidates in fra, fra-1 holding the lease, and tells each candidate where the other is', async () => {
    expect(cluster.instances).toEqual(['fra-1', 'fra-2', 'ewr-1', 'syd-1']);
    expect(await cluster.waitForPrimary(1000)).toBe('fra-1');
    const env = Object.fromEntries(cluster.nodes.map((n) => [n.instance, n.env().RYW_STANDBYS]));
    expect(env).toEqual({
      'fra-1': cluster.node('fra-2').litefsApiUrl,
      'fra-2': cluster.node('fra-1').litefsApiUrl,
      'ewr-1': undefined,
      'syd-1': undefined,
    });
  });

  it('crash: a new primary within 2 x TTL + lock delay + 2 s, writes succeed again, and the lag on a link follows it; the old primary rejoins as a replica and catches up', async () => {
    await author.postArticle(cluster.edgeUrl('syd'), title('Before the crash'));
    // A reader whose last write the old primary acknowledged: its token is fra-1's.
    const oldReader = new Browser();
    await signIn(oldReader, cluster.edgeUrl('ewr'));
    const oldTitle = title('Token of the old primary');
    const old = await oldReader.postArticle(cluster.edgeUrl('ewr'), oldTitle);
    expect(old.page.hops).toEqual(['ewr-1', 'fra-1']);
    await cluster.waitForSync(10_000);
    const lagMs = 400;
    await cluster.lag('ewr-1', lagMs); // what ewr-1 receives, from whoever is primary

    const killedAt = performance.now();
    expect(await cluster.kill('primary')).toEqual(['fra-1']);
    const promoted = cluster.waitForPrimary(failoverBoundMs + 10_000).then((instance) => ({ instance, at: performance.now() }));
    const written = writeUntilAcknowledged(author, cluster.edgeUrl('syd'), title('After the crash'), killedAt + failoverBoundMs + 10_000);
    const [primary, write] = await Promise.all([promoted, written]);

    expect(primary.instance).toBe('fra-2');
    expect(primary.at - killedAt).toBeLessThan(failoverBoundMs);
    expect(write.at - killedAt).toBeLessThan(failoverBoundMs);
    expect(write.page.hops).toEqual(['syd-1', 'fra-2']);
    // The edge sends fra's users to fra-2 only while fra-1 is down.
    for (let i = 0; i < 8; i++) expect((await author.get(`${cluster.edgeUrl('fra')}${articlePath(write.location)}`)).hops[0]).toBe('fra-2');

    // The lag stayed on ewr-1's link: the write reached syd-1 at once, ewr-1 only after the lag.
    const position = (await cluster.node('fra-2').position())!;
    const sentAt = performance.now();
    await cluster.node('syd-1').waitForPosition(position.txid, 5000);
    const sydMs = performance.now() - sentAt;
    await cluster.node('ewr-1').waitForPosition(position.txid, 5000);
    const ewrMs = performance.now() - sentAt;
    expect(sydMs).toBeLessThan(lagMs / 2);
    expect(ewrMs).toBeGreaterThanOrEqual(lagMs * 0.5);
    await cluster.heal('ewr-1');

    await cluster.start('fra-1');
    expect(cluster.node('fra-1').live).toBe(true);
    expect(cluster.node('fra-1').isPrimary).toBe(false); // it came back as a replica: the lease stayed
    expect(await cluster.waitForPrimary(1000)).toBe('fra-2');
    const synced = await cluster.waitForSync(15_000);
    expect(await cluster.node('fra-1').position()).toEqual(synced);
    // The old primary's token, on every node of the new primary's cluster, the old primary among them.
    await expectTokenHonoured(cluster, oldReader, articlePath(old.location), oldTitle);
    const status = (await (await fetch(`${cluster.edgeUrl()}/_cluster/status.json`)).json()) as EdgeStatus;
    expect(status.nodes.find((n) => n.instance === 'fra-1')).toMatchObject({ role: 'replica', leaseHolder: false, live: true });
    expect(cluster.primaryChanges().map((c) => [c.from, c.to])).toEqual([
      [null, 'fra-1'],
      ['fra-1', null],
      [null, 'fra-2'],
    ]);
  }, 60_000);

  it("handoff: the lease moves to the other candidate within a second or two, writes keep succeeding (at most a 503 with Retry-After meanwhile), none acknowledged is lost, and the old primary's tokens are honoured everywhere", async () => {
    await cluster.waitForSync(10_000);
    const oldReader = new Browser();
    await signIn(oldReader, cluster.edgeUrl('syd'));
    const oldTitle = title('Token of fra-2');
    const old = await oldReader.postArticle(cluster.edgeUrl('syd'), oldTitle);
    expect(old.page.hops).toEqual(['syd-1', 'fra-2']);
    const answers: { status: number; retryAfter: string | null; hops: readonly string[]; sentAt: number; doneAt: number }[] = [];
    const acknowledged: { path: string; title: string }[] = [];
    let writing = true;
    /** When the handoff was asked for and when it was done (performance.now()); writes are counted against both. */
    const handoff = { startedAt: Infinity, doneAt: Infinity };
    /** Writes answered 303 that were sent after the handoff was done. */
    const savedAfter = () => answers.filter((a) => a.status === 303 && a.sentAt > handoff.doneAt).length;
    // Signed in before the clock starts: a sign-in is a write too, and its password hash alone can outlast the 300 ms below.
    const client = new Browser();
    await signIn(client, cluster.edgeUrl('ewr'));
    const writer = (async () => {
      // Until the handoff is over and two writes after it were saved (a slow machine writes fewer in the same time), at most 100.
      for (let i = 0; (writing || savedAfter() < 2) && i < 100; i++) {
        const base = cluster.edgeUrl(i % 2 === 0 ? 'ewr' : 'fra');
        const form = await client.get(`${base}/new`);
        const csrf = /name="_csrf"\s+value="([^"]+)"/.exec(form.body)?.[1] ?? '';
        const sent = title('During the handoff');
        const page = await client.postForm(`${base}/new`, { title: sent, content: 'Written while the lease moves.', _csrf: csrf });
        answers.push({
          status: page.status,
          retryAfter: page.headers.get('retry-after'),
          hops: page.hops,
          sentAt: page.doneAt - page.ms,
          doneAt: page.doneAt,
        });
        if (page.status === 303) acknowledged.push({ path: articlePath(page.headers.get('location')!), title: sent });
      }
    })();
    await sleep(300);
    handoff.startedAt = performance.now();
    expect(await cluster.handoff()).toBe('fra-1');
    handoff.doneAt = performance.now();
    const tookMs = handoff.doneAt - handoff.startedAt;
    await sleep(500);
    writing = false;
    await writer;

    expect(tookMs).toBeLessThan(2000);
    expect(cluster.primaryChanges().at(-1)).toMatchObject({ from: 'fra-2', to: 'fra-1' });
    const unexpected = answers.filter((a) => a.status !== 303 && !(a.status === 503 && a.retryAfter !== null));
    const seen = JSON.stringify(answers.map((a) => [a.status, a.retryAfter, a.hops.join('>')]));
    expect(unexpected, seen).toEqual([]);
    // Saved before the lease moved, and after it on the new primary.
    expect(answers.filter((a) => a.status === 303 && a.doneAt < handoff.startedAt).length, seen).toBeGreaterThan(0);
    expect(savedAfter(), seen).toBeGreaterThanOrEqual(2);
    expect(answers.at(-1), seen).toMatchObject({ status: 303 });
    expect(answers.at(-1)!.hops.at(-1)).toBe('fra-1'); // written on the new primary
    await cluster.waitForSync(15_000);
    await expectAllPresent(cluster, acknowledged);
    await expectTokenHonoured(cluster, oldReader, articlePath(old.location), oldTitle);
  }, 60_000);

  it('refuses what makes no sense right now (control API 400, CLI exit 2 with one line) and changes nothing', async () => {
    expect(await cluster.waitForPrimary(1000)).toBe('fra-1');
    await cluster.cut('fra-2');
    // A write fra-2 cannot get: it is not caught up, so no handoff to it.
    await author.postArticle(cluster.edgeUrl('fra'), title('Not on fra-2'));
    const before = { changes: cluster.primaryChanges(), faults: cluster.faults(), live: cluster.nodes.map((n) => n.live) };
    try {
      const refused: [string, object, RegExp][] = [
        ['start', { target: 'fra-2' }, /^fra-2 is running: kill or stop it first$/],
        ['lag', { target: 'fra-1', ms: 300 }, /^fra-1 is the primary now: nothing streams to it/],
        ['cut', { target: 'fra-1' }, /^fra-1 is the primary now/],
        ['handoff', { target: 'fra-1' }, /^fra-1 holds the lease already$/],
        ['handoff', { target: 'ewr-1' }, /^ewr-1 is not a lease candidate/],
        ['handoff', {}, /^no caught-up candidate: fra-2 is \d+ transactions behind fra-1$/],
      ];
      for (const [verb, body, message] of refused) {
        const answer = await callControl(cluster.controlUrl, verb, body);
        expect(answer.status, `${verb} ${JSON.stringify(body)}`).toBe(400);
        expect(answer.error).toMatch(message);
      }
      const fromCli = await cli(cluster, ['start', 'fra-2']);
      expect(fromCli).toEqual({ code: 2, stdout: '', stderr: 'start: fra-2 is running: kill or stop it first\n' });

      expect(cluster.primaryChanges()).toEqual(before.changes);
      expect(cluster.faults()).toEqual(before.faults);
      expect(cluster.nodes.map((n) => n.live)).toEqual(before.live);
      expect(await cluster.waitForPrimary(1000)).toBe('fra-1');
    } finally {
      await cluster.heal();
    }
    // Once it has caught up, the same handoff is accepted; and a killed node cannot be killed twice.
    await cluster.kill('syd-1');
    expect((await callControl(cluster.controlUrl, 'kill', { target: 'syd-1' })).error).toBe('syd-1 is not running: start it first');
    expect((await callControl(cluster.controlUrl, 'start', { target: 'syd-1' })).status).toBe(200);
    expect(cluster.node('syd-1').live).toBe(true);
  }, 60_000);

  it('status shows the lease, who holds it, each node and every primary change seen so far', async () => {
    const holder = await cluster.waitForPrimary(1000);
    const changes = cluster.primaryChanges();
    const { code, stdout } = await cli(cluster, ['status']);
    expect(code).toBe(0);
    expect(stdout).toContain(
      `lease: consul (${cluster.lease.type === 'consul' ? cluster.lease.consulUrl : ''}, key litefs/primary), held by ${holder}; TTL 1000 ms, lock delay 100 ms`,
    );
    expect(stdout).toMatch(new RegExp(`^fra\\s+${holder}\\s+primary\\s+holder\\s`, 'm'));
    expect(stdout).toMatch(/^ewr\s+ewr-1\s+replica\s+-\s/m);
    expect(stdout).toContain(`primary changes (${changes.length}):`);
    for (const change of changes) expect(stdout).toContain(`${change.at}  ${change.from ?? '(nobody)'} -> ${change.to ?? '(nobody)'}`);
    if (changes.length > 1) expect(stdout).toContain('fra-1 -> (nobody)'); // the crash, when the tests above ran

    const page = (await (await fetch(`${cluster.edgeUrl()}/_cluster/status.json`)).json()) as EdgeStatus;
    expect(page.lease).toMatchObject({ type: 'consul', holder, ttlMs: 1000, lockDelayMs: 100 });
    expect(page.primaryChanges).toEqual(changes);
    expect(page.nodes.map((n) => [n.instance, n.candidate, n.leaseHolder])).toEqual(
      cluster.instances.map((i) => [i, i.startsWith('fra-'), i === holder]),
    );
    const html = await (await fetch(`${cluster.edgeUrl()}/_cluster`)).text();
    expect(html).toContain('id="changes"');
    expect(html).toContain('Lease: Consul, held by');
  }, 30_000);

  it('durability local (the default): a crash while the standby is cut off loses an acknowledged write, on every node', async () => {
    const primary = await cluster.waitForPrimary(1000);
    const standby = primary === 'fra-1' ? 'fra-2' : 'fra-1';
    const kept = await author.postArticle(cluster.edgeUrl('ewr'), title('Kept'));
    await cluster.waitForSync(10_000);
    await cluster.cut(standby);
    const lost = await author.postArticle(cluster.edgeUrl('ewr'), title('Acknowledged, then lost'));
    expect(lost.page.hops).toEqual(['ewr-1', primary]); // acknowledged by the primary alone
    await cluster.kill('primary');
    // Once the dead holder's lease has expired, the healed standby takes it without the write it never got.
    await sleep(failoverBoundMs - 2000 + 300);
    await cluster.heal(standby);
    expect(await cluster.waitForPrimary(failoverBoundMs + 10_000)).toBe(standby);
    await cluster.start(primary);
    await cluster.waitForSync(15_000);
    const reader = new Browser();
    for (const instance of cluster.instances) {
      expect((await reader.get(`${cluster.appUrl(instance)}${articlePath(kept.location)}`)).status, instance).toBe(200);
      expect((await reader.get(`${cluster.appUrl(instance)}${articlePath(lost.location)}`)).status, instance).toBe(404);
    }
  }, 60_000);
});

describe.skipIf(!tier.run)('durability standby (RYW_DURABILITY=standby): a write is acknowledged once the other candidate has it', () => {
  let cluster: ProcessCluster;
  let author: Browser;
  let failoverBoundMs = 0;
  let counter = 0;
  const title = (what: string): string => `${what} ${++counter} ${Date.now().toString(36)}`;
  const DURABILITY_WAIT_MS = 1000;

  beforeAll(async () => {
    ({ cluster, author, failoverBoundMs } = await startFailoverCluster({
      RYW_DURABILITY: 'standby',
      RYW_DURABILITY_WAIT_MS: String(DURABILITY_WAIT_MS),
    }));
  }, CLUSTER_START_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('answers a write only once the standby has it, however late its link delivers it', async () => {
    const lagMs = 300;
    await cluster.lag('fra-2', lagMs);
    try {
      const { page } = await author.postArticle(cluster.edgeUrl('syd'), title('Confirmed by fra-2'));
      const [primaryPos, standbyPos] = await Promise.all([cluster.node('fra-1').position(), cluster.node('fra-2').position()]);
      expect(page.hops).toEqual(['syd-1', 'fra-1']);
      expect(page.ms).toBeGreaterThanOrEqual(lagMs * 0.9); // it waited for the lagging standby…
      expect(standbyPos!.txid).toBe(primaryPos!.txid); // …and the standby had it when the 303 came
    } finally {
      await cluster.heal('fra-2');
    }
  }, 30_000);

  it('loses nothing acknowledged when the primary is killed right after its last answer', async () => {
    const written: { path: string; title: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const sent = title('Acknowledged just before the crash');
      const { location } = await author.postArticle(cluster.edgeUrl(i % 2 === 0 ? 'ewr' : 'fra'), sent);
      written.push({ path: articlePath(location), title: sent });
    }
    expect(await cluster.kill('primary')).toEqual(['fra-1']);
    expect(await cluster.waitForPrimary(failoverBoundMs + 10_000)).toBe('fra-2');
    await cluster.start('fra-1');
    await cluster.waitForSync(15_000);
    await expectAllPresent(cluster, written);
  }, 60_000);

  it('with the standby cut off, answers 503 with Retry-After and the form kept instead of acknowledging; a crash then loses nothing acknowledged', async () => {
    const primary = await cluster.waitForPrimary(1000);
    const standby = primary === 'fra-1' ? 'fra-2' : 'fra-1';
    const kept = title('Confirmed before the cut');
    const before = await author.postArticle(cluster.edgeUrl('ewr'), kept);
    await cluster.waitForSync(10_000);
    await cluster.cut(standby);
    const form = await author.get(`${cluster.edgeUrl('ewr')}/new`);
    const unconfirmed = title('Saved on the primary only');
    const page = await author.postForm(`${cluster.edgeUrl('ewr')}/new`, {
      ...hiddenFieldsOf(form.body),
      title: unconfirmed,
      content: 'Typed text.',
    });
    expect(page.status).toBe(503);
    expect(page.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(page.ms).toBeGreaterThanOrEqual(DURABILITY_WAIT_MS * 0.9);
    expect(page.body).toContain(unconfirmed.replaceAll('&', '&amp;')); // the form, with everything typed
    await cluster.kill('primary');
    await sleep(failoverBoundMs - 2000 + 300);
    await cluster.heal(standby);
    expect(await cluster.waitForPrimary(failoverBoundMs + 10_000)).toBe(standby);
    await cluster.start(primary);
    await cluster.waitForSync(15_000);
    await expectAllPresent(cluster, [{ path: articlePath(before.location), title: kept }]);
  }, 60_000);
});

describe.skipIf(!tier.run)('a static lease (--lease static)', () => {
  let cluster: ProcessCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({ lease: 'static' });
  }, CLUSTER_START_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('keeps one primary that never moves: a crash leaves no primary until it is started again, and a handoff is refused', async () => {
    expect(cluster.instances).toEqual(['fra-1', 'ewr-1', 'syd-1']);
    expect(cluster.lease).toEqual({ type: 'static' });
    const author = new Browser();
    await signIn(author, cluster.edgeUrl('ewr'));
    const { page } = await author.postArticle(cluster.edgeUrl('ewr'), `Static ${Date.now().toString(36)}`);
    expect(page.hops).toEqual(['ewr-1', 'fra-1']);
    const handoff = await callControl(cluster.controlUrl, 'handoff', {});
    expect(handoff).toMatchObject({
      status: 400,
      error: 'the lease is static: the primary cannot move (start the cluster with --lease consul)',
    });

    await cluster.kill('fra-1');
    await expect(cluster.waitForPrimary(3000)).rejects.toThrow('no primary within 3000 ms');
    await cluster.start('fra-1');
    expect(await cluster.waitForPrimary(1000)).toBe('fra-1');
    const again = await author.postArticle(cluster.edgeUrl('syd'), `Static again ${Date.now().toString(36)}`);
    expect(again.page.hops).toEqual(['syd-1', 'fra-1']);
    await cluster.waitForSync(15_000);
    expect(cluster.primaryChanges()).toEqual([]);
  }, 60_000);
});
