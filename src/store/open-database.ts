import path from 'node:path';
import type { Config } from '../config/resolve-config.ts';
import { PGliteDatabase } from './pglite.ts';
import { openPostgres } from './postgres.ts';
import type { Database } from './types.ts';

/**
 * The configured database: Postgres when `databaseUrl` is set, otherwise embedded PGlite in
 * `${dataDir}/pglite`. `schema` (Postgres only) scopes every table to one schema.
 */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir'>,
  options: { schema?: string; max?: number } = {},
): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    return openPostgres({ url: config.databaseUrl, schema: options.schema, max: options.max });
  }
  return PGliteDatabase.open(path.join(config.dataDir, 'pglite'));
}
