import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Database, Sql } from './types.ts';

/** Where the ordered plain-SQL migrations live. */
export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../migrations');

/** One migration file: `NNNN_name.sql`, applied in name order. */
export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

/** An applied migration whose file has changed since: the schema no longer matches the code. */
export class MigrationChecksumError extends Error {
  override name = 'MigrationChecksumError';
}

// Any constant shared by every replica; pg_advisory_xact_lock takes a bigint.
const MIGRATION_LOCK_KEY = 7_301_553_017;

/** Takes the migration lock until the transaction ends. */
function migrationLockSql(): Sql {
  return { text: 'SELECT pg_advisory_xact_lock($1)', values: [MIGRATION_LOCK_KEY] };
}

const CREATE_SCHEMA_MIGRATIONS = `CREATE TABLE IF NOT EXISTS schema_migrations (
  name        text PRIMARY KEY,
  checksum    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
)`;

/** The migrations applied, with the checksums they had then. */
function appliedMigrationsSql(): Sql {
  return { text: 'SELECT name, checksum FROM schema_migrations', values: [] };
}

/** Records a migration as applied. */
function recordMigrationSql(migration: Migration): Sql {
  return {
    text: 'INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)',
    values: [migration.name, migration.checksum],
  };
}

/** Reads the migration files in order. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d+_[\w-]+\.sql$/.test(file))
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/**
 * Applies the pending migrations and returns their names.
 *
 * Why not a library: node-pg-migrate, postgres-migrations and friends drive a `pg` client and cannot
 * run on PGlite; umzug can, but brings neither checksums nor the lock and would be glue around the
 * same twenty lines. This runner does only what the service needs: ordered files, name + checksum
 * in `schema_migrations`, an advisory lock.
 *
 * NOTE: everything runs in ONE transaction that first takes a transaction-level advisory lock, so
 * replicas starting at once queue on the lock, and the later ones find the work done. The lock comes
 * before `CREATE TABLE IF NOT EXISTS schema_migrations`, which itself races without it. A migration
 * therefore must not use statements that refuse a transaction (CREATE INDEX CONCURRENTLY).
 */
export async function migrate(db: Database, migrations: Migration[] = loadMigrations()): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query(migrationLockSql());
    await tx.exec(CREATE_SCHEMA_MIGRATIONS);
    const { rows } = await tx.query<{ name: string; checksum: string }>(appliedMigrationsSql());
    const applied = new Map(rows.map((row) => [row.name, row.checksum]));
    const done: string[] = [];
    for (const migration of migrations) {
      const checksum = applied.get(migration.name);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          throw new MigrationChecksumError(
            `migration ${migration.name} was changed after it was applied (checksum ${checksum.slice(0, 12)}… in the database, ${migration.checksum.slice(0, 12)}… on disk); add a new migration instead`,
          );
        }
        continue;
      }
      await tx.exec(migration.sql);
      await tx.query(recordMigrationSql(migration));
      done.push(migration.name);
    }
    return done;
  });
}
