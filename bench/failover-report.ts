import { DURABILITY_GOAL_MS, medianOf, type FailoverResult } from './failover.js';
import { ms } from './support/stats.js';

/** Section 7 of docs/benchmarks.md: failover timelines and the durable write's cost. */
export function failoverSection(f: FailoverResult): string[] {
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  const failed = (counts: Readonly<Record<string, number>>) =>
    Object.entries(counts)
      .map(([got, n]) => `${n} × ${got}`)
      .join(', ') || 'none';
  line();
  line('## 7. The primary moves: failover timelines and durable writes (real LiteFS, Consul lease)');
  line();
  line(
    `A Consul lease (TTL ${f.lease.ttlMs} ms, lock delay ${f.lease.lockDelayMs} ms: Consul expires a crashed holder's session after twice its TTL), candidates fra-1 and fra-2, replicas ewr-1 and syd-1. A writer publishes through syd's edge port (each write replayed to the primary), one article after another, while the primary is killed (SIGKILL of its LiteFS and app) or hands its lease to the other candidate (\`POST /promote\`, as a deploy does). "New primary": from the kill (or the handoff's start) until another node's LiteFS says it is primary. "First write": until the first write *sent after the event* is acknowledged (303). "Failed meanwhile": what the writes sent after the event got before that (no write is retried). A killed node is started again between runs.`,
  );
  line();
  line('| event | from → to | new primary | first write | failed meanwhile |');
  line('|---|---|---:|---:|---|');
  for (const t of f.timelines)
    line(`| ${t.event} | ${t.from} → ${t.to} | ${ms(t.toPrimaryMs)} | ${ms(t.toFirstWriteMs)} | ${failed(t.failed)} |`);
  const runs = (n: number) => `${n} run${n === 1 ? '' : 's'}`;
  const kills = f.timelines.filter((t) => t.event === 'kill').length;
  const handoffs = f.timelines.filter((t) => t.event === 'handoff').length;
  line();
  line(
    `Medians: a crash, new primary after ${ms(medianOf(f.timelines, 'kill', 'toPrimaryMs'))} and first write after ${ms(medianOf(f.timelines, 'kill', 'toFirstWriteMs'))} (${runs(kills)}); a handoff, ${ms(medianOf(f.timelines, 'handoff', 'toPrimaryMs'))} and ${ms(medianOf(f.timelines, 'handoff', 'toFirstWriteMs'))} (${runs(handoffs)}). "First write" includes that write's own time (its form, then its POST), on this busy machine tens of milliseconds.`,
  );
  line();
  line(
    `Durable writes: the same cluster, fra-1 running \`RYW_DURABILITY=local\` and fra-2 \`RYW_DURABILITY=standby\`, the lease handed between them round by round (${f.rounds} round${f.rounds === 1 ? '' : 's'} × ${f.writesPerRound} writes each way), each write a \`POST /new\` straight to the primary's app, timed until its 303. The standby's link (what it receives from the primary, through Toxiproxy) carries the lag shown; its round trip is an HTTP request through the very listener the standby streams through, to the primary's LiteFS API. Goal: standby's p50 no more than local's p50 plus the link's round trip plus ${DURABILITY_GOAL_MS} ms.`,
  );
  line();
  line(
    '| standby link lag | link round trip p50 | local p50 | local p99 | standby p50 | standby p99 | standby − local (p50) | goal met? |',
  );
  line('|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const d of f.durability)
    line(
      `| ${d.lagMs} ms | ${ms(d.linkRtt.p50)} | ${ms(d.local.p50)} | ${ms(d.local.p99)} | ${ms(d.standby.p50)} | ${ms(d.standby.p99)} | ${ms(d.costP50Ms)} | ${d.met ? 'yes' : '**no**'} |`,
    );
  return out;
}
