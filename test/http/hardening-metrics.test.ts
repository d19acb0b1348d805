/**
 * `/metrics` off the public port (METRICS_PORT: a second real listener) or
 * behind a bearer token (METRICS_TOKEN), and a `/healthz` that says only
 * what a health check needs.
 */
import type { Server } from 'node:http';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, listen } from '../../src/http/listen.js';
import { createMetricsApp } from '../../src/http/server.js';
import { FakeLiteFS, PRIMARY_ID } from '../support/fake-litefs.js';

const TOKEN = 'metrics-token-0123456789abcdef';

let fs: FakeLiteFS | undefined;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    }),
  );
  fs?.close();
  fs = undefined;
});

async function serve(app: Parameters<typeof createServer>[0]): Promise<string> {
  const server = createServer(app);
  servers.push(server);
  const { port } = await listen(server, 0, '127.0.0.1');
  return `http://127.0.0.1:${port}`;
}

const decisions = (text: string, decision: string) =>
  Number(new RegExp(`^ryw_decisions_total\\{decision="${decision}"\\} (\\d+)`, 'm').exec(text)?.[1]);

describe('METRICS_PORT: /metrics on its own listener', () => {
  it('answers 404 for /metrics on the public port, and serves the same counts on the metrics port only', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app, metrics } = fs.app({ publicMetrics: null });
    const publicUrl = await serve(app);
    const metricsUrl = await serve(createMetricsApp(metrics, null));

    const onPublic = await fetch(`${publicUrl}/metrics`);
    expect(onPublic.status).toBe(404);
    expect(await onPublic.text()).not.toMatch(/ryw_decisions_total/);

    const before = decisions(await (await fetch(`${metricsUrl}/metrics`)).text(), 'none');
    expect((await fetch(`${publicUrl}/`)).status).toBe(200);
    const scrape = await fetch(`${metricsUrl}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toMatch(/^text\/plain/);
    // The page served on the public port was counted where the metrics are served.
    expect(decisions(await scrape.text(), 'none')).toBe(before + 1);

    // Nothing else lives on the metrics port.
    for (const path of ['/', '/new', '/healthz']) expect((await fetch(`${metricsUrl}${path}`)).status).toBe(404);
  });

  it('asks for the token on the metrics port when METRICS_TOKEN is set too', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { metrics } = fs.app({ publicMetrics: null });
    const metricsUrl = await serve(createMetricsApp(metrics, TOKEN));
    const without = await fetch(`${metricsUrl}/metrics`);
    expect(without.status).toBe(403);
    expect(await without.text()).toMatch(/metrics token is required/);
    expect((await fetch(`${metricsUrl}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });
});

describe('METRICS_TOKEN: /metrics on the public port, behind a bearer token', () => {
  it('refuses a scrape without the token or with a wrong one, and serves it with the token', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app({ publicMetrics: { token: TOKEN } });
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', TOKEN, `Basic ${TOKEN}`]) {
      const attempt = request(app).get('/metrics');
      if (authorization) attempt.set('Authorization', authorization);
      const res = await attempt.expect(403);
      expect(res.text).not.toMatch(/ryw_decisions_total/);
    }
    const res = await request(app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    expect(res.text).toMatch(/ryw_decisions_total/);
  });

  it('stays open without either variable (standalone, the local cluster)', async () => {
    fs = new FakeLiteFS({ role: 'standalone' });
    const { app } = fs.app();
    expect((await request(app).get('/metrics').expect(200)).text).toMatch(/ryw_decisions_total/);
  });
});

describe('/healthz', () => {
  it('says only status, role, position and whether a primary is known, never the names of instances, and is never cached', async () => {
    fs = new FakeLiteFS({ role: 'replica', position: 7n });
    const { app } = fs.app({ region: 'syd', instance: 'syd-1' });
    const res = await request(app).get('/healthz').expect(200);
    expect(res.body).toEqual({ status: 'ok', role: 'replica', position: '0000000000000007', primary: 'known' });
    expect(res.text).not.toMatch(new RegExp(`syd|${PRIMARY_ID}`));
    expect(res.headers['cache-control']).toBe('no-store');
  });
});
