/**
 * The read-your-writes module, on a bare Express app over an in-memory node,
 * while no primary is named: a write waits at most `primaryWaitMs` for one,
 * then is replayed to it, served here if this node became it, or answered
 * with the layer's 503 and Retry-After. Real clocks, generous bounds.
 */
import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_PRIMARY_WAIT_MS, readYourWrites } from '../../src/ryw/index.js';
import { MemoryNode } from '../support/memory-node.js';

const nodes: MemoryNode[] = [];
afterEach(() => {
  for (const node of nodes.splice(0)) node.close();
});

function cutOffReplica(primaryWaitMs?: number) {
  const node = new MemoryNode({ region: 'syd', instance: 'syd-1' }, { role: 'replica', primary: null, position: 4n });
  nodes.push(node);
  const ryw = readYourWrites({ node, secrets: ['a-secret'], ...(primaryWaitMs !== undefined ? { primaryWaitMs } : {}) });
  const app = express();
  app.use(ryw.middleware);
  app.post('/notes', (_req, res) => res.status(201).send('written here'));
  return { node, app };
}

const timed = async <T>(work: () => PromiseLike<T>): Promise<{ value: T; ms: number }> => {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
};

describe('a write on a replica that names no primary', () => {
  it('waits the bound (a named default of a couple of seconds), then answers 503 with Retry-After', async () => {
    expect(DEFAULT_PRIMARY_WAIT_MS).toBeGreaterThanOrEqual(1_000);
    expect(DEFAULT_PRIMARY_WAIT_MS).toBeLessThanOrEqual(5_000);
    const { app } = cutOffReplica(300);
    const { value: res, ms } = await timed(() => request(app).post('/notes'));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.headers['fly-replay']).toBeUndefined();
    expect(res.headers['server-timing']).toMatch(/ryw;desc=unavailable;dur=(\d+)/);
    expect(ms).toBeGreaterThanOrEqual(280);
    expect(ms).toBeLessThan(2_300);
  });

  it('is replayed to the primary as soon as one is named', async () => {
    const { app, node } = cutOffReplica(5_000);
    setTimeout(() => node.setRole('replica', 'fra-2'), 100);
    const { value: res, ms } = await timed(() => request(app).post('/notes'));
    expect(res.status).toBe(409);
    expect(res.headers['fly-replay']).toBe('instance=fra-2');
    expect(ms).toBeGreaterThanOrEqual(90);
    expect(ms).toBeLessThan(2_000);
  });

  it('is served here when this node becomes the primary meanwhile', async () => {
    const { app, node } = cutOffReplica(5_000);
    setTimeout(() => node.setRole('primary'), 100);
    const res = await request(app).post('/notes');
    expect(res.status).toBe(201);
    expect(res.text).toBe('written here');
  });

  it('stops waiting when the client goes away, and the node is left with no waiter', async () => {
    const { app, node } = cutOffReplica(5_000);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const gone = new AbortController();
    const sent = fetch(`http://127.0.0.1:${port}/notes`, { method: 'POST', signal: gone.signal }).catch(() => 'aborted');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(node.primaryWaiting).toBe(1);
    gone.abort();
    expect(await sent).toBe('aborted');
    for (let i = 0; i < 100 && node.primaryWaiting > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(node.primaryWaiting).toBe(0);
    // Not waiting for the client's keep-alive socket to time out (about 4 s).
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
});
