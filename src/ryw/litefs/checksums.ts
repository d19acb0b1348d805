import type { Position } from '../position.js';

/**
 * How many TXIDs' checksums a node keeps per lineage: the first ones after
 * each primary change, which is where a new primary reuses the TXIDs of
 * the writes a failover lost (the unreplicated tail: a few, rarely hundreds).
 * About 100 bytes each.
 */
export const CHECKSUMS_REMEMBERED = 4_096;

/**
 * The checksum this node's lineage had after each TXID it saw (from LiteFS's
 * `tx` events and reads of the pos file), so that a token whose TXID was
 * reached but whose checksum differs can be told apart: it names a write a
 * failover lost, whose TXID the new primary has used again (LiteFS #159).
 *
 * Forgotten whenever a new lineage may begin: the node follows another
 * primary, or none, or may have missed a change (see LiteFSNode.follow() and
 * restartLineage()); or its database was seen replaced here (the same TXID
 * with other content, the position down: a restore or a re-snapshot). After a primary change,
 * what this node sees is its own lineage only once it has heard from the new
 * primary (before, its database may still be the old one, about to be
 * replaced by a snapshot): until `trusted` says so, nothing is kept. When full,
 * later TXIDs are not kept (see CHECKSUMS_REMEMBERED): unknown is "met".
 */
export class LineageChecksums {
  private readonly sums = new Map<Position, string>();
  private highest: Position | null = null;

  constructor(private readonly limit = CHECKSUMS_REMEMBERED) {}

  get size(): number {
    return this.sums.size;
  }

  /** A new lineage may begin here: forget everything. */
  forget(): void {
    this.sums.clear();
    this.highest = null;
  }

  /**
   * What this node saw at `txid`. `trusted`: its database is of the current
   * primary's lineage now. `fromFile`: read from the pos file, which is the
   * database as it is (an event may arrive after a read of the file that
   * already showed a later TXID).
   */
  observe(txid: Position, checksum: string | null, { trusted, fromFile }: { trusted: boolean; fromFile: boolean }): void {
    if (checksum === null) return;
    const known = this.sums.get(txid);
    // The same TXID with other content, or the file lower than before: the database was replaced.
    if ((known !== undefined && known !== checksum) || (fromFile && this.highest !== null && txid < this.highest)) this.forget();
    if (!trusted || this.sums.has(txid) || this.sums.size >= this.limit) return;
    this.sums.set(txid, checksum);
    if (this.highest === null || txid > this.highest) this.highest = txid;
  }

  /** The checksum this lineage had after `txid`; null when not known. */
  at(txid: Position): string | null {
    return this.sums.get(txid) ?? null;
  }
}
