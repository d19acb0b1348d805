import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { signToken, tokenPayload } from '../../src/ryw/token.js';
import { FakeLiteFS, PRIMARY_ID, SECRETS, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';
import { openForm, submitForm } from '../support/forms.js';
import { until } from '../support/until.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

function setCookie(headers: Record<string, unknown>, name: string): string | undefined {
  const all = (headers['set-cookie'] as string[] | undefined) ?? [];
  return all.find((c) => c.startsWith(`${name}=`));
}

describe('tokens issued after a write on the primary', () => {
  it('sets the signed ryw cookie and the RYW-Token header to the position after the commit', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 41n });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID, ttlSeconds: 120, wrapStore: fs.committing() });
    const form = await openForm(app);
    const res = await request(app)
      .post('/new')
      .set('Cookie', form.cookie)
      .type('form')
      .send({ title: 'Hello', content: 'World', _csrf: form.token })
      .expect(303);
    expect(res.headers.location).toMatch(/^\/articles\/\d+$/);
    const cookie = setCookie(res.headers, 'ryw')!;
    expect(cookie).toMatch(/; Max-Age=120;/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/);
    const header = res.headers['ryw-token'] as string;
    expect(decodeURIComponent(cookie.split(';')[0]!.slice('ryw='.length))).toBe(header);
    // 42, not 41: read after the transaction committed.
    expect(header).toMatch(/^s:000000000000002a\/(ab){8}\.\d{13}\./); // TXID/checksum (the pos file's).issued at
    expect(serverTiming(res.headers['server-timing']).desc).toBe('issued');
  });

  it('marks the cookie Secure behind an https proxy', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const form = await openForm(app);
    const res = await submitForm(app, form, { title: 'Over https', content: 'yes' }).set('X-Forwarded-Proto', 'https').expect(303);
    expect(setCookie(res.headers, 'ryw')).toMatch(/; Secure/);
  });

  it.each([
    ['a refused form (CSRF)', { title: 'x', content: 'y', _csrf: 'not-the-token' }, 403],
    ['an invalid article', { title: '', content: 'y' }, 400],
  ])('issues nothing after %s: nothing was written', async (_name, fields, status) => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const form = await openForm(app);
    const res = await request(app)
      .post('/new')
      .set('Cookie', form.cookie)
      .type('form')
      .send({ _csrf: form.token, ...fields })
      .expect(status);
    expect(setCookie(res.headers, 'ryw')).toBeUndefined();
    expect(res.headers['ryw-token']).toBeUndefined();
    expect(serverTiming(res.headers['server-timing']).desc).toBe('none');
  });

  it('issues nothing on reads, standalone, or for health, metrics and static files', async () => {
    fs = new FakeLiteFS({ role: 'primary' });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    for (const path of ['/', '/healthz', '/metrics', '/static/app.css', '/favicon.ico']) {
      const res = await request(app).get(path).expect(200);
      expect(setCookie(res.headers, 'ryw')).toBeUndefined();
      expect(res.headers['ryw-token']).toBeUndefined();
      expect(serverTiming(res.headers['server-timing']).desc).toBe('none');
    }
    fs.close();
    fs = new FakeLiteFS({ role: 'standalone' });
    const standalone = fs.app().app;
    const form = await openForm(standalone);
    const res = await request(standalone)
      .post('/new')
      .set('Cookie', form.cookie)
      .type('form')
      .send({ title: 'a', content: 'b', _csrf: form.token })
      .expect(303);
    expect(setCookie(res.headers, 'ryw')).toBeUndefined();
    expect(serverTiming(res.headers['server-timing']).desc).toBe('none');
  });
});

describe('a replica reading with a token', () => {
  it('serves at once when it has already reached the token', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 2_000 });
    const started = performance.now();
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(10n)))
      .expect(200);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(serverTiming(res.headers['server-timing'])).toEqual({ desc: 'fresh', dur: 0 });
  });

  it('waits, and answers as soon as the position arrives, not at the deadline', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app, node } = fs.app({ waitMs: 4_000 });
    const answer = request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(11n)))
      .expect(200)
      .then((res) => res);
    await until(() => node.stats().waiting === 1);
    // The position arrives 300 ms into the wait: the answer comes no sooner, and soon after.
    const started = performance.now();
    setTimeout(() => fs.setPosition(11n), 300);
    const res = await answer;
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1_500); // the deadline was 4 s away
    const timing = serverTiming(res.headers['server-timing']);
    expect(timing.desc).toBe('waited');
    expect(timing.dur).toBeGreaterThanOrEqual(280);
    expect(timing.dur).toBeLessThan(1_500);
    expect(res.text).toMatch(/This page waited \d+ ms for your latest change to reach region ewr/);
    // No LITEFS_API here: the pos-file poller woke it.
    const metrics = await request(app).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/ryw_wakeups_total\{source="poll"\} 1/);
    expect(metrics.text).toMatch(/ryw_wakeups_total\{source="events"\} 0/);
  });

  it('on the primary, reports a read replayed there for its token as replayed', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 11n });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const res = await request(app)
      .get('/')
      .set('fly-replay-src', 'instance=ewr-1;region=ewr;t=1700000000000000;state=ryw')
      .set('Cookie', tokenCookie(tokenFor(11n)))
      .expect(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('replayed');
    expect(res.text).toContain(
      'Your nearest region had not caught up with your latest change yet, so this page came from the primary, in region fra.',
    );
  });

  it('takes the token from the RYW-Token header too', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 100, fallback: 'error' });
    const res = await request(app).get('/').set('RYW-Token', tokenFor(11n)).expect(503);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('unavailable');
  });

  it('takes the higher of the cookie and the header', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 100, fallback: 'error' });
    await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(9n)))
      .set('RYW-Token', tokenFor(11n))
      .expect(503);
    await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(11n)))
      .set('RYW-Token', tokenFor(9n))
      .expect(503);
    const met = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(9n)))
      .set('RYW-Token', tokenFor(10n))
      .expect(200);
    expect(serverTiming(met.headers['server-timing']).desc).toBe('fresh');
  });

  it('accepts tokens signed with an older secret of the list', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app();
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(10n, { secrets: [SECRETS[1]!] })))
      .expect(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('fresh');
  });

  describe('when the wait runs out', () => {
    const WAIT = 250;

    it('replays to the primary with state=ryw (fallback replay)', async () => {
      fs = new FakeLiteFS({ role: 'replica', position: 10n });
      const { app } = fs.app({ waitMs: WAIT, fallback: 'replay' });
      const started = performance.now();
      const res = await request(app)
        .get('/articles/1')
        .set('Cookie', tokenCookie(tokenFor(11n)))
        .expect(409);
      // At the deadline: not before it, and not long after.
      expect(performance.now() - started).toBeGreaterThanOrEqual(WAIT - 10);
      expect(performance.now() - started).toBeLessThan(WAIT + 1_000);
      expect(res.headers['fly-replay']).toBe(`instance=${PRIMARY_ID};state=ryw`);
      const timing = serverTiming(res.headers['server-timing']);
      expect(timing.desc).toBe('replayed');
      expect(timing.dur).toBeGreaterThanOrEqual(WAIT - 10);
      expect(timing.dur).toBeLessThan(WAIT + 1_000);
    });

    it('serves the page marked stale (fallback stale)', async () => {
      fs = new FakeLiteFS({ role: 'replica', position: 10n });
      const { app } = fs.app({ waitMs: WAIT, fallback: 'stale' });
      const res = await request(app)
        .get('/')
        .set('Cookie', tokenCookie(tokenFor(11n)))
        .expect(200);
      expect(serverTiming(res.headers['server-timing']).desc).toBe('stale');
      expect(res.text).toContain('data-ryw="stale"');
      expect(res.text).toMatch(/Your latest change is still on its way to this region \(ewr\)/);
    });

    it('answers 503 with Retry-After: 1 (fallback error)', async () => {
      fs = new FakeLiteFS({ role: 'replica', position: 10n });
      const { app } = fs.app({ waitMs: WAIT, fallback: 'error' });
      const res = await request(app)
        .get('/')
        .set('Cookie', tokenCookie(tokenFor(11n)))
        .expect(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.text).toMatch(/not caught up/);
    });
  });
});

describe('dropped tokens: never waited on, cookie cleared', () => {
  const expired = signToken(tokenPayload(99n, Date.now() - 301_000), SECRETS);
  const cases: [string, string][] = [
    ['forged', tokenFor(99n, { secrets: ['somebody-elses-secret-123456'] })],
    ['malformed (unsigned)', '0000000000000063.9999999999'],
    ['malformed (garbage)', 's:hello'],
    ['expired', expired],
    ['oversized', `s:${'a'.repeat(4_000)}`],
  ];

  it.each(cases)('a %s cookie', async (_name, token) => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 3_000, fallback: 'error' });
    const started = performance.now();
    const res = await request(app).get('/').set('Cookie', tokenCookie(token)).expect(200);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(serverTiming(res.headers['server-timing'])).toEqual({ desc: 'dropped', dur: 0 });
    expect(setCookie(res.headers, 'ryw')).toMatch(/^ryw=; .*Expires=Thu, 01 Jan 1970/);
  });

  it.each(cases)('a %s header', async (_name, token) => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 3_000, fallback: 'error' });
    const res = await request(app).get('/').set('RYW-Token', token).expect(200);
    expect(serverTiming(res.headers['server-timing'])).toEqual({ desc: 'dropped', dur: 0 });
  });

  it('an oversized cookie is counted as oversized, not forged', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app();
    await request(app)
      .get('/')
      .set('Cookie', tokenCookie(`s:${'a'.repeat(4_000)}`))
      .expect(200);
    const metrics = await request(app).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/ryw_tokens_dropped_total\{reason="oversized"\} 1/);
    expect(metrics.text).not.toMatch(/ryw_tokens_dropped_total\{reason="forged"\} 1/);
  });

  it('on the primary, a token ahead of its position (an older lineage)', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 3n });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID, waitMs: 3_000 });
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(500n)))
      .expect(200);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('dropped');
    expect(setCookie(res.headers, 'ryw')).toMatch(/^ryw=; .*Expires=Thu, 01 Jan 1970/);
  });

  it('on a replica in touch with the primary, a token issued long before what it has heard (an older lineage)', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 3n });
    fs.setLag(900); // heard from the primary 0.9 s ago
    const { app } = fs.app({ waitMs: 3_000, fallback: 'stale' });
    const started = performance.now();
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(500n, { issuedAt: Date.now() - 30_000 })))
      .expect(200);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(serverTiming(res.headers['server-timing'])).toEqual({ desc: 'dropped', dur: 0 });
    expect(setCookie(res.headers, 'ryw')).toMatch(/^ryw=; .*Expires=Thu, 01 Jan 1970/);
  });

  it('but not on a replica cut off since before the token was issued: that one waits', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 3n });
    fs.setLag(60_000);
    const { app } = fs.app({ waitMs: 200, fallback: 'stale' });
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(500n, { issuedAt: Date.now() - 30_000 })))
      .expect(200);
    const timing = serverTiming(res.headers['server-timing']);
    expect(timing.desc).toBe('stale');
    // The whole budget, then the fallback.
    expect(timing.dur).toBeGreaterThanOrEqual(190);
    expect(timing.dur).toBeLessThan(1_000);
  });

  it('a valid header still counts when the cookie is forged', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 100, fallback: 'error' });
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(99n, { secrets: ['somebody-elses-secret-123456'] })))
      .set('RYW-Token', tokenFor(11n))
      .expect(503);
    expect(setCookie(res.headers, 'ryw')).toMatch(/^ryw=;/);
  });
});

describe('with RYW_ENABLED=false', () => {
  it('ignores tokens and issues none, but still replays writes', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 3_000, fallback: 'error', rywEnabled: false });
    const started = performance.now();
    const res = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(11n)))
      .expect(200);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(serverTiming(res.headers['server-timing']).desc).toBe('none');
    expect((await request(app).post('/new').expect(409)).headers['fly-replay']).toBe(`instance=${PRIMARY_ID}`);
  });
});

describe('health, metrics and static files', () => {
  it('never wait, even with an unmet token', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 3_000, fallback: 'error' });
    for (const path of ['/healthz', '/metrics', '/static/app.css']) {
      const started = performance.now();
      const res = await request(app)
        .get(path)
        .set('Cookie', tokenCookie(tokenFor(11n)))
        .expect(200);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(serverTiming(res.headers['server-timing']).desc).toBe('none');
    }
  });

  it('count each decision and the waits in /metrics', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 50, fallback: 'stale' });
    await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(11n)))
      .expect(200);
    await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(10n)))
      .expect(200);
    await request(app).get('/').set('Cookie', tokenCookie('s:forged')).expect(200);
    const res = await request(app).get('/metrics').expect(200);
    expect(res.text).toMatch(/ryw_decisions_total\{decision="stale"\} 1/);
    expect(res.text).toMatch(/ryw_decisions_total\{decision="fresh"\} 1/);
    expect(res.text).toMatch(/ryw_decisions_total\{decision="dropped"\} 1/);
    expect(res.text).toMatch(/ryw_wait_seconds_count 1/);
    expect(res.text).toMatch(/ryw_tokens_dropped_total\{reason="forged"\} 1/);
    // Health, metrics and static files are not decisions: the scrape itself is not counted.
    await request(app).get('/static/app.css').expect(200);
    const again = await request(app).get('/metrics').expect(200);
    expect(again.text).toMatch(/ryw_decisions_total\{decision="none"\} 0/);
    expect(res.text).toMatch(/litefs_position_txid 10/);
  });
});
