/**
 * The `fly-replay` response header and the `fly-replay-src` request header, as
 * Fly.io's proxy speaks them: the one codec of both, for the app and for the
 * local edge router alike. An app answers with `fly-replay: instance=ID` or
 * `region=R` (optionally `;state=S`, `;elsewhere=true`); the proxy discards
 * that response and sends the same request to the named target, telling it
 * where the request came from with
 * `fly-replay-src: instance=…;region=…;t=<unix µs>;state=…`.
 */

export const FLY_REPLAY = 'fly-replay';
export const FLY_REPLAY_SRC = 'fly-replay-src';

/** Where a request is replayed: exactly one instance, or any instance of a region. */
export type ReplayTarget =
  | { readonly instance: string; readonly state?: string }
  | { readonly region: string; readonly elsewhere?: boolean; readonly state?: string };

/** The `fly-replay` value for a target, e.g. `instance=fra-1;state=ryw`. */
export function formatFlyReplay(target: ReplayTarget): string {
  const parts = 'instance' in target ? [`instance=${target.instance}`] : [`region=${target.region}`];
  if ('region' in target && target.elsewhere) parts.push('elsewhere=true');
  if (target.state !== undefined) parts.push(`state=${target.state}`);
  return parts.join(';');
}

export type ParsedReplay = { readonly ok: true; readonly target: ReplayTarget } | { readonly ok: false; readonly reason: string };

/** `key=value` pairs separated by `;` (Fly also accepts `,`), keys lowercased, empty values dropped. */
function fields(value: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of value.split(/[;,]/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const field = part.slice(eq + 1).trim();
    if (field !== '') map.set(part.slice(0, eq).trim().toLowerCase(), field);
  }
  return map;
}

/**
 * Parses a `fly-replay` value such as `instance=fra-1;state=ryw`. Unknown keys
 * are ignored, as Fly ignores them, but `app=` cannot be honoured off Fly.
 */
export function parseFlyReplay(value: string): ParsedReplay {
  const map = fields(value);
  if (map.has('app')) return { ok: false, reason: 'fly-replay app= is not supported by this edge' };
  const instance = map.get('instance');
  const region = map.get('region');
  const state = map.get('state');
  const withState = state !== undefined ? { state } : {};
  if (instance !== undefined) return { ok: true, target: { instance, ...withState } };
  if (region !== undefined)
    return { ok: true, target: { region, ...(map.get('elsewhere') === 'true' ? { elsewhere: true } : {}), ...withState } };
  return { ok: false, reason: `fly-replay names no instance or region: "${value}"` };
}

/** What `fly-replay-src` tells the instance a request was replayed to. */
export interface ReplaySource {
  readonly instance: string;
  readonly region: string;
  /** Unix time in microseconds, when the replay was decided. */
  readonly timeMicros: number;
  readonly state?: string;
}

/** `instance=fra-1;region=fra;t=1732600000000000;state=ryw` (state only when set). */
export function formatReplaySource(source: ReplaySource): string {
  const parts = [`instance=${source.instance}`, `region=${source.region}`, `t=${source.timeMicros}`];
  if (source.state !== undefined) parts.push(`state=${source.state}`);
  return parts.join(';');
}

/**
 * Parses `fly-replay-src`. Only what the app relies on must be there: the
 * instance it came from (a request without one was not replayed by a proxy
 * we know). Null when absent or unusable.
 */
export function parseReplaySource(
  header: string | undefined,
): { instance: string; region: string | null; timeMicros: number | null; state: string | null } | null {
  if (!header) return null;
  const map = fields(header);
  const instance = map.get('instance');
  if (instance === undefined) return null;
  const t = Number(map.get('t'));
  return { instance, region: map.get('region') ?? null, timeMicros: Number.isFinite(t) ? t : null, state: map.get('state') ?? null };
}

/** Unix time in microseconds, the unit of `fly-replay-src`'s `t=`. */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
