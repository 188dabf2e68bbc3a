import { ensurePartitions } from '../audit/partitions.ts';
import { resolveConfig } from '../config/index.ts';
import { openDatabase } from '../store/index.ts';
import { migrate } from '../store/migrate.ts';

/** `npm run migrate`: applies pending migrations (and this month's partitions) to the configured database. */
async function main(): Promise<void> {
  const config = resolveConfig();
  const db = await openDatabase(config);
  try {
    const applied = await migrate(db);
    const created = await ensurePartitions(db);
    process.stdout.write(
      `migrate: ${db.kind}: applied ${applied.length === 0 ? 'nothing (up to date)' : applied.join(', ')}; partitions created: ${created.length}\n`,
    );
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  process.stderr.write(`migrate: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
