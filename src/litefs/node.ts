import type { NodeFacts, Role } from '../consistency.js';
import type { Position } from '../position.js';
import { hasPositionFile, readPosition, readPrimary, type LiteFSFiles } from './files.js';
import type { PositionWatcher } from './position-watcher.js';

export interface NodeIdentity {
  region: string;
  instance: string;
}

/**
 * This instance as LiteFS sees it: its role (from `.primary`), the primary's
 * id, and its position (from the shared watcher). Roles are read from the file
 * on every call, because a primary can change at any moment.
 */
export class LiteFSNode {
  constructor(
    readonly identity: NodeIdentity,
    private readonly files: LiteFSFiles,
    readonly watcher: PositionWatcher,
    /** False when neither LiteFS's files nor its API were found at start: standalone. */
    readonly onLiteFS: boolean,
  ) {}

  static detect(files: LiteFSFiles, apiConfigured: boolean): boolean {
    return apiConfigured || hasPositionFile(files) || readPrimary(files).exists;
  }

  facts(): NodeFacts {
    const { role, primary } = this.role();
    return { ...this.identity, role, primary, position: role === 'standalone' ? null : this.watcher.current() };
  }

  role(): { role: Role; primary: string | null } {
    if (!this.onLiteFS) return { role: 'standalone', primary: null };
    const file = readPrimary(this.files);
    return file.exists ? { role: 'replica', primary: file.primary } : { role: 'primary', primary: null };
  }

  /** The position as the watcher knows it (the event stream, or one read of the pos file). */
  position(): Position | null {
    return this.watcher.current();
  }

  /**
   * The position a token issued now must carry: read from the pos file itself,
   * because right after a commit the event stream may not have told us yet.
   */
  committedPosition(): Position | null {
    return readPosition(this.files);
  }
}
