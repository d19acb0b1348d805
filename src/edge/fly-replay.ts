/**
 * The `fly-replay` response header and the `fly-replay-src` request header, as
 * Fly.io's proxy speaks them. An app answers with `fly-replay: instance=ID`,
 * `region=R` (optionally `;state=S`, `;elsewhere=true`); the proxy discards
 * that response and sends the same request to the named target, telling it
 * where the request came from with
 * `fly-replay-src: instance=…;region=…;t=<unix µs>;state=…`.
 */

export const FLY_REPLAY = 'fly-replay';
export const FLY_REPLAY_SRC = 'fly-replay-src';

export interface ReplayTarget {
  /** A machine id (`FLY_MACHINE_ID`): replay to exactly that node. */
  readonly instance?: string;
  /** A region code: replay to a node in that region. */
  readonly region?: string;
  /** With `region`: any node of that region but the one that asked. */
  readonly elsewhere: boolean;
  /** Opaque to the proxy, handed to the target in `fly-replay-src`. */
  readonly state?: string;
}

export type ParsedReplay =
  | { readonly ok: true; readonly target: ReplayTarget }
  | { readonly ok: false; readonly reason: string };

/**
 * Parses a `fly-replay` value such as `instance=fra-1;state=ryw`. Fields are
 * `;`-separated `key=value` pairs (Fly also accepts `,`); unknown keys are
 * ignored, as Fly ignores them, but `app=` cannot be honoured off Fly.
 */
export function parseFlyReplay(value: string): ParsedReplay {
  const fields = new Map<string, string>();
  for (const part of value.split(/[;,]/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  if (fields.has('app')) return { ok: false, reason: 'fly-replay app= is not supported by this edge' };
  const instance = nonEmpty(fields.get('instance'));
  const region = nonEmpty(fields.get('region'));
  if (instance === undefined && region === undefined) {
    return { ok: false, reason: `fly-replay names no instance or region: "${value}"` };
  }
  const state = nonEmpty(fields.get('state'));
  return {
    ok: true,
    target: {
      ...(instance !== undefined ? { instance } : {}),
      ...(region !== undefined ? { region } : {}),
      elsewhere: fields.get('elsewhere') === 'true',
      ...(state !== undefined ? { state } : {}),
    },
  };
}

export interface ReplaySource {
  readonly instance: string;
  readonly region: string;
  /** Unix time in microseconds, when the replay was decided. */
  readonly timeMicros: number;
  readonly state?: string;
}

/** `instance=fra-1;region=fra;t=1732600000000000;state=ryw` (state only when set). */
export function formatFlyReplaySrc(src: ReplaySource): string {
  const parts = [`instance=${src.instance}`, `region=${src.region}`, `t=${src.timeMicros}`];
  if (src.state !== undefined) parts.push(`state=${src.state}`);
  return parts.join(';');
}

/** Unix time in microseconds, the unit of `fly-replay-src`'s `t=`. */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
