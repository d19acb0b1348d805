/**
 * The cluster's control API (`/_cluster/api/*` on the edge) against a
 * stand-in cluster (no LiteFS needed, so this always runs): any web page can
 * send requests to 127.0.0.1, so it must refuse other origins, non-JSON POSTs
 * (the kind a page sends without a CORS preflight) and environment variables
 * other than the app's own (NODE_OPTIONS would run code in every app).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEdge, type Edge } from '../../tools/edge/edge-router.js';
import { createControlHandler } from '../../tools/cluster/control-api.js';
import { callControl, fetchControlStatus } from '../../tools/cluster/control-client.js';
import { envForRequest } from '../../tools/cluster/control-command.js';
import { standInCluster } from './stand-in-cluster.js';

describe('cluster control API', () => {
  let edge: Edge;
  let controlUrl: string;
  const { target, calls, status } = standInCluster(() => edge, { dir: () => '/tmp/stand-in' });

  const post = (path: string, headers: Record<string, string>, body: string): Promise<Response> =>
    fetch(`${controlUrl}/${path}`, { method: 'POST', headers, body });

  beforeAll(async () => {
    edge = await startEdge({
      nodes: () => [],
      primaryRegion: 'fra',
      mainPort: 0,
      regionPorts: { fra: 0, ewr: 0, syd: 0 },
      control: createControlHandler(target, status),
    });
    controlUrl = `${edge.mainUrl}/_cluster/api`;
  });
  afterAll(async () => {
    await edge?.close();
  });
  beforeEach(() => {
    calls.length = 0;
  });

  it('serves the failover verbs, and says what they did', async () => {
    expect(await callControl(controlUrl, 'kill', { target: 'primary' })).toEqual({ ok: true, status: 200, message: 'killed fra-1' });
    expect(await callControl(controlUrl, 'start', { target: 'fra-1' })).toEqual({ ok: true, status: 200, message: 'fra-1 started' });
    expect(await callControl(controlUrl, 'handoff', {})).toEqual({ ok: true, status: 200, message: 'fra-2 holds the lease now' });
    expect(await callControl(controlUrl, 'lag', { target: 'fra-2', ms: 300 })).toEqual({ ok: true, status: 200 });
    const standby = { RYW_DURABILITY: 'standby', RYW_STANDBYS: 'http://127.0.0.1:2', RYW_DURABILITY_WAIT_MS: '1000' };
    expect(await callControl(controlUrl, 'restart', { target: 'fra-1', env: standby })).toEqual({ ok: true, status: 200 });
    expect(calls).toEqual([
      ['kill', 'primary'],
      ['start', 'fra-1'],
      ['handoff', undefined],
      ['lag', 'fra-2', 300, 0],
      ['restart', 'fra-1', standby],
    ]);
  });

  it('serves the CLI: JSON verbs, restarts with the app settings (removals as null), and status', async () => {
    expect(await callControl(controlUrl, 'lag', { region: 'ewr', ms: 800, jitter: 100 })).toEqual({ ok: true, status: 200 });
    expect(await callControl(controlUrl, 'bandwidth', { region: 'syd', kbps: null })).toEqual({ ok: true, status: 200 });
    expect(await callControl(controlUrl, 'heal', {})).toEqual({ ok: true, status: 200 });
    const env = envForRequest({ RYW_FALLBACK: 'stale', LITEFS_API: undefined });
    expect(await callControl(controlUrl, 'restart', { region: 'ewr', env })).toEqual({ ok: true, status: 200 });
    expect(calls).toEqual([
      ['lag', 'ewr', 800, 100],
      ['bandwidth', 'syd', null],
      ['heal', undefined],
      ['restart', 'ewr', { RYW_FALLBACK: 'stale', LITEFS_API: undefined }],
    ]);
    expect((await fetchControlStatus(controlUrl)).primaryRegion).toBe('fra');
  });

  it('accepts requests from pages the edge itself served, on any of its ports', async () => {
    for (const url of [edge.mainUrl, edge.regionUrls.syd!, edge.mainUrl.replace('127.0.0.1', 'localhost')]) {
      const res = await post('cut', { origin: new URL(url).origin, 'content-type': 'application/json' }, '{"region":"syd"}');
      expect(res.status, url).toBe(200);
    }
    expect(calls).toEqual([
      ['cut', 'syd'],
      ['cut', 'syd'],
      ['cut', 'syd'],
    ]);
  });

  it('refuses a request from another origin (403), whatever it sends', async () => {
    const restart = JSON.stringify({ region: 'fra', env: { RYW_FALLBACK: 'stale' } });
    for (const origin of ['http://evil.example', 'null', 'http://127.0.0.1:1', `${edge.mainUrl}.evil.example`]) {
      const res = await post('restart', { origin, 'content-type': 'application/json' }, restart);
      expect(res.status, origin).toBe(403);
    }
    const read = await fetch(`${controlUrl}/status`, { headers: { origin: 'http://evil.example' } });
    expect(read.status).toBe(403);
    expect(calls).toEqual([]);
  });

  it('refuses a POST that is not application/json (415): what a page sends cross-origin without a preflight', async () => {
    const body = JSON.stringify({ region: 'fra', env: { RYW_FALLBACK: 'stale' } });
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await post('restart', { 'content-type': type }, body);
      expect(res.status, type).toBe(415);
    }
    // fetch would add text/plain to a string body; a Uint8Array body goes without any content-type.
    const untyped = await fetch(`${controlUrl}/restart`, { method: 'POST', body: new TextEncoder().encode(body) });
    expect(untyped.status).toBe(415);
    expect(calls).toEqual([]);
  });

  it('refuses environment variables other than the app settings (400), before restarting anything', async () => {
    for (const name of ['NODE_OPTIONS', 'PATH', 'LD_PRELOAD', 'PORT', 'DATABASE_URL', 'FLY_REGION', 'RYW_OTHER']) {
      const answer = await callControl(controlUrl, 'restart', {
        region: 'fra',
        env: { RYW_FALLBACK: 'stale', [name]: '--import=data:text/javascript,process.exit(9)' },
      });
      expect(answer.status, name).toBe(400);
      expect(answer.error).toContain(name);
    }
    expect((await callControl(controlUrl, 'restart', { region: 'fra', env: { RYW_WAIT_MS: { nested: 1 } } })).status).toBe(400);
    expect(calls).toEqual([]);
  });

  it('refuses values the cluster cannot honour (400), instead of reading them as 0', async () => {
    const bad: [string, unknown][] = [
      ['lag', { region: 'ewr', ms: null }], // what JSON makes of the NaN of Number('800ms')
      ['lag', { region: 'ewr', ms: '800ms' }],
      ['lag', { region: 'ewr', ms: -5 }],
      ['lag', { region: 'ewr', ms: 1.5 }],
      ['lag', { region: 'ewr', ms: '' }],
      ['lag', { region: 'ewr', ms: 800, jitter: -1 }],
      ['lag', { region: 'xyz', ms: 800 }],
      ['lag', { target: 'fra-1', ms: 800 }], // the primary, refused by the running cluster
      ['lag', { target: 'fra-9', ms: 800 }],
      ['bandwidth', { region: 'syd', kbps: 0 }],
      ['bandwidth', { region: 'syd' }],
      ['cut', {}],
      ['heal', { region: 'xyz' }],
      ['restart', { region: 'xyz' }],
      ['kill', {}],
      ['kill', { target: 'Primary' }],
      ['start', { target: 'ewr' }],
      ['handoff', { target: 'syd-1' }],
    ];
    for (const [verb, body] of bad) {
      const answer = await callControl(controlUrl, verb, body);
      expect(answer.status, `${verb} ${JSON.stringify(body)}`).toBe(400);
      expect(answer.error).toMatch(/must be|missing|unknown instance or region|is the primary|not a region|not a lease candidate/);
    }
    expect(calls).toEqual([]);
  });

  it('answers 404 to an unknown verb, and 500 (not 400) when the cluster fails a good request', async () => {
    expect((await callControl(controlUrl, 'frobnicate', {})).status).toBe(404);
    const cut = target.cut;
    target.cut = async () => {
      throw new Error('toxiproxy: connection refused');
    };
    try {
      expect(await callControl(controlUrl, 'cut', { region: 'syd' })).toEqual({
        ok: false,
        status: 500,
        error: 'toxiproxy: connection refused',
      });
    } finally {
      target.cut = cut;
    }
  });

  it('answers 400 to a body that is not a JSON object', async () => {
    for (const body of ['{', 'null', '[]', '"fra"']) {
      const res = await post('cut', { 'content-type': 'application/json' }, body);
      expect(res.status, body).toBe(400);
    }
    expect(calls).toEqual([]);
  });
});
