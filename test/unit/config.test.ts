import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DEFAULT_DURABILITY_MODE,
  DEFAULT_DURABILITY_WAIT_MS,
  DEFAULT_FALLBACK,
  DEFAULT_PORT,
  DEFAULT_TTL_S,
  DEFAULT_WAIT_MS,
  loadConfig,
} from '../../src/config.js';

const SECRET = 'a-long-enough-secret-0123456789';

/** `load` throws a ConfigError of one line that begins with the variable's name. */
function expectRefusedNaming(name: string, load: () => unknown): void {
  let thrown: unknown;
  try {
    load();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  const { message } = thrown as ConfigError;
  expect(message.startsWith(`${name}:`), message).toBe(true);
  expect(message).not.toContain('\n');
}

describe('configuration', () => {
  it('has working defaults for a standalone run', () => {
    const config = loadConfig({ HOSTNAME: 'box' });
    expect(config).toMatchObject({
      port: DEFAULT_PORT,
      region: 'local',
      instance: 'box',
      databaseName: 'app.db',
      waitMs: DEFAULT_WAIT_MS,
      fallback: DEFAULT_FALLBACK,
      ttlSeconds: DEFAULT_TTL_S,
      litefsApi: null,
      migrateToken: null,
      ephemeralSecret: true,
      metricsPort: null,
      metricsToken: null,
    });
    expect(config.databasePath).toBe(join(process.cwd(), 'data', 'app.db'));
    expect(config.secrets).toHaveLength(1);
  });

  it('prefers FLY_MACHINE_ID over HOSTNAME', () => {
    expect(loadConfig({ FLY_MACHINE_ID: 'm1', HOSTNAME: 'box' }).instance).toBe('m1');
  });

  it('splits RYW_SECRET into secrets, first one signing', () => {
    expect(loadConfig({ RYW_SECRET: `${SECRET}, old-${SECRET}` }).secrets).toEqual([SECRET, `old-${SECRET}`]);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['RYW_WAIT_MS', '-1'],
    ['RYW_WAIT_MS', '1.5'],
    ['RYW_FALLBACK', 'retry'],
    ['RYW_TTL_S', '0'],
    ['FLY_REGION', 'Frankfurt'],
    ['LITEFS_API', 'not a url'],
    ['RYW_SECRET', 'short'],
    ['MIGRATE_TOKEN', 'short'],
    ['RYW_ENABLED', 'maybe'],
    ['DATABASE_URL', 'file::memory:'],
    ['METRICS_PORT', 'ninety'],
    ['METRICS_PORT', '0'],
    ['METRICS_PORT', '70000'],
    ['METRICS_PORT', String(DEFAULT_PORT)],
    ['METRICS_TOKEN', 'short'],
  ])('rejects %s=%s with one line naming the variable', (name, value) => {
    expectRefusedNaming(name, () => loadConfig({ [name]: value }));
  });

  it('reads METRICS_PORT and METRICS_TOKEN', () => {
    expect(loadConfig({ PORT: '8080', METRICS_PORT: '9091', METRICS_TOKEN: SECRET })).toMatchObject({
      metricsPort: 9091,
      metricsToken: SECRET,
    });
    expect(() => loadConfig({ PORT: '9091', METRICS_PORT: '9091' })).toThrow(/^METRICS_PORT: must differ from PORT/);
  });

  it('requires RYW_SECRET when a -pos file shows LiteFS', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'app.db-pos'), '0000000000000001/0000000000000000\n');
    expect(() => loadConfig({ DATABASE_URL: `file:${dir}/app.db` })).toThrow(/^RYW_SECRET: required on LiteFS/);
    expect(loadConfig({ DATABASE_URL: `file:${dir}/app.db`, RYW_SECRET: SECRET }).ephemeralSecret).toBe(false);
  });

  it('requires RYW_SECRET when LITEFS_API is set', () => {
    expect(() => loadConfig({ LITEFS_API: 'http://127.0.0.1:20202' })).toThrow(/^RYW_SECRET/);
  });
});

describe('durability configuration (RYW_DURABILITY, RYW_STANDBYS, RYW_DURABILITY_WAIT_MS)', () => {
  /** On LiteFS (LITEFS_API says so), as `standby` requires. */
  const onLiteFS = { LITEFS_API: 'http://127.0.0.1:20202', RYW_SECRET: SECRET };

  it('is local by default, waiting 1 s when set to standby', () => {
    expect(DEFAULT_DURABILITY_MODE).toBe('local');
    expect(DEFAULT_DURABILITY_WAIT_MS).toBe(1_000);
    expect(loadConfig({}).durability).toEqual({ mode: 'local', standbys: null, waitMs: DEFAULT_DURABILITY_WAIT_MS });
  });

  it('reads comma-separated LiteFS API URLs', () => {
    const { durability } = loadConfig({
      ...onLiteFS,
      RYW_DURABILITY: 'standby',
      RYW_STANDBYS: 'http://127.0.0.1:20212, http://[fdaa::3]:20202',
      RYW_DURABILITY_WAIT_MS: '250',
    });
    expect(durability.mode).toBe('standby');
    expect(durability.waitMs).toBe(250);
    expect((durability.standbys as URL[]).map((url) => url.href)).toEqual(['http://127.0.0.1:20212/', 'http://[fdaa::3]:20202/']);
  });

  it('reads one DNS name without a scheme as every address behind it, on LiteFS’s port unless given', () => {
    expect(loadConfig({ ...onLiteFS, RYW_DURABILITY: 'standby', RYW_STANDBYS: 'fra.myapp.internal' }).durability.standbys).toEqual({
      dns: 'fra.myapp.internal',
      port: 20202,
    });
    expect(loadConfig({ ...onLiteFS, RYW_STANDBYS: 'fra.myapp.internal:20212' }).durability.standbys).toEqual({
      dns: 'fra.myapp.internal',
      port: 20212,
    });
  });

  it('takes standby without RYW_STANDBYS (a replica never confirms a write; the cluster gives it to candidates only)', () => {
    expect(loadConfig({ ...onLiteFS, RYW_DURABILITY: 'standby' }).durability).toMatchObject({ mode: 'standby', standbys: null });
  });

  it.each([
    ['RYW_DURABILITY', 'sync'],
    ['RYW_STANDBYS', 'ftp://127.0.0.1:20202'],
    ['RYW_STANDBYS', 'http://127.0.0.1:20202,not a url'],
    ['RYW_STANDBYS', 'http://127.0.0.1:20202/events'],
    ['RYW_STANDBYS', 'fra.myapp.internal,syd.myapp.internal'],
    ['RYW_STANDBYS', 'fra_myapp internal'],
    ['RYW_STANDBYS', 'fra.myapp.internal:99999'],
    ['RYW_DURABILITY_WAIT_MS', '0'],
    ['RYW_DURABILITY_WAIT_MS', 'soon'],
    ['RYW_DURABILITY_WAIT_MS', '60000'],
  ])('rejects %s=%s with one line naming the variable', (name, value) => {
    expectRefusedNaming(name, () => loadConfig({ ...onLiteFS, [name]: value }));
  });

  it('refuses standby where there is no LiteFS (standalone): nothing could ever confirm a write', () => {
    expect(() => loadConfig({ RYW_DURABILITY: 'standby' })).toThrow(/^RYW_DURABILITY: standby needs LiteFS/);
  });
});
