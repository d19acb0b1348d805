import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** scrypt's cost: N = 2^log2N, block size r, parallelism p (RFC 7914). */
export interface ScryptParams {
  log2N: number;
  r: number;
  p: number;
}

/**
 * One of OWASP's equivalent scrypt settings (Password Storage Cheat Sheet:
 * N=2^14, r=8, p=5): 16 MiB per hash (128·N·r), about 0.2 s of one core.
 * Chosen over N=2^17, p=1 (128 MiB) because hashes run four at a time on
 * libuv's threadpool, and a small machine would not hold four of those.
 * Every hash records its parameters, so raising these later only needs a
 * deploy: old hashes still verify, and are rehashed at the next sign-in
 * (needsRehash()).
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { log2N: 14, r: 8, p: 5 };
export const SALT_BYTES = 16;
export const KEY_BYTES = 32;
/**
 * The most work a stored hash may ask for: a tampered hash (`ln=30`) must not
 * make one sign-in allocate gigabytes or run for minutes.
 */
export const MAX_SCRYPT_MEMORY_BYTES = 256 * 1024 * 1024;
const MAX_LOG2N = 20;
const MAX_R = 32;
const MAX_P = 16;

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) =>
    scryptCallback(password, salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key))),
  );

const memoryOf = ({ log2N, r }: ScryptParams) => 128 * 2 ** log2N * r;

function derive(password: string, salt: Buffer, keylen: number, params: ScryptParams): Promise<Buffer> {
  // Asynchronous: scrypt runs on libuv's threadpool, never on the event loop.
  // maxmem: Node's default (32 MiB) is a guard, not a setting: allow what the parameters need.
  return scrypt(password, salt, keylen, { N: 2 ** params.log2N, r: params.r, p: params.p, maxmem: 2 * memoryOf(params) });
}

const b64 = (buffer: Buffer) => buffer.toString('base64').replace(/=+$/, '');

/**
 * Hashes a password into a PHC-style string that names its algorithm and
 * parameters: `$scrypt$ln=14,r=8,p=5$<salt>$<key>` (base64, unpadded).
 */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, KEY_BYTES, params);
  return `$scrypt$ln=${params.log2N},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

const HASH_PATTERN = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{22,88})\$([A-Za-z0-9+/]{22,88})$/;

/** The parameters a stored hash was made with, or null when it is not one of ours or asks for too much work. */
export function parseHash(stored: string): ParsedHash | null {
  const match = HASH_PATTERN.exec(stored);
  if (!match) return null;
  const params = { log2N: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  if (params.log2N < 1 || params.log2N > MAX_LOG2N || params.r < 1 || params.r > MAX_R || params.p < 1 || params.p > MAX_P) return null;
  if (memoryOf(params) > MAX_SCRYPT_MEMORY_BYTES) return null;
  const salt = Buffer.from(match[4]!, 'base64');
  const key = Buffer.from(match[5]!, 'base64');
  if (salt.length < SALT_BYTES || key.length < 16) return null;
  return { params, salt, key };
}

const standIns = new Map<string, Promise<string>>();

/**
 * A hash of no one's password, made with `params`: sign-in checks a password
 * against it when no author has the name, so that a refusal takes as long
 * for a name that exists as for one that does not (no enumeration by timing).
 */
export function standInHash(params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  const key = `${params.log2N},${params.r},${params.p}`;
  let hash = standIns.get(key);
  if (!hash) {
    hash = hashPassword(randomBytes(16).toString('hex'), params);
    standIns.set(key, hash);
  }
  return hash;
}

/**
 * Whether `password` is the one `stored` was made from, comparing in
 * constant time. A stored hash that is malformed or asks for too much work
 * never matches.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await derive(password, parsed.salt, parsed.key.length, parsed.params);
  return timingSafeEqual(key, parsed.key);
}

/** Whether a stored hash is weaker than `params` (or not ours): then it is replaced at the next successful sign-in. */
export function needsRehash(stored: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): boolean {
  const parsed = parseHash(stored);
  if (!parsed) return true;
  const old = parsed.params;
  return old.log2N < params.log2N || old.r < params.r || old.p < params.p || parsed.key.length < KEY_BYTES;
}
