/**
 * The parts of the container backend that need no Docker engine: the start
 * script each node's container runs, and following LiteFS's `/events`.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { followTxEvents, startScript } from '../../tools/cluster/container-node.js';

describe('startScript', () => {
  it('sets and unsets variables, quoted for sh, then execs the mount supervisor (and through it litefs) as PID 1', () => {
    const script = startScript({ RYW_FALLBACK: 'stale', TITLE: "it's $HOME", LITEFS_API: undefined }, false);
    expect(script).toContain("export TITLE='it'\"'\"'s $HOME'");
    expect(script).toContain('unset LITEFS_API');
    expect(script).not.toContain('rm -rf');
    expect(script.trimEnd().split('\n').at(-1)).toMatch(/^exec node \/app\/dist\/mount\.js -- litefs mount -config \S+ -no-expand-env$/);
    // What sh makes of it: the values exactly as given.
    const printed = execFileSync(
      'sh',
      ['-c', `${script.replace(/^exec node .*$/m, '')}\nprintf '%s|%s|%s' "$RYW_FALLBACK" "$TITLE" "\${LITEFS_API-unset}"`],
      {
        env: { PATH: process.env.PATH, LITEFS_API: 'http://127.0.0.1:1' },
      },
    ).toString();
    expect(printed).toBe("stale|it's $HOME|unset");
  });

  it('wipes the data directory but the cluster id only when asked', () => {
    expect(startScript({}, true)).toContain('! -name clusterid -exec rm -rf {} +');
  });

  it('refuses a variable name sh would misread', () => {
    expect(() => startScript({ 'A;reboot': 'x' }, false)).toThrow(/not an environment variable name/);
  });
});

describe('followTxEvents', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections(); // the event streams stay open, as LiteFS's do
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  /** A LiteFS `/events` stand-in: writes `lines`, split mid-line, then keeps the stream open. */
  const serve = async (lines: string[]): Promise<string> => {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const text = lines.join('');
      res.write(text.slice(0, 37));
      setTimeout(() => res.write(text.slice(37)), 20);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const tx = (db: string, txid: number): string =>
    `${JSON.stringify({ type: 'tx', db, data: { txID: txid.toString(16).padStart(16, '0'), postApplyChecksum: 'c05e73159e1af0cf', commit: 2 } })}\n`;

  it("resolves with the first tx event of the app's database that is far enough", async () => {
    const api = await serve([
      `${JSON.stringify({ type: 'init', data: { isPrimary: false, hostname: 'fra-1' } })}\n`,
      tx('app.db', 4),
      tx('other.db', 9),
      tx('app.db', 7),
      tx('app.db', 8),
    ]);
    const abort = new AbortController();
    const pos = await followTxEvents(api, abort.signal, (p) => p.txid >= 6n);
    abort.abort();
    expect(pos).toEqual({ txid: 7n, checksum: 'c05e73159e1af0cf' });
  });

  it('rejects when aborted', async () => {
    const api = await serve([tx('app.db', 1)]);
    const abort = new AbortController();
    const waiting = followTxEvents(api, abort.signal, (p) => p.txid >= 100n);
    setTimeout(() => abort.abort(), 50);
    await expect(waiting).rejects.toThrow();
  });
});
