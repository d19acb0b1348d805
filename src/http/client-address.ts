import { isIP } from 'node:net';
import type { Request } from 'express';

/** The header Fly's edge sets to the address the client connected from (it overwrites any the client sent). */
export const FLY_CLIENT_IP_HEADER = 'fly-client-ip';

/**
 * The address a request came from, as the sign-in limits count it. Behind
 * Fly's edge every connection comes from the edge, so the client is in
 * `Fly-Client-IP`; that header is believed only when `trustFlyClientIp` (the
 * app runs on Fly), since anywhere else a client could write it and get a
 * fresh count per request. IPv6 addresses count per /64: one subscriber gets
 * a whole /64, and would otherwise have 2^64 addresses to try from.
 */
export function clientAddress(req: Request, trustFlyClientIp: boolean): string {
  const header = trustFlyClientIp ? req.get(FLY_CLIENT_IP_HEADER)?.trim() : undefined;
  const raw = header && isIP(header) ? header : (req.socket.remoteAddress ?? 'unknown');
  return addressKey(raw);
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; an IPv6 address → its /64 (`2001:db8:0:1::/64`); anything else as it is. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  const groups = expandIPv6(address.split('%')[0]!);
  return groups
    ? `${groups
        .slice(0, 4)
        .map((g) => g.replace(/^0+(?=.)/, ''))
        .join(':')}::/64`
    : address;
}

/** The eight 16-bit groups of an IPv6 address, `::` expanded; null if it embeds IPv4 in an unusual way. */
function expandIPv6(address: string): string[] | null {
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  if ([...left, ...right].some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return null;
  return [...left, ...Array<string>(missing).fill('0'), ...right];
}
