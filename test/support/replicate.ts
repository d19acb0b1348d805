import Database from 'better-sqlite3';
import type { FakeLiteFS } from './fake-litefs.js';

/** The tables a blog's replica must have as the primary has them (the search index follows from articles' triggers). */
export const REPLICATED_TABLES = ['authors', 'sessions', 'articles', 'deleted_articles'] as const;

/**
 * What LiteFS does, by hand: `to`'s tables become `from`'s, row by row
 * (deleted, changed, added: so that the triggers keep `to`'s search index
 * right, as the page-level copy LiteFS makes would), then `to`'s position
 * moves to `position`, when given.
 */
export function replicate(from: FakeLiteFS, to: FakeLiteFS, position?: bigint): void {
  const db = new Database(to.dbPath);
  try {
    // LiteFS copies pages, not rows: no foreign key is checked on the way.
    db.pragma('foreign_keys = OFF');
    db.exec(`ATTACH DATABASE '${from.dbPath.replaceAll("'", "''")}' AS p`);
    db.transaction(() => {
      for (const table of REPLICATED_TABLES) {
        const columns = db.prepare(`SELECT name, pk FROM pragma_table_info('${table}')`).all() as { name: string; pk: number }[];
        const key = columns.find((column) => column.pk === 1)!.name;
        const others = columns.filter((column) => column.name !== key).map((column) => column.name);
        db.exec(`
          DELETE FROM main.${table} WHERE ${key} NOT IN (SELECT ${key} FROM p.${table});
          UPDATE main.${table} SET ${others.map((c) => `${c} = s.${c}`).join(', ')}
            FROM p.${table} AS s WHERE s.${key} = main.${table}.${key};
          INSERT INTO main.${table} SELECT * FROM p.${table} WHERE ${key} NOT IN (SELECT ${key} FROM main.${table});
        `);
      }
    })();
  } finally {
    db.close();
  }
  if (position !== undefined) to.setPosition(position);
}
