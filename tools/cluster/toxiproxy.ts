/**
 * Toxiproxy's HTTP API, spoken with plain fetch. LiteFS replicates over one
 * long-lived HTTP/2 stream, so faults are injected at the TCP level: an HTTP
 * proxy in between would break the stream (see docs/decisions/0002).
 */

export interface ToxiproxyProxy {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
}

type Stream = 'upstream' | 'downstream';

export interface Toxic {
  readonly name: string;
  readonly type: 'latency' | 'bandwidth' | 'timeout' | 'slow_close' | 'reset_peer' | 'limit_data' | 'slicer';
  readonly stream: Stream;
  readonly toxicity?: number;
  readonly attributes: Readonly<Record<string, number>>;
}

export class ToxiproxyError extends Error {
  override name = 'ToxiproxyError';
}

export class ToxiproxyClient {
  constructor(readonly apiUrl: string) {}

  async version(): Promise<string> {
    const res = await this.request('GET', '/version');
    return (await res.text()).trim();
  }

  async createProxy(name: string, listen: string, upstream: string): Promise<ToxiproxyProxy> {
    const res = await this.request('POST', '/proxies', { name, listen, upstream, enabled: true });
    return (await res.json()) as ToxiproxyProxy;
  }

  async setEnabled(name: string, enabled: boolean): Promise<void> {
    await this.request('POST', `/proxies/${encodeURIComponent(name)}`, { enabled });
  }

  async toxics(proxy: string): Promise<Toxic[]> {
    const res = await this.request('GET', `/proxies/${encodeURIComponent(proxy)}/toxics`);
    return (await res.json()) as Toxic[];
  }

  /** Adds the toxic, or updates its attributes when one of that name exists. */
  async upsertToxic(proxy: string, toxic: Toxic): Promise<void> {
    const existing = (await this.toxics(proxy)).find((t) => t.name === toxic.name);
    const base = `/proxies/${encodeURIComponent(proxy)}/toxics`;
    if (existing && existing.type === toxic.type && existing.stream === toxic.stream) {
      await this.request('POST', `${base}/${encodeURIComponent(toxic.name)}`, {
        attributes: toxic.attributes,
        toxicity: toxic.toxicity ?? 1,
      });
      return;
    }
    if (existing) await this.removeToxic(proxy, toxic.name);
    await this.request('POST', base, { ...toxic, toxicity: toxic.toxicity ?? 1 });
  }

  async removeToxic(proxy: string, name: string): Promise<void> {
    await this.request('DELETE', `/proxies/${encodeURIComponent(proxy)}/toxics/${encodeURIComponent(name)}`, undefined, [404]);
  }

  private async request(method: string, path: string, body?: unknown, allowed: readonly number[] = []): Promise<Response> {
    const res = await fetch(`${this.apiUrl}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok && !allowed.includes(res.status)) {
      throw new ToxiproxyError(`toxiproxy ${method} ${path}: ${res.status} ${await res.text()}`);
    }
    return res;
  }
}
