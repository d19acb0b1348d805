import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTxid } from '../src/ryw/position.js';
import { signToken, tokenPayload } from '../src/ryw/token.js';
import { fakeEvents, type FakeEvents } from '../test/support/fake-events.js';
import { BENCH_SECRET, FakeReplicaDir, startProcess, startReplicaApp, type AppProcess } from './support/app-process.js';
import { summarizeProfile, type CpuProfile, type ProfileSummary } from './support/cpu-profile.js';
import { load } from './support/load.js';
import { capturedPage, fixtureKey, MEMORY_SERVER_SCRIPT } from './support/memory-server.js';
import { rawGet } from './support/raw-http.js';
import type { BenchMode } from './types.js';

/**
 * 10. Where the time goes: `node --cpu-prof` on the replica app while it
 * serves `GET /` with a met token, the page cache off (before) and on
 * (after), on the same LiteFS-shaped replica as section 8; and Express
 * sending that page's bytes from memory, the floor the goal is set against. Only the samples
 * taken while the load ran count (not the start, when tsx compiles every
 * module, nor the exit).
 */

const POSITION = 1_000n;
const ARTICLES = 60;
const CONNECTIONS = 10;
/** Before, after, and the floor: Express sending the very bytes of the cache-on app from memory. */
export const PROFILED = ['cache off', 'cache on', 'Express from memory'] as const;

export interface ProfileRun {
  readonly cache: (typeof PROFILED)[number];
  readonly rps: number;
  /** Requests answered while profiled. */
  readonly requests: number;
  readonly summary: ProfileSummary;
}

export interface ProfileResult {
  readonly durationS: number;
  readonly connections: number;
  readonly runs: readonly ProfileRun[];
}

const hrtimeUs = () => Number(process.hrtime.bigint() / 1000n);

export async function benchProfile(mode: BenchMode): Promise<ProfileResult> {
  const durationS = mode.quick ? 1 : 10;
  const dir = new FakeReplicaDir(ARTICLES, POSITION);
  let events: FakeEvents | null = null;
  const runs: ProfileRun[] = [];
  try {
    events = await fakeEvents({ isPrimary: false, hostname: 'fra-1' });
    const cookie = `ryw=${encodeURIComponent(signToken(tokenPayload(POSITION, Date.now()), [BENCH_SECRET]))}`;
    const pagesFile = join(dir.dir, 'pages.json');
    const cpuProf = (profiles: string) => ['--cpu-prof', `--cpu-prof-dir=${profiles}`];
    const api = { LITEFS_API: events.url.href.replace(/\/$/, '') };
    for (const cache of PROFILED) {
      const profiles = mkdtempSync(join(tmpdir(), 'bench-profile-'));
      let app: AppProcess | null = null;
      try {
        if (cache === 'Express from memory') {
          app = await startProcess([process.execPath, ...cpuProf(profiles), '--import', 'tsx', MEMORY_SERVER_SCRIPT], {
            MEMORY_SERVER: 'express',
            MEMORY_PAGES: pagesFile,
          });
        } else {
          app = await startReplicaApp(dir, { ...api, ...(cache === 'cache off' ? { PAGE_CACHE_MB: '0' } : {}) }, cpuProf(profiles));
          events.send(formatTxid(POSITION));
          // The bytes the floor sends: this app's own page (the cache-on run comes before it).
          await rawGet(`${app.url}/`, { cookie });
          writeFileSync(pagesFile, JSON.stringify({ [fixtureKey('/', undefined)]: capturedPage(await rawGet(`${app.url}/`, { cookie })) }));
        }
        const request = { url: `${app.url}/`, headers: { cookie }, connections: CONNECTIONS };
        await load({ ...request, durationS: 1 }); // warm: the JIT settles before anything counts
        const from = hrtimeUs();
        const result = await load({ ...request, durationS });
        const to = hrtimeUs();
        if (result.non2xx > 0 || result.errors > 0) throw new Error(`profile ${cache}: ${result.non2xx} non-2xx, ${result.errors} errors`);
        await app.stop(); // the profile is written as the process exits
        app = null;
        const file = readdirSync(profiles).find((f) => f.endsWith('.cpuprofile'));
        if (!file) throw new Error(`profile ${cache}: node --cpu-prof wrote no profile`);
        const profile = JSON.parse(readFileSync(join(profiles, file), 'utf8')) as CpuProfile;
        const summary = summarizeProfile(profile, from, to);
        runs.push({ cache, rps: result.rps, requests: result.latency.count, summary });
        mode.log(
          `profile ${cache}: ${Math.round(result.rps)} req/s; top: ${summary.topSelf
            .slice(0, 3)
            .map((s) => `${s.name} ${(s.share * 100).toFixed(1)} %`)
            .join(', ')}`,
        );
      } finally {
        await app?.stop();
        rmSync(profiles, { recursive: true, force: true });
      }
    }
    return { durationS, connections: CONNECTIONS, runs };
  } finally {
    await events?.close();
    dir.remove();
  }
}
