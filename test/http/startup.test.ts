import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../tools/cluster/ports.js';

const TSX = join(process.cwd(), 'node_modules', '.bin', 'tsx');

function run(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(TSX, ['src/main.ts'], { env: { PATH: process.env.PATH!, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function waitForHealth(port: number): Promise<unknown> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    if (res?.ok) return res.json();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the app did not answer /healthz on port ${port} within 15 s`);
}

let running: ChildProcess | undefined;
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'start-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  running?.kill('SIGTERM');
  running = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('starting the app', () => {
  it('serves the blog standalone on a fresh SQLite file, migrated at start', async () => {
    const dir = tempDir();
    const port = await freePort();
    const app = run({ PORT: String(port), DATABASE_URL: `file:${dir}/nested/app.db` });
    running = app.child;
    expect(await waitForHealth(port)).toMatchObject({ status: 'ok', role: 'standalone' });
    const home = await fetch(`http://127.0.0.1:${port}/`);
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('No articles yet');
    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(0);
  });

  it('on a replica, never creates or migrates the database, and says it is not ready yet', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, '.primary'), 'fra-1\n');
    const port = await freePort();
    const app = run({ PORT: String(port), DATABASE_URL: `file:${dir}/app.db`, RYW_SECRET: 'a-long-enough-secret-0123456789' });
    running = app.child;
    const health = await waitForHealth(port);
    expect(health).toMatchObject({ role: 'replica', position: null });
    const home = await fetch(`http://127.0.0.1:${port}/`);
    expect(home.status).toBe(503);
    expect(await home.text()).toMatch(/not available yet/);
    // It knows the primary from .primary: writes go there.
    const write = await fetch(`http://127.0.0.1:${port}/new`, { method: 'POST' });
    expect(write.headers.get('fly-replay')).toBe('instance=fra-1');
    expect(existsSync(join(dir, 'app.db'))).toBe(false);
  });

  it('exits with one line naming RYW_SECRET when LiteFS files are there and it is missing', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'app.db-pos'), '0000000000000001/0000000000000000\n');
    const app = run({ PORT: String(await freePort()), DATABASE_URL: `file:${dir}/app.db` });
    running = app.child;
    expect(await app.exited).toBe(1);
    const lines = app.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^litefs-ryw: RYW_SECRET: required on LiteFS/);
  });

  it('exits with one line naming an invalid variable', async () => {
    const app = run({ RYW_FALLBACK: 'sometimes' });
    running = app.child;
    expect(await app.exited).toBe(1);
    expect(app.output().trim()).toMatch(/^litefs-ryw: RYW_FALLBACK: [^\n]+$/);
  });
});
