/** Someone who may write on the blog. Readers have no account. */
export interface Author {
  id: number;
  name: string;
  created: Date;
}

/** What a request knows of the author whose session it carries (`res.locals.author`). */
export interface SignedInAuthor {
  id: number;
  name: string;
}

/** An author as sign-in needs them: with the stored password hash (src/password.ts). */
export interface AuthorCredentials extends Author {
  passwordHash: string;
}

export const MIN_NAME_LENGTH = 1;
export const MAX_NAME_LENGTH = 64;
/**
 * NIST SP 800-63B asks for at least 8 and no composition rules; 10 keeps the
 * shortest guessable passwords out. The upper bound only caps the work one
 * attempt can ask of the hash (src/password.ts), far above any passphrase.
 */
export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 1024;

/**
 * Letters and marks of any script, digits, spaces and `. _ - '`: a name is
 * shown on every article and typed to sign in, so nothing that renders
 * invisibly or confusingly (controls, format characters, symbols).
 */
const NAME_PATTERN = /^[\p{L}\p{M}\p{N}][\p{L}\p{M}\p{N} ._'-]*$/u;

/**
 * The name as stored: NFC (a name typed on macOS and on Windows is the same
 * name), runs of white space made one space, trimmed.
 */
export function normalizeName(raw: string): string {
  return raw.normalize('NFC').replace(/\s+/gu, ' ').trim();
}

/**
 * What makes two names the same account: `Ada` and `ada` (and `ＡＤＡ`) are
 * one author, so that nobody can sign up as a look-alike of another.
 */
export function nameKey(name: string): string {
  return normalizeName(name).normalize('NFKC').toLowerCase();
}

/**
 * Passwords are compared as NFKC (NIST SP 800-63B): the same password typed
 * on two keyboards that compose accents differently is the same password.
 * Never trimmed: spaces are characters like any other.
 */
export function normalizePassword(raw: string): string {
  return raw.normalize('NFKC');
}

const length = (s: string) => [...s].length;

export type AuthorErrors = Partial<Record<'name' | 'password', string>>;

/** Checks a new author's name and password; returns them cleaned or the errors per field, so that a form keeps the name. */
export function validateNewAuthor(raw: {
  name?: unknown;
  password?: unknown;
}): { ok: true; value: { name: string; password: string } } | { ok: false; errors: AuthorErrors } {
  const name = typeof raw.name === 'string' ? normalizeName(raw.name) : '';
  const password = typeof raw.password === 'string' ? normalizePassword(raw.password) : '';
  const errors: AuthorErrors = {};
  const nameError = checkName(name);
  if (nameError) errors.name = nameError;
  if (length(password) < MIN_PASSWORD_LENGTH) errors.password = `Choose a password of at least ${MIN_PASSWORD_LENGTH} characters.`;
  else if (length(password) > MAX_PASSWORD_LENGTH) errors.password = `Passwords can be at most ${MAX_PASSWORD_LENGTH} characters.`;
  else if (nameKey(password) === nameKey(name)) errors.password = 'Choose a password other than your name.';
  return Object.keys(errors).length === 0 ? { ok: true, value: { name, password } } : { ok: false, errors };
}

/** Why `name` (already normalized) cannot be an author's name, or null. */
export function checkName(name: string): string | null {
  if (length(name) < MIN_NAME_LENGTH) return 'Please choose a name.';
  if (length(name) > MAX_NAME_LENGTH) return `Names can be at most ${MAX_NAME_LENGTH} characters.`;
  if (!NAME_PATTERN.test(name)) return "Names are letters, digits and spaces (and . _ - '), starting with a letter or digit.";
  return null;
}

export interface AuthorStore {
  /** Whether the blog has any author yet (`/setup` is open only while it has none). */
  hasAuthors(): boolean;
  /** By name, as nameKey() compares them; null when there is none. */
  findByName(name: string): AuthorCredentials | null;
  /**
   * Commits a new author and returns them. `onlyIfFirst`: in the same write
   * transaction, only when there is no author yet, so that of two setups
   * racing only the first wins (the other gets null). Throws
   * AppError('invalid') when the name is taken.
   */
  create(input: { name: string; passwordHash: string }, options?: { onlyIfFirst?: boolean }): Author | null;
  /** Replaces an author's password hash (a stronger one after sign-in, see needsRehash()). */
  setPasswordHash(id: number, passwordHash: string): void;
}

/**
 * Sessions by the hash of their id: the database never holds what the cookie
 * holds, so a copy of it (a backup, a replica's volume) signs nobody in.
 */
export interface SessionStore {
  /** Commits a session; `now` also drops sessions that have expired. */
  createSession(session: { idHash: string; authorId: number; expires: Date }, now: Date): void;
  /** The author of an unexpired session, or null. A read: it runs on any replica. */
  findSession(idHash: string, now: Date): SignedInAuthor | null;
  /** Ends a session (a write: on a replica it is replayed to the primary). */
  deleteSession(idHash: string): void;
}
