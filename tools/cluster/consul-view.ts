/**
 * One node's view of the cluster's Consul: an HTTP pass-through to the agent
 * that rewrites one thing, the primary's address in the lease key's value,
 * into this node's own Toxiproxy listener in front of that primary.
 *
 * Why: on a Consul lease the primary writes one `advertise-url` for everyone,
 * so a per-replica proxy cannot sit in that URL the way it does on a static
 * lease. Each node reads the lease through its own view instead, and so
 * streams from whoever is primary through its own link: `lag ewr-1` delays
 * what ewr-1 receives, from fra-1 now and from fra-2 after a failover. Every
 * other request (sessions, acquire, renew, release: the lease itself) passes
 * unchanged, and so does what a node writes: the lease is Consul's, real.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ConsulViewSpec {
  /** Names the view in logs (the node's instance). */
  readonly name: string;
  /** Where it listens on 127.0.0.1 (0: any free port). */
  readonly port: number;
  /** A primary's own advertise URL → the URL this node reaches it at. */
  readonly rewrites: Readonly<Record<string, string>>;
}

export interface ConsulView {
  readonly url: string;
  close(): Promise<void>;
}

/** Headers that describe one hop, or the body we may have changed. */
const NOT_COPIED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/**
 * Rewrites the `advertise-url` of every entry of a KV answer (a JSON array of
 * `{Key, Value: base64}`) found in `rewrites`; anything it cannot read passes
 * as it came.
 */
export function rewriteKvAnswer(body: string, rewrites: Readonly<Record<string, string>>): string {
  let entries: unknown;
  try {
    entries = JSON.parse(body);
  } catch {
    return body;
  }
  if (!Array.isArray(entries)) return body;
  let changed = false;
  for (const entry of entries as { Value?: unknown }[]) {
    if (typeof entry?.Value !== 'string') continue;
    try {
      const info = JSON.parse(Buffer.from(entry.Value, 'base64').toString('utf8')) as Record<string, unknown>;
      const url = info['advertise-url'];
      if (typeof url !== 'string' || !Object.hasOwn(rewrites, url)) continue;
      info['advertise-url'] = rewrites[url];
      entry.Value = Buffer.from(JSON.stringify(info)).toString('base64');
      changed = true;
    } catch {
      // Not LiteFS's JSON (the cluster-id key is a plain string): leave it.
    }
  }
  return changed ? JSON.stringify(entries) : body;
}

/** Serves one view in front of the agent at `upstream`; `key` is the lease key. */
export async function startConsulView(upstream: string, key: string, spec: ConsulViewSpec): Promise<ConsulView> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true });
  const leasePath = `/v1/kv/${key}`;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const rewrite = req.method === 'GET' && path === leasePath;
    const headers = { ...req.headers, host: target.host };
    const upstreamReq = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
      (upstreamRes) => {
        const outHeaders: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(upstreamRes.headers)) if (!NOT_COPIED.has(name)) outHeaders[name] = value;
        if (!rewrite || upstreamRes.statusCode !== 200) {
          if (upstreamRes.headers['content-length'] !== undefined) outHeaders['content-length'] = upstreamRes.headers['content-length'];
          res.writeHead(upstreamRes.statusCode ?? 502, outHeaders);
          upstreamRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstreamRes.on('end', () => {
          const body = Buffer.from(rewriteKvAnswer(Buffer.concat(chunks).toString('utf8'), spec.rewrites));
          res.writeHead(200, { ...outHeaders, 'content-length': body.length });
          res.end(body);
        });
        upstreamRes.on('error', () => res.destroy());
      },
    );
    upstreamReq.on('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`consul view ${spec.name}: ${err.message}\n`);
    });
    req.pipe(upstreamReq);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(spec.port, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      agent.destroy();
    },
  };
}
