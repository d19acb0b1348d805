/**
 * A replication position: the LiteFS transaction ID (TXID) of the last
 * transaction a node has applied. TXIDs grow by one per transaction, but can go
 * down when a database is restored or re-snapshotted after a failover, so a
 * position only orders positions of the same lineage.
 */
export type Position = bigint;

const TXID_HEX = /^[0-9a-f]{16}$/;

/** Parses exactly 16 lowercase hex digits (LiteFS's TXID form); anything else is not a position. */
export function parseTxid(text: string): Position | null {
  return TXID_HEX.test(text) ? BigInt(`0x${text}`) : null;
}

/** The 16-hex-digit form LiteFS uses, e.g. `000000000000002a`. */
export function formatTxid(position: Position): string {
  return position.toString(16).padStart(16, '0');
}

/** Whether a node at `position` has applied everything up to `target`. */
export function reached(position: Position | null, target: Position): boolean {
  return position !== null && position >= target;
}
