/**
 * The app's article form as the HTTP tests use it through supertest: open
 * `GET /new` (its CSRF token, the matching `csrf` cookie and its draft id),
 * then submit fields with that token and cookie, as a browser would.
 */
import request from 'supertest';

export type App = Parameters<typeof request>[0];

export interface Form {
  readonly token: string;
  /** The `csrf=…` pair, ready for a Cookie header. */
  readonly cookie: string;
  readonly draft: string;
}

/** The form in a page the app rendered (`/new`, or a form shown again after an error). */
export function formOf(text: string, cookie: string): Form {
  const token = /name="_csrf" value="([^"]+)"/.exec(text)?.[1];
  const draft = /name="_draft" value="([^"]+)"/.exec(text)?.[1];
  if (!token || !draft) throw new Error(`no form in: ${text.slice(0, 300)}`);
  return { token, cookie, draft };
}

export async function openForm(app: App): Promise<Form> {
  const res = await request(app).get('/new').expect(200);
  const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('csrf='))!.split(';')[0]!;
  return formOf(res.text, cookie);
}

/**
 * POSTs `fields` to /new with the form's token and cookie. Only `fields` and
 * `_csrf` are sent: the draft id goes along only when the caller puts it in.
 */
export function submitForm(app: App, form: Form, fields: Readonly<Record<string, string>>): request.Test {
  return request(app).post('/new').set('Cookie', form.cookie).type('form').send({ ...fields, _csrf: form.token });
}
