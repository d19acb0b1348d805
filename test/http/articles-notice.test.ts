/**
 * The read-your-writes notice speaks only when it matters to the reader: the
 * page waited for their change, came from the primary because their region
 * had not caught up, or may not show it yet. A page that simply has their
 * change says nothing, however recently they wrote.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { CAUGHT_UP_COOKIE } from '../../src/http/notice.js';
import { FakeLiteFS, PRIMARY_ID, serverTiming, tokenCookie, tokenFor } from '../support/fake-litefs.js';
import { openForm, submitForm } from '../support/forms.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

const notice = (html: string) => /<div class="notice-slot">\s*<p class="notice (notice-[a-z-]+)" role="status">([^<]*)<\/p>/.exec(html);

describe('the consistency notice', () => {
  it('says nothing on the pages after a write that already show it (fresh), nor to readers with no token', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 4n });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const form = await openForm(app);
    const published = await submitForm(app, form, { title: 'Mine', content: 'Just written.', _draft: form.draft }).expect(303);
    const token = published.headers['ryw-token'] as string;
    for (const path of [published.headers.location as string, '/', '/?search=written']) {
      const page = await request(app).get(path).set('RYW-Token', token).expect(200);
      expect(serverTiming(page.headers['server-timing']).desc).toBe('fresh');
      expect(page.text).not.toContain('notice-slot');
      expect(page.text).not.toMatch(/includes your latest change/);
    }
    expect((await request(app).get('/').expect(200)).text).not.toContain('notice-slot');
  });

  it('says the page waited, when it did', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 4_000, pollMs: 5 });
    setTimeout(() => fs.setPosition(11n), 100);
    const page = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(11n)))
      .expect(200);
    expect(notice(page.text)?.slice(1)).toEqual([
      'notice-waited',
      expect.stringMatching(/^This page waited \d+ ms for your latest change to reach region ewr\.$/),
    ]);
  });

  it('says the page may not show the change yet, when served stale', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 10n });
    const { app } = fs.app({ waitMs: 50, fallback: 'stale' });
    const page = await request(app)
      .get('/')
      .set('Cookie', tokenCookie(tokenFor(11n)))
      .expect(200);
    expect(notice(page.text)?.[1]).toBe('notice-stale');
    expect(notice(page.text)?.[2]).toMatch(/still on its way to this region \(ewr\), so this page may not show it yet/);
  });

  it('says the change has arrived on the page a stale page reloads into once its region caught up, in the same slot, once', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 11n });
    const { app } = fs.app({ waitMs: 50, fallback: 'stale' });
    const token = tokenCookie(tokenFor(11n));
    // public/app.js sets the cookie to the page's own URL just before it reloads it.
    const reloaded = await request(app)
      .get('/?search=x')
      .set('Cookie', `${token}; ${CAUGHT_UP_COOKIE}=${encodeURIComponent('/?search=x')}`)
      .expect(200);
    expect(notice(reloaded.text)?.slice(1)).toEqual([
      'notice-caught-up',
      'Your latest change has reached region ewr: this page shows it now.',
    ]);
    expect((reloaded.headers['set-cookie'] as unknown as string[]).some((c) => c.startsWith(`${CAUGHT_UP_COOKIE}=;`))).toBe(true);
    // Another page (the cookie was for one URL), or the next one: nothing to say.
    const elsewhere = await request(app)
      .get('/')
      .set('Cookie', `${token}; ${CAUGHT_UP_COOKIE}=${encodeURIComponent('/?search=x')}`)
      .expect(200);
    expect(elsewhere.text).not.toContain('notice-slot');
    expect((await request(app).get('/?search=x').set('Cookie', token).expect(200)).text).not.toContain('notice-slot');
    // Still behind after all: stale says so, whatever the cookie.
    const behind = await request(app)
      .get('/')
      .set('Cookie', `${tokenCookie(tokenFor(12n))}; ${CAUGHT_UP_COOKIE}=%2F`)
      .expect(200);
    expect(notice(behind.text)?.[1]).toBe('notice-stale');
  });

  it('says the page came from the primary, when a replica replayed it there', async () => {
    fs = new FakeLiteFS({ role: 'primary', position: 11n });
    const { app } = fs.app({ region: 'fra', instance: PRIMARY_ID });
    const page = await request(app)
      .get('/')
      .set('fly-replay-src', 'instance=ewr-1;region=ewr;t=1700000000000000;state=ryw')
      .set('Cookie', tokenCookie(tokenFor(11n)))
      .expect(200);
    expect(notice(page.text)?.slice(1)).toEqual([
      'notice-replayed',
      'Your nearest region had not caught up with your latest change yet, so this page came from the primary, in region fra.',
    ]);
  });
});
