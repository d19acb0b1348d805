/** Something that knows its own size. */
export interface Sized {
  /** Kept up to date by the owner; after a change, tell the map with resized(). */
  bytes: number;
}

/**
 * A least-recently-used map bounded by the bytes its values say they hold,
 * not by their number: ten thousand small search pages and a hundred large
 * article pages weigh what they weigh. A Map keeps insertion order, so the
 * first key is always the least recently used.
 */
export class ByteLru<V extends Sized> {
  private readonly entries = new Map<string, V>();
  private held = 0;
  /** Values pushed out to make room, since the start. */
  evicted = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The value, now the most recently used. */
  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  /** The value, leaving the order as it is. */
  peek(key: string): V | undefined {
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * Stores the value, then evicts the least recently used until the bound
   * holds. A value that is alone too large for the bound is not stored.
   */
  set(key: string, value: V): boolean {
    this.delete(key);
    if (value.bytes > this.maxBytes) return false;
    this.entries.set(key, value);
    this.held += value.bytes;
    this.shrink();
    return true;
  }

  /** The value under `key` has grown or shrunk by `delta` bytes (e.g. a compressed copy added). */
  resized(key: string, delta: number): void {
    if (!this.entries.has(key)) return;
    this.held += delta;
    this.shrink(key);
  }

  delete(key: string): void {
    const value = this.entries.get(key);
    if (value === undefined) return;
    this.entries.delete(key);
    this.held -= value.bytes;
  }

  /** Drops everything; returns how many values there were. */
  clear(): number {
    const count = this.entries.size;
    this.entries.clear();
    this.held = 0;
    return count;
  }

  /** Evicts from the least recently used, sparing `keep` (just grown) unless it alone is over the bound. */
  private shrink(keep?: string): void {
    for (const [key, value] of this.entries) {
      if (this.held <= this.maxBytes) return;
      if (key === keep) continue;
      this.entries.delete(key);
      this.held -= value.bytes;
      this.evicted++;
    }
    if (this.held > this.maxBytes && keep !== undefined && this.entries.has(keep)) {
      this.delete(keep);
      this.evicted++;
    }
  }
}
