import pg from 'pg';
import { onTestFailed } from 'vitest';
import { migrate } from '../../src/store/migrate.ts';
import { PostgresDatabase } from '../../src/store/postgres.ts';
import { testServiceUrls } from './services.ts';

/**
 * The Postgres server the integration tests create their own databases on: TEST_DATABASE_URL, a
 * container, or the local one (test/support/services.ts).
 */
export const TEST_DATABASE_URL = testServiceUrls().databaseUrl;

/** A fresh, migrated database for one test suite. */
export interface TestDatabase {
  url: string;
  name: string;
  db: PostgresDatabase;
  /** Closes the pool and drops the database (kept, and its name printed, when `keep` is true). */
  drop(options?: { keep?: boolean }): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** Runs one statement as the server's admin (on the maintenance database), with a clear error when unreachable. */
export async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(
      `integration tests need Postgres at ${TEST_DATABASE_URL} (set TEST_DATABASE_URL): ${(err as Error).message}`,
    );
  }
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/**
 * Creates `verdict_test_<label>_<random>`, applies the migrations and returns it. Call `drop()`
 * in afterAll; with `keepOnFailure` (default) a failed test leaves the database to inspect.
 */
export async function createTestDatabase(
  label: string,
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  const name = `verdict_test_${label.toLowerCase().replace(/[^a-z0-9]+/g, '_')}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = withDatabase(TEST_DATABASE_URL, name);
  const db = new PostgresDatabase({ url, max: 5 });
  if (options.migrate !== false) await migrate(db);
  let failed = false;
  try {
    onTestFailed(() => {
      failed = true;
    });
  } catch {
    // Called outside a test (beforeAll): failures are then reported by the suite, and we drop anyway.
  }
  return {
    url,
    name,
    db,
    async drop(dropOptions = {}) {
      await db.close();
      if (dropOptions.keep || failed) {
        process.stderr.write(`test database kept for inspection: ${url}\n`);
        return;
      }
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
