import { parseArgs } from 'node:util';
import { ensurePartitions } from '../audit/partitions.ts';
import { resolveConfig } from '../config/resolve-config.ts';
import { acquireEmbeddedLock } from '../store/embedded-lock.ts';
import { migrate } from '../store/migrate.ts';
import { openDatabase } from '../store/open-database.ts';

const MIGRATE_USAGE = `usage: verdict migrate   (npm run migrate)

Applies the pending migrations, and creates this month's partitions, in the configured database:
DATABASE_URL, or the embedded store in $VERDICT_DATA_DIR when it is unset. Takes no option.`;

/**
 * `npm run migrate`: applies pending migrations (and this month's partitions) to the configured
 * database. Exit 0 done (or --help), 1 failed, 2 bad usage: any argument but --help is refused.
 */
async function main(argv: string[]): Promise<number> {
  // NOTE: parsed before the configuration is read: `--help` must never touch the database.
  let help: boolean | undefined;
  try {
    ({
      values: { help },
    } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`migrate: ${(err as Error).message}\n${MIGRATE_USAGE}\n`);
    return 2;
  }
  if (help) {
    process.stdout.write(`${MIGRATE_USAGE}\n`);
    return 0;
  }
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
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`migrate: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
