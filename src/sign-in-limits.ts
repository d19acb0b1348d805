/** At most `max` failed attempts in any `windowMs`. */
export interface Limit {
  max: number;
  windowMs: number;
}

/**
 * Failed sign-ins per account name (whether or not an author has it, so that
 * a refusal says nothing about which names exist): a password guesser gets
 * 10 tries per quarter hour, about 1,000 a day, against a password of at
 * least 10 characters. The price is that anyone can keep an author from
 * signing in for a quarter hour at a time; a session already open is not
 * affected (docs/decisions/0007-author-sessions.md).
 */
export const ACCOUNT_LIMIT: Limit = { max: 10, windowMs: 15 * 60 * 1000 };
/**
 * Failed sign-ins per client address (an IPv6 /64, see clientAddress()):
 * one address cannot sweep many names, and a household or office behind
 * one address still has room for its own typos.
 */
export const ADDRESS_LIMIT: Limit = { max: 30, windowMs: 15 * 60 * 1000 };
/**
 * Keys remembered per limit; past this the least recently failed is
 * forgotten, so a flood of made-up names or addresses costs bounded memory
 * (at most 10,000 keys × `max` timestamps).
 */
export const MAX_TRACKED_KEYS = 10_000;

/** Failures of one kind of key, in memory, with a sliding window. */
export class FailureCounter {
  /** Per key, the times of its most recent failures (at most `max`), oldest first. */
  private readonly failures = new Map<string, number[]>();

  constructor(
    readonly limit: Limit,
    private readonly maxKeys = MAX_TRACKED_KEYS,
  ) {}

  /** How long until `key` may try again: 0 when it may now. */
  retryAfterMs(key: string, now: number): number {
    const times = this.recent(key, now);
    if (times.length < this.limit.max) return 0;
    return times[times.length - this.limit.max]! + this.limit.windowMs - now;
  }

  fail(key: string, now: number): void {
    const times = this.recent(key, now);
    times.push(now);
    if (times.length > this.limit.max) times.splice(0, times.length - this.limit.max);
    // Re-inserted, so that Map order is least recently failed first.
    this.failures.delete(key);
    this.failures.set(key, times);
    while (this.failures.size > this.maxKeys) this.failures.delete(this.failures.keys().next().value!);
  }

  /** Takes back one failure counted at `at` (an attempt counted before it was checked, which turned out right). */
  withdraw(key: string, at: number): void {
    const times = this.failures.get(key);
    const index = times?.lastIndexOf(at) ?? -1;
    if (index < 0) return;
    times!.splice(index, 1);
    if (times!.length === 0) this.failures.delete(key);
  }

  clear(key: string): void {
    this.failures.delete(key);
  }

  get size(): number {
    return this.failures.size;
  }

  private recent(key: string, now: number): number[] {
    const times = this.failures.get(key);
    if (!times) return [];
    const fresh = times.filter((t) => t > now - this.limit.windowMs);
    if (fresh.length === 0) this.failures.delete(key);
    return fresh;
  }
}

/** An attempt attempt() let through: counted as a failure until succeeded() says it was not one. */
export interface SignInAttempt {
  readonly account: string;
  readonly address: string;
  readonly at: number;
}

/** Whether a sign-in may be tried, as a value the route acts on. */
export type LimitDecision = { kind: 'try'; attempt: SignInAttempt } | { kind: 'refuse'; by: 'account' | 'address'; retryAfterMs: number };

/**
 * Both limits of sign-in. It lives in the primary's memory: every sign-in
 * is a write, and every write is answered there, so the primary sees every
 * attempt; a failover forgets the counts (docs/decisions/0007-author-sessions.md).
 */
export class SignInLimiter {
  readonly accounts: FailureCounter;
  readonly addresses: FailureCounter;

  constructor(options: { account?: Limit; address?: Limit; maxKeys?: number } = {}) {
    this.accounts = new FailureCounter(options.account ?? ACCOUNT_LIMIT, options.maxKeys);
    this.addresses = new FailureCounter(options.address ?? ADDRESS_LIMIT, options.maxKeys);
  }

  /**
   * Whether a sign-in may be tried now, and if so, counts it as a failure
   * at once, before its password is checked: hashing takes a while (about
   * 0.2 s) and yields meanwhile, and attempts sent all at once would
   * otherwise all pass before the first had failed. A refused attempt costs
   * no hashing. The route calls succeeded() when the password matched.
   */
  attempt(account: string, address: string, now: number): LimitDecision {
    const decision = this.check(account, address, now);
    if (decision.kind === 'refuse') return decision;
    this.accounts.fail(account, now);
    this.addresses.fail(address, now);
    return decision;
  }

  /** What attempt() would decide, counting nothing. */
  check(account: string, address: string, now: number): LimitDecision {
    const byAddress = this.addresses.retryAfterMs(address, now);
    if (byAddress > 0) return { kind: 'refuse', by: 'address', retryAfterMs: byAddress };
    const byAccount = this.accounts.retryAfterMs(account, now);
    if (byAccount > 0) return { kind: 'refuse', by: 'account', retryAfterMs: byAccount };
    return { kind: 'try', attempt: { account, address, at: now } };
  }

  /**
   * The attempt's password matched: its account's count starts again, and
   * the address's loses this attempt only (the address may be sweeping other
   * names, and its other failures stand).
   */
  succeeded(attempt: SignInAttempt): void {
    this.accounts.clear(attempt.account);
    this.addresses.withdraw(attempt.address, attempt.at);
  }
}
