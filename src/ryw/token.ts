import { sign, unsign } from 'cookie-signature';
import type { Token } from './decide.js';
import { formatTxid, parseTxid, type Position } from './position.js';

/** The cookie browsers carry. */
export const TOKEN_COOKIE = 'ryw';
/** The header API clients carry, and the response header that hands the token out. */
export const TOKEN_HEADER = 'RYW-Token';
/** Anything longer is not a token of ours: rejected before any HMAC work. */
export const MAX_TOKEN_LENGTH = 160;

/**
 * How far in the future (by this instance's clock) a token's issue time may
 * be: the primary's clock may run a little ahead of ours. A token from
 * further ahead would outlive RYW_TTL_S, so it is refused.
 */
export const MAX_CLOCK_SKEW_MS = 10_000;

export type TokenRejection = 'malformed' | 'forged' | 'expired' | 'oversized' | 'future';
export type TokenCheck = { ok: true; token: Token } | { ok: false; reason: TokenRejection };

/**
 * A read-your-writes token is `<16-hex TXID>/<16-hex checksum>.<issued at,
 * unix ms>`, signed the way cookie-parser signs cookies (`s:<value>.<HMAC-SHA256>`,
 * cookie-signature), so the same string is a valid signed cookie and a valid
 * header. The checksum (LiteFS's pos file's, after that TXID) names the
 * write across a failover, where the TXID alone does not; the issue time (the
 * primary's clock) expires it and tells a replica when it must already have it.
 * Tokens of the older format, `<TXID>.<issued at>`, stay valid (a rolling
 * deploy), and are issued when the checksum is not known.
 */
const PAYLOAD = /^([0-9a-f]{16})(?:\/([0-9a-f]{16}))?\.(\d{1,15})$/;

export function tokenPayload(position: Position, issuedAt: number, checksum: string | null = null): string {
  const sum = checksum !== null && /^[0-9a-f]{16}$/.test(checksum) ? `/${checksum}` : '';
  return `${formatTxid(position)}${sum}.${Math.floor(issuedAt)}`;
}

/** The signed form, as it appears in the cookie (decoded) and in the header. */
export function signToken(payload: string, secrets: readonly string[]): string {
  return `s:${sign(payload, secrets[0]!)}`;
}

/** Checks a payload whose signature was already verified. */
function checkPayload(payload: string, now: number, ttlSeconds: number): TokenCheck {
  if (payload.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'oversized' };
  const match = PAYLOAD.exec(payload);
  if (!match) return { ok: false, reason: 'malformed' };
  const issuedAt = Number(match[3]);
  if (issuedAt + ttlSeconds * 1000 <= now) return { ok: false, reason: 'expired' };
  if (issuedAt > now + MAX_CLOCK_SKEW_MS) return { ok: false, reason: 'future' };
  const position = parseTxid(match[1]!)!;
  return { ok: true, token: match[2] === undefined ? { position, issuedAt } : { position, issuedAt, checksum: match[2] } };
}

/** Verifies a signed token (`s:…`) with any of the secrets, then checks it. */
export function verifyToken(signed: string, secrets: readonly string[], now: number, ttlSeconds: number): TokenCheck {
  if (signed.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'oversized' };
  if (!signed.startsWith('s:')) return { ok: false, reason: 'malformed' };
  for (const secret of secrets) {
    const payload = unsign(signed.slice(2), secret);
    if (payload !== false) return checkPayload(payload, now, ttlSeconds);
  }
  return { ok: false, reason: 'forged' };
}

/** How many verified tokens a process remembers: a reader repeats one cookie for RYW_TTL_S. */
export const VERIFIED_TOKENS_REMEMBERED = 10_000;

/**
 * `verifyToken` for the hot path: a token that verified once is remembered
 * (bounded, oldest forgotten first), so a reader's repeated cookie costs no
 * HMAC. Expiry is still checked on every use.
 */
export class TokenVerifier {
  private readonly verified = new Map<string, string>();

  constructor(private readonly secrets: readonly string[]) {}

  verify(signed: string, now: number, ttlSeconds: number): TokenCheck {
    const payload = this.verified.get(signed);
    if (payload !== undefined) return checkPayload(payload, now, ttlSeconds);
    const check = verifyToken(signed, this.secrets, now, ttlSeconds);
    if (check.ok) {
      if (this.verified.size >= VERIFIED_TOKENS_REMEMBERED) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(signed, signed.slice(2, signed.lastIndexOf('.')));
    }
    return check;
  }
}
