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

  constructor(
    readonly identity: NodeIdentity,
    state: { role: Role; primary?: string | null; position?: Position | null },
  ) {
    this.current = { role: state.role, primary: state.primary ?? null };
    this.at = state.position ?? null;
  }

  /** Moves the position, as replication would; wakes whoever waited for it. */
  setPosition(position: Position | null): void {
    this.at = position;
    this.woken.events += this.waiters.advance(position);
  }

  setRole(role: Role, primary: string | null = null): void {
    this.current = { role, primary };
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
    };
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
  }
}
