import type { SqliteDatabase } from './database.js';

/**
 * Commits one small transaction (migration 5's one row, bumped): the marker
 * RYW_DURABILITY=standby commits when a write waits for a standby whose
 * stream has just opened and so has reported no position yet. LiteFS streams
 * it like any commit, and the standby's `tx` for it proves every earlier one
 * (docs/decisions/0010-standby-durability.md).
 */
export function markDurability(database: SqliteDatabase): void {
  database.write((db) => db.prepare('UPDATE durability_marks SET marked = marked + 1 WHERE id = 1').run());
}
