/**
 * The mount supervisor's decisions, around a stand-in `litefs` (a shell
 * script printing what LiteFS prints) and real files; the real LiteFS is in
 * test/cluster/store-recovery.test.ts.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMountOptions, MountUsageError } from '../../src/mount/options.js';
import { expandEnv, mountArguments, readMountConfig, writeCatchUpConfig, type MountConfig } from '../../src/mount/litefs-config.js';
import {
  leaseHolder,
  otherPrimary,
  QUARANTINE_DIR,
  QUARANTINE_KEEP,
  quarantineDatabase,
  refusedDatabase,
  type LeaseHolder,
} from '../../src/mount/store-recovery.js';
import { CATCH_UP_MARKER_SUFFIX, posFileTxid, superviseMount } from '../../src/mount/supervisor.js';
import { parse as parseYaml } from 'yaml';
import { until } from '../support/until.js';

/** What LiteFS v0.5.14 printed here for a primary SIGKILLed during writes. */
const REFUSED =
  'ERROR: cannot open store: open databases: open database("app.db"): recover ltx: database checksum 89da7ff308ee3c7e on TXID 000000000000006f does not match LTX post-apply checksum ab5ee944d6341f57';
const PRIMARY: LeaseHolder = { hostname: 'fra-2', advertiseUrl: 'http://127.0.0.1:1' };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mount-supervisor-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * A `litefs` that acts out what LiteFS does with the config it is given:
 * with the supervisor's catch-up config it "receives the snapshot" (writes
 * `mnt/app.db-pos`, unless `no-snapshot` exists) and waits for SIGTERM; else,
 * while `data/dbs/app.db/damaged` exists, it prints `refusal` and exits 1
 * (or, with `wait-after-error`, waits for a signal as LiteFS does with
 * `exit-on-error: false`); else it counts a start and exits 0. Every run is
 * noted in `runs`.
 */
async function fakeLitefs(refusal = REFUSED): Promise<string> {
  const script = join(dir, 'litefs');
  await writeFile(
    script,
    `#!/bin/sh
D="${dir}"
trap 'echo term >> "$D/runs"; exit 0' TERM INT
case "$3" in
  *catch-up-litefs.yml)
    echo catch-up >> "$D/runs"; cp "$3" "$D/catch-up-config.yml"; echo "$@" > "$D/catch-up-args"
    if [ -f "$D/data/dbs/other.db/damaged" ]; then
      echo refused-other >> "$D/runs"
      trap 'exit 1' TERM INT
      echo 'ERROR: cannot open store: open databases: open database("other.db"): recover ltx: database checksum 1 on TXID 2 does not match LTX post-apply checksum 3' >&2
      exit 1
    fi
    [ -f "$D/catch-up-error" ] && echo 'ERROR: cannot init http server: listen tcp :20202: bind: address already in use' >&2
    [ -f "$D/no-snapshot" ] || [ -f "$D/catch-up-error" ] || {
      mkdir -p "$D/mnt"; for db in app.db other.db; do printf '0000000000000007/00000000000000ab\\n' > "$D/mnt/$db-pos"; done
    }
    while true; do sleep 0.05; done ;;
esac
if [ -f "$D/mounted-then-app-says-it" ]; then
  echo 'level=INFO msg="LiteFS mounted to: /litefs"' >&2
  echo '${refusal}' >&2
  echo start >> "$D/runs"
  exit 0
fi
if [ -f "$D/data/dbs/app.db/damaged" ]; then
  echo refused >> "$D/runs"
  # Exits 1 on its own; the supervisor's SIGTERM may come first: the same exit, no run noted.
  [ -f "$D/wait-after-error" ] || trap 'exit 1' TERM INT
  echo 'level=INFO msg="no backup client configured, skipping"' >&2
  echo '${refusal}' >&2
  [ -f "$D/wait-after-error" ] || exit 1
  echo 'waiting for signal or subprocess to exit'
  while true; do sleep 0.05; done
fi
echo start >> "$D/runs"
exit 0
`,
  );
  await chmod(script, 0o755);
  await mkdir(join(dir, 'data', 'dbs', 'app.db'), { recursive: true });
  await writeFile(join(dir, 'data', 'dbs', 'app.db', 'damaged'), '');
  await writeFile(
    join(dir, 'litefs.yml'),
    JSON.stringify({
      fuse: { dir: join(dir, 'mnt') },
      data: { dir: join(dir, 'data') },
      lease: { type: 'consul', candidate: true, promote: true, consul: { url: 'http://127.0.0.1:1', key: 'k' } },
      exec: [{ cmd: 'node app.js' }],
    }),
  );
  return script;
}

const consulConfig = (): MountConfig => ({
  dataDir: join(dir, 'data'),
  fuseDir: join(dir, 'mnt'),
  consul: { url: new URL('http://127.0.0.1:1'), key: 'litefs-ryw/app', hostname: 'fra-1' },
  noLeaseReason: null,
});

async function supervise(
  litefs: string,
  {
    config = consulConfig(),
    primary = PRIMARY,
    catchUpTimeoutMs = 5_000,
    whileLooking = () => {},
  }: { config?: MountConfig; primary?: LeaseHolder | null; catchUpTimeoutMs?: number; whileLooking?: () => void } = {},
): Promise<{ code: number; lines: string[]; lookups: number }> {
  const lines: string[] = [];
  let lookups = 0;
  const code = await superviseMount({
    command: [litefs, 'mount', '-config', join(dir, 'litefs.yml')],
    configPath: join(dir, 'litefs.yml'),
    config,
    recoveryWaitMs: 1000,
    catchUpTimeoutMs,
    log: (line) => lines.push(line),
    findPrimary: async () => {
      lookups++;
      whileLooking();
      return primary;
    },
  });
  return { code, lines, lookups };
}

/**
 * A `litefs` that exits 3 at once, leaving behind a child that holds the
 * stderr pipe for 30 s, as the app LiteFS exec'd would; the child is killed
 * after `use`.
 */
async function withLitefsThatDiesAlone(use: (script: string) => Promise<void>): Promise<void> {
  const script = join(dir, 'litefs-dies');
  await writeFile(script, `#!/bin/sh\nsleep 30 &\necho $! > "${dir}/app.pid"\nexit 3\n`);
  await chmod(script, 0o755);
  try {
    await use(script);
  } finally {
    const pid = await readFile(join(dir, 'app.pid'), 'utf8').catch(() => '');
    if (pid !== '') process.kill(Number(pid));
  }
}

const runs = async () => (existsSync(join(dir, 'runs')) ? (await readFile(join(dir, 'runs'), 'utf8')).trim().split('\n') : []);
const quarantined = async () =>
  (await readdir(join(dir, 'data', QUARANTINE_DIR)).catch(() => [] as string[])).filter((n) => /T[\d-]+Z$/.test(n));

describe('the mount supervisor', () => {
  it('moves a refused database aside once another node is primary, catches up as a non-candidate, then runs LiteFS as configured', async () => {
    const { code, lines } = await supervise(await fakeLitefs());
    expect(code).toBe(0);
    expect(await runs()).toEqual(['refused', 'catch-up', 'term', 'start']);
    expect(existsSync(join(dir, 'data', 'dbs', 'app.db', 'damaged'))).toBe(false);
    const kept = await quarantined();
    expect(kept).toEqual([expect.stringMatching(/^app\.db\.\d{4}-\d\d-\d\dT/)]);
    expect(existsSync(join(dir, 'data', QUARANTINE_DIR, kept[0]!, 'damaged'))).toBe(true);
    // Until it has the snapshot, the node could not have taken the lease, nor run the app on nothing.
    const catchUp = parseYaml(await readFile(join(dir, 'catch-up-config.yml'), 'utf8')) as Record<string, Record<string, unknown>>;
    expect(catchUp.lease).toMatchObject({ type: 'consul', candidate: false, promote: false });
    expect(catchUp.exec).toBeUndefined();
    expect(catchUp.data).toEqual({ dir: join(dir, 'data') });
    expect(existsSync(join(dir, 'data', QUARANTINE_DIR, `app.db${CATCH_UP_MARKER_SUFFIX}`))).toBe(false);
    expect(lines.join('\n')).toMatch(/moved app\.db aside to .*\n.*catching up app\.db from fra-2 as a non-candidate/);
  });

  it('stops a LiteFS that printed the refusal and waits (exit-on-error: false, as the project runs it), and recovers the same', async () => {
    const litefs = await fakeLitefs();
    await writeFile(join(dir, 'wait-after-error'), '');
    const { code } = await supervise(litefs);
    expect(code).toBe(0);
    expect(await runs()).toEqual(['refused', 'term', 'catch-up', 'term', 'start']);
  });

  it('leaves the database where it is when no other node becomes primary (it may hold the only copy)', async () => {
    const { code, lines } = await supervise(await fakeLitefs(), { primary: null });
    expect(code).toBe(1);
    expect(await runs()).toEqual(['refused']);
    expect(existsSync(join(dir, 'data', 'dbs', 'app.db', 'damaged'))).toBe(true);
    expect(await quarantined()).toEqual([]);
    expect(lines.at(-1)).toMatch(/no other node became primary: app\.db is left as it is/);
  });

  it('exits as LiteFS did for any other failure, without looking for a primary', async () => {
    const { code, lookups } = await supervise(
      await fakeLitefs('ERROR: cannot init http server: cannot open http server: listen tcp 127.0.0.1:40415: bind: address already in use'),
    );
    expect(code).toBe(1);
    expect(lookups).toBe(0);
    expect(existsSync(join(dir, 'data', 'dbs', 'app.db', 'damaged'))).toBe(true);
  });

  it('does nothing without a Consul lease to ask, and says why', async () => {
    const { code, lines, lookups } = await supervise(await fakeLitefs(), {
      config: { ...consulConfig(), consul: null, noLeaseReason: 'the lease is "static", not consul' },
    });
    expect(code).toBe(1);
    expect(lookups).toBe(0);
    expect(lines.join('\n')).toContain('not recovering app.db: the lease is "static", not consul');
    expect(existsSync(join(dir, 'data', 'dbs', 'app.db', 'damaged'))).toBe(true);
  });

  it('recovers once per start: a second refusal is an exit, not a loop of moves', async () => {
    const litefs = await fakeLitefs();
    // Whatever is moved aside, the next configured start finds a damaged database again.
    const again = join(dir, 'litefs-again');
    await writeFile(
      again,
      `#!/bin/sh\ncase "$3" in *catch-up*) ;; *) mkdir -p "${dir}/data/dbs/app.db" && touch "${dir}/data/dbs/app.db/damaged" ;; esac\nexec "${litefs}" "$@"\n`,
    );
    await chmod(again, 0o755);
    const { code, lookups, lines } = await supervise(again);
    expect(code).toBe(1);
    expect(lookups).toBe(1);
    expect(await quarantined()).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/refused again after catching up/);
  });

  it('never runs as a candidate with nothing: a catch-up that did not finish is finished first at the next start', async () => {
    const litefs = await fakeLitefs();
    await writeFile(join(dir, 'no-snapshot'), '');
    const first = await supervise(litefs, { catchUpTimeoutMs: 600 });
    expect(first.code).toBe(1);
    expect(await runs()).toEqual(['refused', 'catch-up', 'term']);
    expect(existsSync(join(dir, 'data', QUARANTINE_DIR, `app.db${CATCH_UP_MARKER_SUFFIX}`))).toBe(true);

    // The next start (the platform restarts the machine): no primary, so nothing runs at all.
    await rm(join(dir, 'runs'));
    expect((await supervise(litefs, { primary: null })).code).toBe(1);
    expect(await runs()).toEqual([]);

    // With a primary and a snapshot to take, the catch-up comes before LiteFS as configured.
    await rm(join(dir, 'no-snapshot'));
    const third = await supervise(litefs);
    expect(third.code).toBe(0);
    expect(await runs()).toEqual(['catch-up', 'term', 'start']);
    expect(existsSync(join(dir, 'data', QUARANTINE_DIR, `app.db${CATCH_UP_MARKER_SUFFIX}`))).toBe(false);
  });

  it('passes signals on to LiteFS and exits with it; a signal while it looks for a primary moves nothing', async () => {
    const litefs = await fakeLitefs();
    await writeFile(join(dir, 'wait-after-error'), '');
    const stopped = await supervise(litefs, { whileLooking: () => process.emit('SIGTERM', 'SIGTERM') });
    // A stop that was asked for: a clean exit, nothing moved, nothing started again.
    expect(stopped.code).toBe(0);
    expect(await runs()).toEqual(['refused', 'term']);
    expect(existsSync(join(dir, 'data', 'dbs', 'app.db', 'damaged'))).toBe(true);

    // While LiteFS runs as it should: it gets the signal (SIGHUP as SIGTERM: LiteFS would die of it alone) and its exit is ours.
    const serving = join(dir, 'litefs-serving');
    await writeFile(
      serving,
      `#!/bin/sh\ntrap 'echo term >> "${dir}/serving"; exit 7' TERM\necho up >> "${dir}/serving"\nwhile true; do sleep 0.05; done\n`,
    );
    await chmod(serving, 0o755);
    const running = supervise(serving);
    await until(() => existsSync(join(dir, 'serving')));
    process.emit('SIGHUP', 'SIGHUP');
    expect((await running).code).toBe(7);
    expect((await readFile(join(dir, 'serving'), 'utf8')).trim().split('\n')).toEqual(['up', 'term']);
  });

  it('does not wait on the app’s copy of stderr when LiteFS exits alone', async () => {
    await withLitefsThatDiesAlone(async (script) => {
      const startedAt = performance.now();
      const { code } = await supervise(script);
      expect(code).toBe(3);
      expect(performance.now() - startedAt).toBeLessThan(10_000);
    });
  });

  it('finishes a move a crash interrupted (the marker written, the database still in place) before LiteFS runs as configured', async () => {
    const litefs = await fakeLitefs();
    await mkdir(join(dir, 'data', QUARANTINE_DIR), { recursive: true });
    await writeFile(join(dir, 'data', QUARANTINE_DIR, `app.db${CATCH_UP_MARKER_SUFFIX}`), '');
    const { code } = await supervise(litefs);
    expect(code).toBe(0);
    expect(await runs()).toEqual(['catch-up', 'term', 'start']);
    expect(await quarantined()).toHaveLength(1);
    expect(existsSync(join(dir, 'data', 'dbs', 'app.db'))).toBe(false);
  });

  it('moves aside a second database LiteFS refuses during the catch-up (it opens them all), and catches both up', async () => {
    const litefs = await fakeLitefs();
    await mkdir(join(dir, 'data', 'dbs', 'other.db'), { recursive: true });
    await writeFile(join(dir, 'data', 'dbs', 'other.db', 'damaged'), '');
    const { code, lines } = await supervise(litefs);
    expect(code).toBe(0);
    expect(await runs()).toEqual(['refused', 'catch-up', 'refused-other', 'catch-up', 'term', 'start']);
    expect((await quarantined()).map((n) => n.replace(/\.\d{4}-.*$/, '')).sort()).toEqual(['app.db', 'other.db']);
    expect(lines.join('\n')).toMatch(/app\.db at TXID 7, other\.db at TXID 7: caught up from fra-2/);
  });

  it('ends a catch-up run that fails otherwise at once, not after the catch-up timeout', async () => {
    const litefs = await fakeLitefs();
    await writeFile(join(dir, 'catch-up-error'), '');
    const startedAt = performance.now();
    const { code, lines } = await supervise(litefs, { catchUpTimeoutMs: 60_000 });
    expect(code).toBe(1);
    expect(performance.now() - startedAt).toBeLessThan(30_000);
    expect(lines.at(-1)).toMatch(/did not catch up \(LiteFS failed\)/);
  });

  it('runs the catch-up without the `-- cmd` a command line may give LiteFS to exec', async () => {
    const litefs = await fakeLitefs();
    const lines: string[] = [];
    const code = await superviseMount({
      command: [litefs, 'mount', '-config', join(dir, 'litefs.yml'), '--', 'node', 'app.js'],
      configPath: join(dir, 'litefs.yml'),
      config: consulConfig(),
      recoveryWaitMs: 1000,
      log: (line) => lines.push(line),
      findPrimary: () => Promise.resolve(PRIMARY),
    });
    expect(code).toBe(0);
    expect((await readFile(join(dir, 'catch-up-args'), 'utf8')).trim()).toBe(
      `mount -config ${join(dir, 'data', QUARANTINE_DIR, 'catch-up-litefs.yml')}`,
    );
  });

  it('reads no refusal in what the app prints once LiteFS has mounted', async () => {
    const litefs = await fakeLitefs();
    await writeFile(join(dir, 'mounted-then-app-says-it'), '');
    const { code, lookups } = await supervise(litefs);
    expect(code).toBe(0);
    expect(lookups).toBe(0);
    expect(existsSync(join(dir, 'data', 'dbs', 'app.db', 'damaged'))).toBe(true);
  });

  it('exits as soon as LiteFS does, as a process, though the app still holds its stderr', async () => {
    await withLitefsThatDiesAlone(async (script) => {
      const startedAt = performance.now();
      const exit = await new Promise<number | null>((resolve) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', 'src/mount.ts', '--', script, 'mount', '-config', join(dir, 'none.yml')],
          {
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        child.stderr.resume();
        child.once('exit', resolve);
      });
      expect(exit).toBe(3);
      expect(performance.now() - startedAt).toBeLessThan(15_000);
    });
  });

  it('exits with the code of a LiteFS that is not there', async () => {
    const { code } = await supervise(join(dir, 'no-such-litefs'));
    expect(code).toBe(127);
  });
});

describe('reading what LiteFS printed', () => {
  it('names the database LiteFS refused for not matching its LTX history, in either wording', () => {
    expect(refusedDatabase(`level=INFO msg="x"\n${REFUSED}\n`)).toBe('app.db');
    // LiteFS issue #166's wording of the same check.
    expect(
      refusedDatabase(
        'ERROR: cannot open store: open databases: open database("sqlite.db"): verify database file: database checksum (8e113fa03b9d0d94) does not match latest LTX checksum (a63e6e8277b05b46)',
      ),
    ).toBe('sqlite.db');
  });

  it('names nothing for other failures, nor a name that is a path', () => {
    expect(refusedDatabase('ERROR: cannot open store: open databases: open database("app.db"): permission denied')).toBeNull();
    expect(refusedDatabase(REFUSED.replace('"app.db"', '"../app.db"'))).toBeNull();
    expect(refusedDatabase(REFUSED.replace('"app.db"', '".."'))).toBeNull();
  });
});

describe('reading how far the catch-up got', () => {
  it('reads the TXID of a -pos file as LiteFS writes it, and nothing else', () => {
    expect(posFileTxid('000000000000006f/ab5ee944d6341f57\n')).toBe(111n);
    expect(posFileTxid('0000000000000000/0000000000000000\n')).toBe(0n);
    expect(posFileTxid('')).toBeNull();
    expect(posFileTxid('6f/ab')).toBeNull();
  });
});

describe('moving a database aside', () => {
  it('keeps the first copy (the likeliest to hold writes nobody else has) and the latest, so that a crash loop cannot fill the volume', async () => {
    expect(QUARANTINE_KEEP).toBe(2);
    const data = join(dir, 'data');
    const moved: string[] = [];
    // Another database whose name starts the same, and a marker: neither is this database's copy.
    await mkdir(join(data, QUARANTINE_DIR, 'app.db.v2.2026-11-01T00-00-00-000Z'), { recursive: true });
    await writeFile(join(data, QUARANTINE_DIR, `app.db${CATCH_UP_MARKER_SUFFIX}`), '');
    for (let i = 0; i < 4; i++) {
      await mkdir(join(data, 'dbs', 'app.db'), { recursive: true });
      await writeFile(join(data, 'dbs', 'app.db', 'database'), String(i));
      moved.push(await quarantineDatabase(data, 'app.db', new Date(Date.UTC(2026, 11, 1, 12, 0, i))));
    }
    const kept = (await readdir(join(data, QUARANTINE_DIR))).map((name) => join(data, QUARANTINE_DIR, name)).sort();
    expect(kept).toEqual(
      [
        moved[0]!,
        moved[3]!,
        join(data, QUARANTINE_DIR, `app.db${CATCH_UP_MARKER_SUFFIX}`),
        join(data, QUARANTINE_DIR, 'app.db.v2.2026-11-01T00-00-00-000Z'),
      ].sort(),
    );
  });
});

describe('reading litefs.yml as LiteFS does', () => {
  const fly = { FLY_CONSUL_URL: 'https://:s3cret@consul-fra.fly-shared.net/blog-abc123/', FLY_APP_NAME: 'blog', FLY_MACHINE_ID: 'e2865' };

  it("finds the project's data dir, Consul and lease name, with Fly's variables expanded", async () => {
    const config = await readMountConfig('litefs.yml', { expand: true, env: fly });
    expect(config.dataDir).toBe('/var/lib/litefs');
    expect(config.consul?.url.href).toBe(fly.FLY_CONSUL_URL);
    expect(config.consul?.key).toBe('litefs-ryw/blog');
    expect(config.consul?.hostname).toBe('e2865');
  });

  it('turns recovery off, saying why, for a static lease or a field it cannot read', async () => {
    const file = join(dir, 'litefs.yml');
    await writeFile(file, JSON.stringify({ fuse: { dir: '/f' }, data: { dir: '/d' }, lease: { type: 'static', candidate: true } }));
    expect(await readMountConfig(file, { expand: true, env: {} })).toEqual({
      dataDir: '/d',
      fuseDir: '/f',
      consul: null,
      noLeaseReason: 'the lease is "static", not consul',
    });
    await writeFile(
      file,
      JSON.stringify({ fuse: { dir: '/f' }, lease: { type: 'consul', hostname: '${A == B}', consul: { url: 'http://c', key: 'k' } } }),
    );
    expect((await readMountConfig(file, { expand: true, env: {} })).consul).toBeNull();
    // A data dir it cannot read is not guessed at.
    await writeFile(file, JSON.stringify({ fuse: { dir: '/f' }, data: { dir: '$1/x' }, lease: { type: 'consul' } }));
    expect(await readMountConfig(file, { expand: true, env: {} })).toMatchObject({
      consul: null,
      noLeaseReason: 'data.dir or fuse.dir could not be read',
    });
  });

  it("writes the catch-up config as the project's, quoting kept (LiteFS expands the raw text), but no candidate, no promotion, nothing to exec, readable by its owner only", async () => {
    const file = join(dir, 'catch-up.yml');
    await writeCatchUpConfig('litefs.yml', file);
    const written = await readFile(file, 'utf8');
    expect(written).toContain('hostname: "${FLY_MACHINE_ID}"');
    expect(written).toContain('url: "${FLY_CONSUL_URL}"');
    const doc = parseYaml(written) as Record<string, Record<string, unknown>>;
    expect(doc.lease).toMatchObject({ type: 'consul', candidate: false, promote: false });
    expect(doc.exec).toBeUndefined();
    expect(doc.data).toEqual({ dir: '/var/lib/litefs' });
    expect(doc.fuse).toEqual({ dir: '/litefs' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('expands $NAME and ${NAME} (unset: empty), and refuses expressions', () => {
    expect(expandEnv('a-${X}-$Y-$Z', { X: '1', Y: '2' })).toBe('a-1-2-');
    expect(expandEnv('${FLY_REGION == PRIMARY_REGION}', {})).toBeNull();
  });

  it('finds -config and -no-expand-env however LiteFS is called', () => {
    expect(mountArguments(['mount', '-config', '/app/litefs.yml'])).toEqual({ configPath: '/app/litefs.yml', expandEnv: true });
    expect(mountArguments(['mount', '--config=/x.yml', '-no-expand-env'])).toEqual({ configPath: '/x.yml', expandEnv: false });
  });

  it('takes the command after --, and refuses a bad LITEFS_RECOVERY_WAIT_MS in one line', () => {
    expect(loadMountOptions(['--', 'litefs', 'mount'], {}).command).toEqual(['litefs', 'mount']);
    expect(() => loadMountOptions(['--'], {})).toThrow(MountUsageError);
    expect(() => loadMountOptions(['--', 'litefs'], { LITEFS_RECOVERY_WAIT_MS: 'soon' })).toThrow(/^LITEFS_RECOVERY_WAIT_MS: /);
    expect(() => loadMountOptions(['--', 'litefs'], { LITEFS_RECOVERY_WAIT_MS: '600001' })).toThrow(/^LITEFS_RECOVERY_WAIT_MS: /);
    expect(loadMountOptions(['--', 'litefs'], { LITEFS_RECOVERY_WAIT_MS: '2500' }).recoveryWaitMs).toBe(2500);
  });
});

describe('asking Consul who holds the lease', () => {
  let consul: Server;
  let seen: IncomingMessage[] = [];
  let answer: { status: number; body: unknown };
  /** What the holder's LiteFS says at `/info` (the same server plays it). */
  let isPrimary = true;
  beforeEach(async () => {
    seen = [];
    consul = createServer((req, res) => {
      seen.push(req);
      if (req.url === '/info') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ isPrimary }));
      else res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => consul.listen(0, '127.0.0.1', resolve));
  });
  afterEach(() => new Promise<void>((resolve) => consul.close(() => resolve())));
  const lease = (path = '/blog-abc123/') => {
    const { port } = consul.address() as { port: number };
    return { url: new URL(`http://:s3cret@127.0.0.1:${port}${path}`), key: 'litefs-ryw/blog', hostname: 'fra-1' };
  };
  const value = (info: object) => Buffer.from(JSON.stringify(info)).toString('base64');

  it('reads the key under the URL’s prefix with its token, as LiteFS does', async () => {
    answer = { status: 200, body: [{ Session: 'abc', Value: value({ hostname: 'fra-2', 'advertise-url': 'http://fra-2:20202' }) }] };
    expect(await leaseHolder(lease())).toEqual({ hostname: 'fra-2', advertiseUrl: 'http://fra-2:20202' });
    expect(seen[0]!.url).toBe('/v1/kv/blog-abc123/litefs-ryw/blog');
    expect(seen[0]!.headers['x-consul-token']).toBe('s3cret');
  });

  it('says nobody holds it when the key is missing, unlocked or unreadable', async () => {
    answer = { status: 404, body: [] };
    expect(await leaseHolder(lease())).toBeNull();
    answer = { status: 200, body: [{ Value: value({ hostname: 'fra-2', 'advertise-url': 'http://fra-2:20202' }) }] };
    expect(await leaseHolder(lease())).toBeNull();
    answer = { status: 200, body: [{ Session: 'abc', Value: 'not base64 json' }] };
    expect(await leaseHolder(lease())).toBeNull();
  });

  it('waits for another node that holds the lease and answers as primary: not itself (its crashed lease outlives it), not a holder that says it is not', async () => {
    const { port } = consul.address() as { port: number };
    const holding = (hostname: string) => ({
      status: 200,
      body: [{ Session: 'abc', Value: value({ hostname, 'advertise-url': `http://127.0.0.1:${port}` }) }],
    });
    answer = holding('fra-1');
    let startedAt = performance.now();
    expect(await otherPrimary(lease(), { waitMs: 1200 })).toBeNull();
    expect(performance.now() - startedAt).toBeGreaterThan(900);
    answer = holding('fra-2');
    isPrimary = false;
    expect(await otherPrimary(lease(), { waitMs: 600 })).toBeNull();
    isPrimary = true;
    startedAt = performance.now();
    expect(await otherPrimary(lease(), { waitMs: 5000 })).toEqual({ hostname: 'fra-2', advertiseUrl: `http://127.0.0.1:${port}` });
    expect(performance.now() - startedAt).toBeLessThan(2000);
  });
});
