import type { Database } from '../store/types.ts';
import {
  createPartitionScript,
  deleteDefaultBeforeSql,
  dropPartitionScript,
  type MonthPartition,
  PARTITION_NAME,
  partitionLockSql,
  partitionsSql,
  recordRetentionSql,
  tableExistsSql,
} from './decision-log.ts';

export type { MonthPartition } from './decision-log.ts';

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
  const { rows } = await db.query<{ name: string }>(partitionsSql());
  return rows.map((row) => row.name);
}

/**
 * Creates the monthly partitions for the month of `now` and the `ahead` months after it, and
 * returns the names it created. Safe to run from many replicas at once.
 * NOTE: rows that already landed in the DEFAULT partition for a month move into the new
 * partition in the same transaction (createPartitionScript).
 */
export async function ensurePartitions(db: Database, now: Date = new Date(), ahead = 2): Promise<string[]> {
  const wanted = Array.from({ length: ahead + 1 }, (_, i) => monthPartition(now, i));
  const present = new Set(await existingPartitions(db));
  const created: string[] = [];
  for (const partition of wanted) {
    if (present.has(partition.name)) continue;
    const made = await db.transaction(async (tx) => {
      await tx.query(partitionLockSql());
      const { rows } = await tx.query<{ exists: boolean }>(tableExistsSql(partition.name));
      if (rows[0]?.exists) return false;
      await tx.exec(createPartitionScript(partition));
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
      await tx.query(partitionLockSql());
      await tx.exec(dropPartitionScript(name));
      await tx.query(recordRetentionSql(end));
    });
    dropped.push(name);
  }
  const { rowCount } = await db.query(deleteDefaultBeforeSql(cutoff));
  if (rowCount > 0) await db.query(recordRetentionSql(cutoff));
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
