import type { Database } from './types.ts';

/** A monthly partition of decision_log: rows with from <= decided_at < to (UTC). */
export interface MonthPartition {
  name: string;
  from: Date;
  to: Date;
}

const PARTITION_NAME = /^decision_log_p(\d{4})(\d{2})$/;
// Serialises partition DDL across replicas (distinct from the migration lock).
const PARTITION_LOCK_KEY = 7_301_553_018;

function monthStart(year: number, month: number): Date {
  return new Date(Date.UTC(year, month, 1));
}

/** The partition that holds `at`, plus `offset` months. */
export function monthPartition(at: Date, offset = 0): MonthPartition {
  const from = monthStart(at.getUTCFullYear(), at.getUTCMonth() + offset);
  const to = monthStart(from.getUTCFullYear(), from.getUTCMonth() + 1);
  const name = `decision_log_p${from.getUTCFullYear()}${String(from.getUTCMonth() + 1).padStart(2, '0')}`;
  return { name, from, to };
}

async function existingPartitions(db: Database): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>({
    text: `SELECT c.relname AS name FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = to_regclass('decision_log')`,
  });
  return rows.map((row) => row.name);
}

/**
 * Rows up to this size stay inline and uncompressed (migrations/0003_decision_log_inline_rows.sql):
 * compressing a release gate's ~3 KB input cost a third of Postgres's CPU per insert.
 */
const INLINE_ROW_BYTES = 8160;

/**
 * Creates the monthly partitions for the month of `now` and the `ahead` months after it, and
 * returns the names it created. Safe to run from many replicas at once.
 *
 * NOTE: rows that already landed in the DEFAULT partition for a month are moved into the new
 * partition in the same transaction, because Postgres refuses to create a partition whose range
 * the default partition already holds rows for.
 */
export async function ensurePartitions(db: Database, now: Date = new Date(), ahead = 2): Promise<string[]> {
  const wanted = Array.from({ length: ahead + 1 }, (_, i) => monthPartition(now, i));
  const present = new Set(await existingPartitions(db));
  const created: string[] = [];
  for (const partition of wanted) {
    if (present.has(partition.name)) continue;
    const made = await db.transaction(async (tx) => {
      await tx.query({ text: 'SELECT pg_advisory_xact_lock($1)', values: [PARTITION_LOCK_KEY] });
      const { rows } = await tx.query<{ exists: boolean }>({
        text: 'SELECT to_regclass($1) IS NOT NULL AS exists',
        values: [partition.name],
      });
      if (rows[0]?.exists) return false;
      // Identifiers and bounds are built from integers above, never from input; DDL takes no parameters.
      const from = `'${partition.from.toISOString()}'`;
      const to = `'${partition.to.toISOString()}'`;
      await tx.exec(`
        CREATE TABLE ${partition.name} (LIKE decision_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
          WITH (toast_tuple_target = ${INLINE_ROW_BYTES});
        INSERT INTO ${partition.name}
          SELECT * FROM decision_log_default WHERE decided_at >= ${from} AND decided_at < ${to};
        DELETE FROM decision_log_default WHERE decided_at >= ${from} AND decided_at < ${to};
        ALTER TABLE decision_log ATTACH PARTITION ${partition.name} FOR VALUES FROM (${from}) TO (${to});
      `);
      return true;
    });
    if (made) created.push(partition.name);
  }
  return created;
}

/**
 * Drops the monthly partitions that end before the retention window (the current month and the
 * `retentionMonths` before it are kept), deletes older rows from the DEFAULT partition, and records
 * the cut in `decision_log_retention` so that chain verification knows chains may start mid-way.
 * Returns the names dropped.
 */
export async function dropExpiredPartitions(
  db: Database,
  retentionMonths: number,
  now: Date = new Date(),
): Promise<string[]> {
  const cutoff = monthPartition(now, -retentionMonths).from;
  const dropped: string[] = [];
  for (const name of await existingPartitions(db)) {
    const match = PARTITION_NAME.exec(name);
    if (!match) continue;
    const end = monthStart(Number(match[1]), Number(match[2]));
    if (end.getTime() > cutoff.getTime()) continue;
    await db.transaction(async (tx) => {
      await tx.query({ text: 'SELECT pg_advisory_xact_lock($1)', values: [PARTITION_LOCK_KEY] });
      await tx.exec(`DROP TABLE IF EXISTS ${name}`);
      await tx.query({
        text: `INSERT INTO decision_log_retention (id, dropped_before) VALUES (true, $1)
               ON CONFLICT (id) DO UPDATE
               SET dropped_before = GREATEST(decision_log_retention.dropped_before, EXCLUDED.dropped_before)`,
        values: [end.toISOString()],
      });
    });
    dropped.push(name);
  }
  const { rowCount } = await db.query({
    text: 'DELETE FROM decision_log_default WHERE decided_at < $1',
    values: [cutoff.toISOString()],
  });
  if (rowCount > 0) {
    await db.query({
      text: `INSERT INTO decision_log_retention (id, dropped_before) VALUES (true, $1)
             ON CONFLICT (id) DO UPDATE
             SET dropped_before = GREATEST(decision_log_retention.dropped_before, EXCLUDED.dropped_before)`,
      values: [cutoff.toISOString()],
    });
  }
  return dropped;
}

/**
 * Runs ensurePartitions + dropExpiredPartitions now and then every `intervalMs` (daily by default).
 * Failures are reported to `onError` and retried at the next tick: the DEFAULT partition keeps
 * inserts working meanwhile. Returns a function that stops the timer.
 */
export function schedulePartitionMaintenance(
  db: Database,
  options: { retentionMonths: number; intervalMs?: number; onError?: (err: unknown) => void },
): () => void {
  const run = async () => {
    try {
      await ensurePartitions(db);
      await dropExpiredPartitions(db, options.retentionMonths);
    } catch (err) {
      options.onError?.(err);
    }
  };
  const timer = setInterval(run, options.intervalMs ?? 24 * 60 * 60 * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
