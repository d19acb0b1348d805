/**
 * The app's article forms as the HTTP tests use them through supertest, as a
 * signed-in author: open `GET /new` (or an article's edit page) for its CSRF
 * token, the matching `csrf` cookie and its draft id (or revision), then
 * submit fields with that token and those cookies, as a browser would.
 *
 * Writing needs a signed-in author. Unless a test says whose session to
 * send, the forms are those of FORM_WRITER, whose author row and session are
 * seeded into the app's own file (FakeLiteFS.insertSession()), with one
 * session id for every fake node: as if the author had signed in on the
 * primary and it had replicated everywhere, so a form opened on a replica is
 * accepted on the primary. Sessions themselves are tested through the sign-in
 * form (test/http/auth*.test.ts, fake-litefs.ts's signIn()).
 */
import Database from 'better-sqlite3';
import request from 'supertest';
import { nameKey } from '../../src/author.js';
import { newSessionId, SESSION_COOKIE } from '../../src/http/auth.js';
import { fakeOf, type FakeLiteFS } from './fake-litefs.js';

export type App = Parameters<typeof request>[0];

export interface Form {
  readonly token: string;
  /** The `csrf=…` and `session=…` pairs, ready for a Cookie header. */
  readonly cookie: string;
  /** A new article's draft id; '' in an edit form. */
  readonly draft: string;
  /** An edit form's revision (`_revision`); null in a new article's form. */
  readonly revision: number | null;
  /** Where the form posts: `/new`, or `/articles/<id>`. */
  readonly action: string;
}

/** The author whose forms the helpers fill in, unless told otherwise. */
export const FORM_WRITER = 'Form Writer';
// One session id per author name for the whole test run: the "replicated" session of every fake node.
const sessionIds = new Map<string, string>();
const seeded = new WeakMap<FakeLiteFS, Map<string, string>>();

/**
 * The `session=…` pair of `name` on the node `app` runs on, seeding the
 * author (without a usable password: this author never signs in by form)
 * and the session into its file the first time.
 */
export function sessionOf(app: App, name = FORM_WRITER): string {
  const fake = fakeOf(app);
  if (!fake) throw new Error('test/support/forms.ts signs in on apps built by FakeLiteFS.app()');
  const done = seeded.get(fake) ?? new Map<string, string>();
  seeded.set(fake, done);
  const known = done.get(name);
  if (known) return known;
  const db = new Database(fake.dbPath);
  let authorId: number;
  try {
    const row = db.prepare('SELECT id FROM authors WHERE name_key = ?').get(nameKey(name)) as { id: number } | undefined;
    authorId =
      row?.id ??
      Number(
        db
          .prepare('INSERT INTO authors (name, name_key, password_hash, created) VALUES (?, ?, ?, ?)')
          .run(name, nameKey(name), 'seeded by test/support/forms.ts: no password', new Date().toISOString()).lastInsertRowid,
      );
  } finally {
    db.close();
  }
  const id = sessionIds.get(name) ?? newSessionId();
  sessionIds.set(name, id);
  const cookie = fake.insertSession(authorId, id);
  done.set(name, cookie);
  return cookie;
}

/** FORM_WRITER's `session=…` pair, the same on every node (sessionOf() seeds it there). */
function writerSession(): string {
  const id = sessionIds.get(FORM_WRITER) ?? newSessionId();
  sessionIds.set(FORM_WRITER, id);
  return `${SESSION_COOKIE}=${id}`;
}

/**
 * The form in a page the app rendered (`/new`, an edit page, or a form shown
 * again after an error). Like a browser's cookie jar, the cookies keep the
 * session: given only `csrf=…`, FORM_WRITER's goes with them.
 */
export function formOf(text: string, cookie: string): Form {
  if (!/(^|;\s*)session=/.test(cookie)) cookie = `${cookie}; ${writerSession()}`;
  const token = /name="_csrf" value="([^"]+)"/.exec(text)?.[1];
  const draft = /name="_draft" value="([^"]+)"/.exec(text)?.[1];
  const revision = /name="_revision" value="([^"]*)"/.exec(text)?.[1];
  const action = /<form class="editor" action="([^"]+)"/.exec(text)?.[1] ?? '/new';
  if (!token || (!draft && revision === undefined)) throw new Error(`no form in: ${text.slice(0, 300)}`);
  return { token, cookie, draft: draft ?? '', revision: revision ? Number(revision) : null, action };
}

/** The `csrf=…` pair a page set, joined with the session the request carried. */
function cookiesAfter(res: request.Response, session: string): string {
  const csrf = (res.headers['set-cookie'] as unknown as string[] | undefined)?.find((c) => c.startsWith('csrf='))?.split(';')[0];
  if (!csrf) throw new Error(`no csrf cookie from ${res.status}: ${res.text.slice(0, 300)}`);
  return `${csrf}; ${session}`;
}

/** Opens `GET /new` as FORM_WRITER, or with the session cookie given. */
export async function openForm(app: App, session = sessionOf(app)): Promise<Form> {
  const res = await request(app).get('/new').set('Cookie', session).expect(200);
  return formOf(res.text, cookiesAfter(res, session));
}

/** Opens an article's edit page as FORM_WRITER, or with the session cookie given. */
export async function openEdit(app: App, id: number, session = sessionOf(app)): Promise<Form> {
  const res = await request(app).get(`/articles/${id}/edit`).set('Cookie', session).expect(200);
  return formOf(res.text, cookiesAfter(res, session));
}

/**
 * POSTs `fields` to the form's action with its token and cookies. Only
 * `fields` and `_csrf` are sent: the draft id (or revision) goes along only
 * when the caller puts it in (see saveEdit()). Posted to another node than
 * the one that rendered it, the form's author is signed in there too.
 */
export function submitForm(app: App, form: Form, fields: Readonly<Record<string, string>>): request.Test {
  sessionOf(app);
  return request(app)
    .post(form.action)
    .set('Cookie', form.cookie)
    .type('form')
    .send({ ...fields, _csrf: form.token });
}

/** Saves an edit: `fields` with the revision the form started from. */
export function saveEdit(app: App, form: Form, fields: Readonly<Record<string, string>>): request.Test {
  return submitForm(app, form, { _revision: String(form.revision ?? ''), ...fields });
}

/**
 * Any form page's CSRF token and cookie, as a browser would hold them
 * (sign-in, setup: pages that need no session; `cookie` to send one).
 */
export async function openPage(app: App, path: string, cookie?: string): Promise<{ token: string; cookie: string }> {
  const get = request(app).get(path);
  const res = await (cookie ? get.set('Cookie', cookie) : get).expect(200);
  const token = /name="_csrf" value="([^"]+)"/.exec(res.text)?.[1];
  if (!token) throw new Error(`no form on ${path}: ${res.text.slice(0, 300)}`);
  const csrf = (res.headers['set-cookie'] as unknown as string[] | undefined)?.find((c) => c.startsWith('csrf='))?.split(';')[0];
  return { token, cookie: csrf ?? cookie! };
}

/** POSTs `fields` with the page's CSRF token and cookie. */
export function postForm(app: App, path: string, page: { token: string; cookie: string }, fields: Record<string, string>): request.Test {
  return request(app)
    .post(path)
    .set('Cookie', page.cookie)
    .type('form')
    .send({ ...fields, _csrf: page.token });
}
