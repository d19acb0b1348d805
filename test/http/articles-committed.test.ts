/**
 * With `tokens: 'when-committed'` (src/ryw/middleware.ts) a write's answer
 * carries a read-your-writes token only when its route said its write
 * committed (`res.locals.ryw.committed`, markCommitted()). The article
 * forms say so after every write that committed, the idempotent answers
 * included (the same draft published again, the same edit saved again, a
 * delete of what is already deleted: the author is sent to a page that must
 * show it), and never for a refusal, which wrote nothing.
 *
 * What the middleware reads is what is checked: the flag as the headers go
 * out, reported by a probe around the app in `X-Test-Committed`.
 */
import type { Express, Response } from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeLiteFS, PRIMARY_ID } from '../support/fake-litefs.js';
import { openEdit, openForm, saveEdit, sessionOf, submitForm, type App } from '../support/forms.js';

const PROBE = 'x-test-committed';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

/**
 * The primary's app, with every answer saying in `X-Test-Committed` what
 * `res.locals.ryw.committed` was when its headers went out (after the
 * read-your-writes middleware had decided on its token).
 */
function primary(): Express {
  fs = new FakeLiteFS({ role: 'primary' });
  // Express itself (Blog.app): writes never take the page cache's lane.
  const app = fs.app({ region: 'fra', instance: PRIMARY_ID }).blog.app;
  const patched = app as unknown as { handle: (req: unknown, res: Response, next?: unknown) => void };
  const handle = patched.handle.bind(app);
  // Patched before any middleware's on-headers, so that this runs last, as the headers are written.
  patched.handle = (req, res, next) => {
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => unknown;
    (res as unknown as { writeHead: (...args: unknown[]) => unknown }).writeHead = (...args: unknown[]) => {
      res.setHeader(PROBE, String(res.locals.ryw?.committed ?? 'no-locals'));
      return writeHead(...args);
    };
    handle(req, res, next);
  };
  return app;
}

const committed = (res: request.Response) => res.headers[PROBE];

const article = { title: 'Said once, committed once', content: 'Every word of it.' };

async function publish(app: App): Promise<{ id: number; form: Awaited<ReturnType<typeof openForm>> }> {
  const form = await openForm(app);
  const res = await submitForm(app, form, { ...article, _draft: form.draft }).expect(303);
  expect(committed(res)).toBe('true');
  return { id: Number(/(\d+)$/.exec(res.headers.location as string)![1]), form };
}

async function openDelete(app: App, id: number) {
  const page = await request(app).get(`/articles/${id}/delete`).set('Cookie', sessionOf(app)).expect(200);
  const csrf = (page.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
  return { cookie: `${csrf}; ${sessionOf(app)}`, token: /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!, revision: '1' };
}
function confirmDelete(app: App, id: number, form: { cookie: string; token: string; revision: string }) {
  return request(app)
    .post(`/articles/${id}/delete`)
    .set('Cookie', form.cookie)
    .type('form')
    .send({ _csrf: form.token, _revision: form.revision });
}
const signedOut = <T extends { cookie: string }>(form: T): T => ({ ...form, cookie: form.cookie.replace(/session=[^;]+/, 'session=none') });

describe('publishing', () => {
  it('marks a publish committed, for a browser and a JSON client, and the same draft published again too', async () => {
    const app = primary();
    const { form } = await publish(app);
    // The retry finds the committed article: its redirect must carry a token, or it may land on a replica without it.
    const again = await submitForm(app, form, { ...article, _draft: form.draft }).expect(303);
    expect(committed(again)).toBe('true');
    const json = await openForm(app);
    const created = await submitForm(app, json, { ...article, _draft: json.draft })
      .set('Accept', 'application/json')
      .expect(201);
    expect(committed(created)).toBe('true');
  });

  it('does not mark a refusal: signed out, CSRF, validation, the draft published with other text', async () => {
    const app = primary();
    const { form } = await publish(app);
    const other = await submitForm(app, form, { title: 'Other text', content: 'Changed.', _draft: form.draft }).expect(409);
    expect(committed(other)).toBe('false');
    const fresh = await openForm(app);
    expect(committed(await submitForm(app, fresh, { title: ' ', content: 'x', _draft: fresh.draft }).expect(400))).toBe('false');
    expect(committed(await submitForm(app, { ...fresh, token: 'forged' }, { ...article, _draft: fresh.draft }).expect(403))).toBe('false');
    expect(committed(await submitForm(app, signedOut(fresh), { ...article, _draft: fresh.draft }).expect(401))).toBe('false');
  });
});

describe('editing', () => {
  it('marks a saved edit committed, and the same edit saved again (a retry) too', async () => {
    const app = primary();
    const { id } = await publish(app);
    const form = await openEdit(app, id);
    const edited = { title: 'Edited', content: 'New words.' };
    expect(committed(await saveEdit(app, form, edited).expect(303))).toBe('true');
    expect(committed(await saveEdit(app, form, edited).expect(303))).toBe('true');
    expect(committed(await saveEdit(app, form, edited).set('Accept', 'application/json').expect(200))).toBe('true');
  });

  it('does not mark a refusal: conflict, no revision, validation, CSRF, signed out, deleted meanwhile', async () => {
    const app = primary();
    const { id } = await publish(app);
    const form = await openEdit(app, id);
    await saveEdit(app, await openEdit(app, id), { title: 'Theirs', content: 'Saved first.' }).expect(303);
    expect(committed(await saveEdit(app, form, { title: 'Mine', content: 'Too late.' }).expect(409))).toBe('false');
    const current = await openEdit(app, id);
    expect(committed(await submitForm(app, current, { title: 'No revision', content: 'x' }).expect(409))).toBe('false');
    expect(committed(await saveEdit(app, current, { title: '', content: 'x' }).expect(400))).toBe('false');
    expect(committed(await saveEdit(app, { ...current, token: 'forged' }, { title: 'x', content: 'x' }).expect(403))).toBe('false');
    expect(committed(await saveEdit(app, signedOut(current), { title: 'x', content: 'x' }).expect(401))).toBe('false');
    await confirmDelete(app, id, { ...(await openDelete(app, id)), revision: '2' }).expect(303);
    expect(committed(await saveEdit(app, current, { title: 'x', content: 'x' }).expect(410))).toBe('false');
  });
});

describe('deleting', () => {
  it('marks a delete committed, and a delete of what is already deleted (answered as done) too', async () => {
    const app = primary();
    const { id } = await publish(app);
    const form = await openDelete(app, id);
    expect(committed(await confirmDelete(app, id, form).expect(303))).toBe('true');
    expect(committed(await confirmDelete(app, id, form).expect(303))).toBe('true');
    expect(committed(await confirmDelete(app, id, form).set('Accept', 'application/json').expect(200))).toBe('true');
  });

  it('does not mark a refusal: changed since (409), no revision, CSRF, signed out', async () => {
    const app = primary();
    const { id } = await publish(app);
    const form = await openDelete(app, id);
    await saveEdit(app, await openEdit(app, id), { title: 'Changed', content: 'Since.' }).expect(303);
    expect(committed(await confirmDelete(app, id, form).expect(409))).toBe('false');
    expect(committed(await confirmDelete(app, id, { ...form, revision: '' }).expect(409))).toBe('false');
    expect(committed(await confirmDelete(app, id, { ...form, token: 'forged', revision: '2' }).expect(403))).toBe('false');
    const out = await confirmDelete(app, id, signedOut({ ...form, revision: '2' }));
    expect(out.status).toBe(401);
    expect(committed(out)).toBe('false');
    // Signed out, even of an article already deleted: 401 with the confirmation, nothing marked.
    await confirmDelete(app, id, { ...form, revision: '2' }).expect(303);
    const gone = await confirmDelete(app, id, signedOut({ ...form, revision: '2' }));
    expect(gone.status).toBe(401);
    expect(committed(gone)).toBe('false');
  });
});
