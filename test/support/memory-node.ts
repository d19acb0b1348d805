import type { NodeFacts, NodeIdentity, Position, ReplicaNode, Role, WakeSource } from '../../src/ryw/index.js';
import { Waiters } from '../../src/ryw/index.js';

/**
 * A replica node in memory, driven by the test: its role, position and
 * replication horizon are whatever the test sets, and waiters are woken the
 * moment the test moves the position. For HTTP tests of the layer that need
 * no files; checked against the real interface.
 */
export class MemoryNode implements ReplicaNode {
  readonly replicated = true;
  readonly woken: Record<WakeSource, number> = { events: 0, poll: 0 };
  private current: { role: Role; primary: string | null };
  private at: Position | null;
  /** The primary's time (unix ms) up to which this node has everything; null: unknown. */
  replicatedUntil: number | null = null;
  private readonly waiters = new Waiters();
  /** Writes waiting for a primary: woken by setRole() naming one (or making this node the primary). */
  private readonly primaryWaiters = new Waiters();

  constructor(
    readonly identity: NodeIdentity,
    state: { role: Role; primary?: string | null; position?: Position | null },
  ) {
    this.current = { role: state.role, primary: state.primary ?? null };
    this.at = state.position ?? null;
  }

  /** The checksum after each TXID, as this node's lineage has it (setPosition's second argument). */
  readonly checksums = new Map<Position, string>();

  /** Moves the position, as replication would (with the checksum after it, if given); wakes whoever waited for it. */
  setPosition(position: Position | null, checksum?: string): void {
    this.at = position;
    if (position !== null && checksum !== undefined) this.checksums.set(position, checksum);
    this.woken.events += this.waiters.advance(position);
  }

  setRole(role: Role, primary: string | null = null): void {
    this.current = { role, primary };
    if (this.knowsPrimary()) this.primaryWaiters.advance(0n);
  }

  /** Writes waiting now for a primary to be named. */
  get primaryWaiting(): number {
    return this.primaryWaiters.size;
  }

  private knowsPrimary(): boolean {
    return this.current.role !== 'replica' || this.current.primary !== null;
  }

  waitForPrimary(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.knowsPrimary()) return Promise.resolve(true);
    if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve(false);
    return this.primaryWaiters.add(0n, timeoutMs, signal);
  }

  role(): { role: Role; primary: string | null } {
    return this.current;
  }

  facts(needs: { position?: boolean; tokenPosition?: Position } = { position: true }): NodeFacts {
    return {
      ...this.identity,
      ...this.current,
      position: (needs.position ?? needs.tokenPosition !== undefined) ? this.at : null,
      replicatedUntil: this.current.role === 'replica' ? this.replicatedUntil : null,
      checksumAt: (position) => this.checksumAt(position),
    };
  }

  checksumAt(position: Position): string | null {
    return this.checksums.get(position) ?? null;
  }

  position(): Position | null {
    return this.at;
  }

  waitFor(target: Position, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (timeoutMs <= 0 || signal?.aborted) return Promise.resolve(false);
    if (this.at !== null && this.at >= target) return Promise.resolve(true);
    return this.waiters.add(target, timeoutMs, signal);
  }

  committedPosition(): Position | null {
    return this.at;
  }

  stats(): { waiting: number; woken: Readonly<Record<WakeSource, number>> } {
    return { waiting: this.waiters.size, woken: this.woken };
  }

  close(): void {
    this.waiters.clear();
    this.primaryWaiters.clear();
  }
}
