import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A LiteFS HTTP API of which only `/events` speaks (newline-delimited JSON), driven by the test. */
export interface FakeEvents {
  url: URL;
  /** A `tx` event for the database (default app.db). */
  send(txid: string, db?: string): void;
  sendRaw(event: object): void;
  dropClients(): void;
  /** Its connections stay open but hear nothing more: a machine gone without a FIN. */
  freeze(): void;
  connected(): number;
  /** How many times a client connected (reconnections included). */
  accepted(): number;
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1; every client first gets `init` with the given role. */
export async function fakeEvents(
  init: { isPrimary: boolean; hostname?: string } = { isPrimary: false, hostname: 'fra-1' },
): Promise<FakeEvents> {
  const clients = new Set<ServerResponse>();
  const frozen = new Set<ServerResponse>();
  let accepted = 0;
  const server = createServer((req, res) => {
    if (req.url !== '/events') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(`${JSON.stringify({ type: 'init', data: init })}\n`);
    clients.add(res);
    accepted++;
    res.on('close', () => {
      clients.delete(res);
      frozen.delete(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const sendRaw = (event: object) => {
    for (const client of clients) if (!frozen.has(client)) client.write(`${JSON.stringify(event)}\n`);
  };
  const dropClients = () => {
    for (const client of clients) client.destroy();
  };
  return {
    url,
    send: (txid, db = 'app.db') => sendRaw({ type: 'tx', db, data: { txID: txid, postApplyChecksum: 'ab'.repeat(8), commit: 1 } }),
    sendRaw,
    dropClients,
    freeze: () => {
      for (const client of clients) frozen.add(client);
    },
    connected: () => clients.size,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        dropClients();
        server.close(() => resolve());
      }),
  };
}
