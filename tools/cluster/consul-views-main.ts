/**
 * The process that serves every node's Consul view (consul-view.ts). Its own
 * process, not the cluster owner's: a primary renews its 1 s lease every
 * 500 ms through its view, and a test's or the checker's busy event loop must
 * never be what makes it lose the lease.
 *
 * Usage: node --import tsx consul-views-main.ts '<JSON ConsulViewsConfig>'
 */
import { startConsulView, type ConsulView, type ConsulViewSpec } from './consul-view.js';

export interface ConsulViewsConfig {
  readonly upstream: string;
  readonly key: string;
  readonly views: readonly ConsulViewSpec[];
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as ConsulViewsConfig;
  const views: ConsulView[] = [];
  for (const spec of config.views) {
    const view = await startConsulView(config.upstream, config.key, spec);
    views.push(view);
    console.log(`consul view of ${spec.name}: ${view.url} -> ${config.upstream}`);
  }
  const stop = (): void => {
    void Promise.all(views.map((v) => v.close())).then(() => process.exit(0));
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
