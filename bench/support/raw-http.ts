import http, { type IncomingHttpHeaders } from 'node:http';

export interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The bytes as sent: never decompressed (fetch() would). */
  readonly body: Buffer;
}

/**
 * One GET with exactly these headers (fetch() adds `Accept-Encoding` and
 * decodes), the body as it came on the wire; on a connection of its own
 * unless given a (keep-alive) agent.
 */
export function rawGet(url: string, headers: Readonly<Record<string, string>> = {}, agent: http.Agent | false = false): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { ...headers }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url}: no answer in 30 s`)));
  });
}

/** The sum of a Prometheus counter or gauge over its labels in a `/metrics` text, or null when absent. */
export function metricValue(text: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_:]+)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    sum = (sum ?? 0) + Number(match[2]);
  }
  return sum;
}

/** The app's `/metrics` as text. */
export async function scrape(appUrl: string): Promise<string> {
  const res = await rawGet(`${appUrl}/metrics`);
  return res.body.toString('utf8');
}
