import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionClient, hiddenFields } from '../../tools/checker/session-client.js';
import { mustSignIn } from '../../tools/checker/sign-in.js';
import { startProcessCluster } from '../../tools/cluster/process-cluster.js';
import type { ProcessCluster } from '../../tools/cluster/process-cluster-type.js';
import { findClusterTools } from '../../tools/cluster/tools.js';
import { verifyToken } from '../../src/ryw/token.js';
import { BENCH_SECRET } from './app-process.js';

/** The wait budget the cluster benchmarks run with (the app's default). */
export const BENCH_WAIT_MS = 500;
/** Articles written before measuring, so the home page is full (HOME_PAGE_SIZE) and has older pages, as on a real blog. */
export const SEED_ARTICLES = 60;
/** Paths LiteFS's proxy passes straight through, as its docs suggest for static files and health checks. */
export const PROXY_PASSTHROUGH = ['/static/*', '/healthz', '/metrics', '/favicon.ico'];

export interface BenchCluster {
  readonly cluster: ProcessCluster;
  /** Writes one article on the primary (its app, directly), as the cluster's signed-in author, and returns what the author is handed. */
  write(): Promise<WrittenArticle>;
  stop(): Promise<void>;
}

export interface WrittenArticle {
  readonly txid: bigint;
  readonly id: number;
  /** The `RYW-Token` header value. */
  readonly token: string;
  /** The `ryw` cookie exactly as the browser sends it back (`ryw=…`). */
  readonly cookie: string;
}

/** Whether the cluster benchmarks can run here (LiteFS, Toxiproxy, FUSE). */
export function clusterAvailable(): { ok: boolean; missing: readonly string[] } {
  const check = findClusterTools();
  return check.ok ? { ok: true, missing: [] } : { ok: false, missing: check.missing };
}

/**
 * fra (primary), ewr (fallback replay) and syd (fallback stale), each with
 * LiteFS's built-in proxy also listening in front of its app.
 */
export async function startBenchCluster(log: (line: string) => void): Promise<BenchCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-cluster-'));
  const cluster = await startProcessCluster({
    dir,
    basePort: 0,
    regions: ['fra', 'ewr', 'syd'],
    env: { RYW_SECRET: BENCH_SECRET, RYW_WAIT_MS: String(BENCH_WAIT_MS), RYW_FALLBACK: 'replay' },
    nodeEnv: { syd: { RYW_FALLBACK: 'stale' } },
    litefsProxy: { passthrough: PROXY_PASSTHROUGH },
  }).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const stop = async () => {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  };
  const primaryUrl = cluster.appUrl('fra');
  const client = new SessionClient(() => performance.now());
  let n = 0;
  const write = async (): Promise<WrittenArticle> => {
    const form = await client.get(`${primaryUrl}/new`);
    if (form.status !== 200) throw new Error(`GET /new on the primary answered ${form.status}`);
    const title = `Bench article ${++n} ${Date.now().toString(36)}`;
    const post = await client.postForm(`${primaryUrl}/new`, {
      ...hiddenFields(form.body),
      title,
      content: `Body of ${title}. `.repeat(20),
    });
    const token = post.headers?.get('ryw-token');
    const location = post.headers?.get('location') ?? '';
    const cookie = post.headers
      ?.getSetCookie()
      .find((c) => c.startsWith('ryw='))
      ?.split(';')[0];
    // Its position as the app reads it (the payload may carry a checksum too).
    const check = token ? verifyToken(token, [BENCH_SECRET], Date.now(), 3_600) : null;
    const txid = check?.ok ? check.token.position : null;
    if (post.status !== 303 || !token || !cookie || txid === null)
      throw new Error(`POST /new on the primary: ${post.status}, token ${token}`);
    return { txid, id: Number(location.split('/').pop()), token, cookie };
  };
  try {
    // Writing takes a signed-in author: made through /setup on this fresh cluster, signed in once.
    await mustSignIn(client, primaryUrl);
    for (let i = 0; i < SEED_ARTICLES; i++) await write();
    await cluster.waitForSync(30_000);
  } catch (err) {
    // Nobody else holds the cluster yet: left running, its processes and mounts would outlive the run.
    await stop().catch(() => {});
    throw err;
  }
  log(`cluster: fra, ewr, syd up with LiteFS's proxy beside each app; ${SEED_ARTICLES} articles written`);
  return { cluster, write, stop };
}
