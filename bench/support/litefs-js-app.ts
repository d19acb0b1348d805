/**
 * A tiny Express app using the published litefs-js package exactly as its
 * README documents for Express: ensure-primary, then transactional
 * consistency (the `txnum` cookie), then the routes, then set-tx-number. It
 * reads LITEFS_DIR and DATABASE_FILENAME like any litefs-js app. Only the
 * wake-up benchmark starts it, on a replica's LiteFS mount.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import express from 'express';
import { getEnsurePrimaryMiddleware, getSetTxNumberMiddleware, getTransactionalConsistencyMiddleware } from 'litefs-js/express';

const litefsDir = process.env.LITEFS_DIR;
const databaseFile = process.env.DATABASE_FILENAME;
if (!litefsDir || !databaseFile) throw new Error('LITEFS_DIR and DATABASE_FILENAME are required');
let db: Database.Database | null = null;
const database = () => (db ??= new Database(join(litefsDir, databaseFile), { readonly: true, fileMustExist: true }));

const app = express();
app.get('/healthz', (_req, res) => {
  res.json({ ok: true });
});
app.use(getEnsurePrimaryMiddleware());
app.use(getTransactionalConsistencyMiddleware());
app.get('/articles/:id', (req, res) => {
  const article = database().prepare('SELECT id, title, content, created FROM articles WHERE id = ?').get(Number(req.params.id));
  if (!article) res.status(404).json({ error: 'not found' });
  else res.json(article);
});
app.use(getSetTxNumberMiddleware());

const server = app.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  db?.close();
  process.exit(0);
});
