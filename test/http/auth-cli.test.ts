import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/http/auth.js';
import { cookiePair, FakeLiteFS } from '../support/fake-litefs.js';

let fs: FakeLiteFS;
afterEach(() => fs?.close());

const PASSWORD = 'a long pass phrase from stdin';

/** `npm run author -- <args>` on the fake's database, with `stdin` piped in (so never a TTY). */
function author(
  args: string[],
  stdin: string,
  dbPath: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'author', '--', ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: `file:${dbPath}`, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

const authorNames = (dbPath: string) => {
  const db = new Database(dbPath, { readonly: true });
  const names = (db.prepare('SELECT name FROM authors').all() as { name: string }[]).map((r) => r.name);
  db.close();
  return names;
};

describe('npm run author -- add <name>', () => {
  it('creates an author from a shell, password on stdin, who can then sign in', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const run = await author(['add', 'Ada Lovelace'], `${PASSWORD}\n`, fs.dbPath);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Created author Ada Lovelace \(id 1\)/);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);

    const { app } = fs.app();
    // /setup is closed: the blog has its author.
    await request(app).get('/setup').expect(303);
    const page = await request(app).get('/signin').expect(200);
    const res = await request(app)
      .post('/signin')
      .set('Cookie', cookiePair(page.headers, 'csrf')!)
      .type('form')
      .send({ name: 'Ada Lovelace', password: PASSWORD, _csrf: /name="_csrf" value="([^"]+)"/.exec(page.text)![1]! })
      .expect(303);
    const home = await request(app).get('/').set('Cookie', cookiePair(res.headers, SESSION_COOKIE)!).expect(200);
    expect(home.text).toContain('Signed in as <strong dir="auto">Ada Lovelace</strong>');
  }, 20_000);

  it('creates and migrates the database when there is none yet (before the first npm start)', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const fresh = `${fs.dir}/new/app.db`;
    const run = await author(['add', 'Ada'], `${PASSWORD}\r\n`, fresh);
    expect(run.code).toBe(0);
    expect(authorNames(fresh)).toEqual(['Ada']);
  }, 20_000);

  it.each([
    [[], 2, /^author: no command given \(usage: npm run author -- add <name>/],
    [['remove', 'Ada'], 2, /^author: unknown command "remove"/],
    [['add'], 2, /^author: add needs the author's name/],
    [['add', 'Ada', PASSWORD], 2, /^author: add takes one name .*the password is never an argument/],
    [['add', '<Ada>'], 1, /^author: Names are letters, digits and spaces/],
  ])(
    'refuses %j with one line and exit code %i',
    async (args, code, message) => {
      fs = new FakeLiteFS({ role: 'standalone' });
      const run = await author(args, `${PASSWORD}\n`, fs.dbPath);
      expect(run.code).toBe(code);
      expect(run.stderr).toMatch(message);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(authorNames(fs.dbPath)).toEqual([]);
    },
    20_000,
  );

  it('refuses a short or missing password, a taken name, and a replica, with exit code 1', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    expect(await author(['add', 'Ada'], 'short\n', fs.dbPath)).toMatchObject({
      code: 1,
      stderr: 'author: Choose a password of at least 10 characters.\n',
    });
    expect(await author(['add', 'Ada'], '', fs.dbPath)).toMatchObject({
      code: 1,
      stderr: 'author: no password on stdin (give it on the first line)\n',
    });
    expect((await author(['add', 'Ada'], `${PASSWORD}\n`, fs.dbPath)).code).toBe(0);
    expect(await author(['add', 'ADA'], `${PASSWORD}\n`, fs.dbPath)).toMatchObject({
      code: 1,
      stderr: 'author: There is already an author named ADA.\n',
    });
    expect(authorNames(fs.dbPath)).toEqual(['Ada']);

    const replica = new FakeLiteFS({ role: 'replica' });
    try {
      // A LiteFS replica cannot write: the command says where to run it, in one line.
      const run = await author(['add', 'Bob'], `${PASSWORD}\n`, replica.dbPath, { RYW_SECRET: 'a-secret-of-16-chars-or-more' });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^author: this instance is a LiteFS replica \(.*\.primary exists\): run the command on the primary\n$/);
      // Its configuration is the app's: on LiteFS it needs RYW_SECRET like the app does.
      expect(await author(['add', 'Bob'], `${PASSWORD}\n`, replica.dbPath)).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/^author: RYW_SECRET: required on LiteFS/),
      });
      expect(authorNames(replica.dbPath)).toEqual([]);
    } finally {
      replica.close();
    }
  }, 40_000);
});
