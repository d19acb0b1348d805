import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';

/**
 * Where cluster ports are looked for: below the kernel's ephemeral range
 * (`ip_local_port_range`, 32768–60999 by default), from which every outgoing
 * connection and every `listen(0)` takes its port. A cluster binds its ports
 * one node at a time over seconds; in the ephemeral range, a connection made
 * meanwhile by a test beside it could take one first (LiteFS then exits:
 * "bind: address already in use"). Below it, only another listener can.
 */
export const CLUSTER_PORTS_FROM = 10_000;

/**
 * A port that was free a moment ago on 127.0.0.1 (the kernel picks it). Good
 * enough for one listener bound at once after it: the window is tiny.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The first port of the kernel's ephemeral range, or null where it cannot be read (not Linux). */
export function ephemeralPortsFrom(): number | null {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : null;
  } catch {
    return null;
  }
}

/**
 * `count` distinct ports that were free a moment ago, below the ephemeral
 * range when there is room (see CLUSTER_PORTS_FROM), starting at a random
 * place so that two runs side by side seldom look at the same ones: all are
 * held open at once before any is released, so none is handed out twice.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  const listen = (server: Server, port: number) =>
    new Promise<boolean>((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException) =>
        error.code === 'EADDRINUSE' || error.code === 'EACCES' ? resolve(false) : reject(error);
      server.once('error', failed);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', failed);
        resolve(true);
      });
    });
  try {
    const below = ephemeralPortsFrom();
    const room = below === null ? 0 : below - CLUSTER_PORTS_FROM;
    const start = Math.floor(Math.random() * Math.max(room, 1));
    for (let tried = 0; servers.length < count && tried < room; tried++) {
      const server = createServer();
      server.unref();
      if (await listen(server, CLUSTER_PORTS_FROM + ((start + tried) % room))) servers.push(server);
    }
    // No room below the ephemeral range (or too little): the kernel picks.
    while (servers.length < count) {
      const server = createServer();
      server.unref();
      await listen(server, 0);
      servers.push(server);
    }
    return servers.map((server) => (server.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}
