import { reached, type Position } from './position.js';

interface Waiter {
  target: Position;
  deadline: number;
  resolve: (reached: boolean) => void;
}

/**
 * Requests waiting for a position, woken together. There is one timer for the
 * whole set (armed for the earliest deadline), never one per waiting request,
 * so a thousand waiters cost a thousand small objects and nothing else.
 */
export class Waiters {
  /** Sorted by deadline; waits share one budget, so pushes land at the end. */
  private readonly queue: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  get size(): number {
    return this.queue.length;
  }

  /** Resolves true once `advance` reports the target reached, false at the deadline or on abort. */
  add(target: Position, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { target, deadline: this.now() + timeoutMs, resolve };
      let at = this.queue.length;
      while (at > 0 && this.queue[at - 1]!.deadline > waiter.deadline) at--;
      this.queue.splice(at, 0, waiter);
      this.arm();
      signal?.addEventListener('abort', () => this.remove(waiter, false), { once: true });
    });
  }

  /** Wakes every waiter whose target `position` has reached; returns how many. */
  advance(position: Position | null): number {
    if (position === null || this.queue.length === 0) return 0;
    const woken: Waiter[] = [];
    let kept = 0;
    for (const waiter of this.queue) {
      if (reached(position, waiter.target)) woken.push(waiter);
      else this.queue[kept++] = waiter;
    }
    this.queue.length = kept;
    if (kept === 0) this.disarm();
    for (const waiter of woken) waiter.resolve(true);
    return woken.length;
  }

  /** Gives up on everyone (shutdown). */
  clear(): void {
    for (const waiter of [...this.queue]) this.remove(waiter, false);
  }

  private remove(waiter: Waiter, outcome: boolean): void {
    const index = this.queue.indexOf(waiter);
    if (index === -1) return;
    this.queue.splice(index, 1);
    waiter.resolve(outcome);
    if (this.queue.length === 0) this.disarm();
  }

  private arm(): void {
    const first = this.queue[0];
    if (!first || first.deadline >= this.armedFor) return;
    this.disarm();
    this.armedFor = first.deadline;
    this.timer = setTimeout(() => this.expire(), Math.max(0, first.deadline - this.now()));
    this.timer.unref?.();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
  }

  private expire(): void {
    this.timer = null;
    this.armedFor = Infinity;
    const now = this.now();
    // +1 ms: setTimeout may fire a hair early against performance.now().
    while (this.queue[0] && this.queue[0].deadline <= now + 1) this.remove(this.queue[0], false);
    this.arm();
  }
}
