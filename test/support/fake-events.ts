import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A LiteFS HTTP API of which only `/events` speaks (newline-delimited JSON), driven by the test. */
export interface FakeEvents {
  url: URL;
  /** A `tx` event for the database (default app.db). */
  send(txid: string, db?: string): void;
  sendRaw(event: object): void;
  dropClients(): void;
  connected(): number;
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1; every client first gets `init` with the given role. */
export async function fakeEvents(
  init: { isPrimary: boolean; hostname?: string } = { isPrimary: false, hostname: 'fra-1' },
): Promise<FakeEvents> {
  const clients = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    if (req.url !== '/events') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(`${JSON.stringify({ type: 'init', data: init })}\n`);
    clients.add(res);
    res.on('close', () => clients.delete(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const sendRaw = (event: object) => {
    for (const client of clients) client.write(`${JSON.stringify(event)}\n`);
  };
  const dropClients = () => {
    for (const client of clients) client.destroy();
  };
  return {
    url,
    send: (txid, db = 'app.db') => sendRaw({ type: 'tx', db, data: { txID: txid, postApplyChecksum: 'ab'.repeat(8), commit: 1 } }),
    sendRaw,
    dropClients,
    connected: () => clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        dropClients();
        server.close(() => resolve());
      }),
  };
}
