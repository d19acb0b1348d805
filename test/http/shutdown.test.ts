/**
 * Stopping a listener on SIGTERM (a deploy, a handoff): requests in flight
 * are answered, within a grace period; idle connections go at once.
 */
import { request as httpRequest } from 'node:http';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, listen, shutdown } from '../../src/http/listen.js';

const servers: ReturnType<typeof createServer>[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.closeAllConnections();
});

/** An app whose only route answers after `ms`, and tells when it began. */
function slowApp(ms: number, began: () => void) {
  const app = express();
  app.get('/slow', (_req, res) => {
    began();
    setTimeout(() => res.send('done'), ms);
  });
  return app;
}

function get(port: number): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/slow' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (error) => resolve({ error: error.message }));
    });
    req.on('error', (error) => resolve({ error: error.message }));
    req.end();
  });
}

describe('shutdown', () => {
  it('answers a request in flight, then closes', async () => {
    let began!: () => void;
    const inFlight = new Promise<void>((resolve) => (began = resolve));
    const server = createServer(slowApp(300, () => began()));
    servers.push(server);
    const { port } = await listen(server, 0, '127.0.0.1');
    const answer = get(port);
    await inFlight;
    const started = performance.now();
    await shutdown(server, 5_000);
    expect(await answer).toEqual({ status: 200, body: 'done' });
    // It waited for the answer (≈300 ms), not for the grace period.
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(server.listening).toBe(false);
  });

  it('cuts what is still running when the grace period ends', async () => {
    let began!: () => void;
    const inFlight = new Promise<void>((resolve) => (began = resolve));
    const server = createServer(slowApp(10_000, () => began()));
    servers.push(server);
    const { port } = await listen(server, 0, '127.0.0.1');
    const answer = get(port);
    await inFlight;
    const started = performance.now();
    await shutdown(server, 200);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(5_000);
    expect(await answer).toHaveProperty('error');
  });
});
