import { ensurePartitions } from '../audit/partitions.ts';
import { resolveConfig } from '../config/resolve-config.ts';
import { acquireEmbeddedLock } from '../store/embedded-lock.ts';
import { migrate } from '../store/migrate.ts';
import { openDatabase } from '../store/open-database.ts';

/** `npm run migrate`: applies pending migrations (and this month's partitions) to the configured database. */
async function main(): Promise<void> {
  const config = resolveConfig();
  // The embedded store is single-process: refused (EmbeddedStoreBusyError) while a service holds it.
  const lock = config.databaseUrl === undefined ? acquireEmbeddedLock(config.dataDir, 'migrate') : undefined;
  const db = await openDatabase(config).catch((err) => {
    lock?.release();
    throw err;
  });
  try {
    const applied = await migrate(db);
    const created = await ensurePartitions(db);
    process.stdout.write(
      `migrate: ${db.kind}: applied ${applied.length === 0 ? 'nothing (up to date)' : applied.join(', ')}; partitions created: ${created.length}\n`,
    );
  } finally {
    await db.close();
    lock?.release();
  }
}

main().catch((err) => {
  process.stderr.write(`migrate: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
