import { ConfigError, loadConfig } from './config.js';
import { SqliteDatabase } from './sqlite/database.js';

/**
 * `node dist/migrate.js`: runs the migrations and exits. LiteFS's `exec` runs it
 * on lease candidates only, before the app (see litefs.yml).
 */
try {
  const config = loadConfig();
  const database = new SqliteDatabase(config.databasePath, { create: true });
  const { from, to } = database.migrate();
  database.close();
  console.log(`litefs-ryw: migrated ${config.databasePath} from version ${from} to ${to}`);
} catch (error) {
  console.error(`litefs-ryw: ${error instanceof ConfigError ? error.message : `migration failed: ${String(error)}`}`);
  process.exit(1);
}
