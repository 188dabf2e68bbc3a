/**
 * The SQL of impact analysis runs (the `impact_runs` table, migrations/0013_impact_runs.sql): pure
 * builders returning `{text, values}`; nothing here runs a query. See impact.ts.
 */
import type { Sql } from '../store/types.ts';

/** An impact_runs row as the builders below return it (times as ISO text). */
export interface ImpactRunRow {
  id: string;
  digest: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  actor: string;
  replica_id: string;
  window_from: string;
  window_to: string;
  filters: Record<string, string>;
  entrypoint: string;
  total: string | number | null;
  evaluated: string | number;
  skipped: string | number;
  unchanged: string | number;
  report: Record<string, unknown>;
  error: { code: string; message: string } | null;
  started_at: string;
  heartbeat_at: string;
  finished_at: string | null;
}

const ISO = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ${column}`;

const RUN_COLUMNS = `id::text AS id, digest, state, actor, replica_id, ${ISO('window_from')}, ${ISO('window_to')},
  filters, entrypoint, total, evaluated, skipped, unchanged, report, error, ${ISO('started_at')},
  ${ISO('heartbeat_at')}, ${ISO('finished_at')}`;

/** A new run, running on `replicaId`. */
export function insertImpactRunSql(run: {
  id: string;
  digest: string;
  actor: string;
  replicaId: string;
  from: string;
  to: string;
  filters: Record<string, string>;
  entrypoint: string;
}): Sql {
  return {
    text: `INSERT INTO impact_runs (id, digest, state, actor, replica_id, window_from, window_to, filters, entrypoint)
           VALUES ($1::uuid, $2, 'running', $3, $4, $5::timestamptz, $6::timestamptz, $7::jsonb, $8)
           RETURNING ${RUN_COLUMNS}`,
    values: [
      run.id,
      run.digest,
      run.actor,
      run.replicaId,
      run.from,
      run.to,
      JSON.stringify(run.filters),
      run.entrypoint,
    ],
  };
}

/** One run by id. */
export function impactRunSql(id: string): Sql {
  return { text: `SELECT ${RUN_COLUMNS} FROM impact_runs WHERE id = $1::uuid`, values: [id] };
}

/** Runs, newest first; only of `digest` when given. */
export function listImpactRunsSql(digest: string | null, limit: number): Sql {
  return {
    text: `SELECT ${RUN_COLUMNS} FROM impact_runs WHERE ($1::text IS NULL OR digest = $1)
           ORDER BY started_at DESC, id DESC LIMIT $2`,
    values: [digest, limit],
  };
}

/**
 * A running run's progress, and its heartbeat: no row comes back when the run is no longer
 * running (cancelled from any replica, or expired), which tells its replica to stop.
 */
export function impactProgressSql(
  id: string,
  progress: { total: number | null; evaluated: number; skipped: number; unchanged: number; report: unknown },
): Sql {
  return {
    text: `UPDATE impact_runs SET total = $2, evaluated = $3, skipped = $4, unchanged = $5, report = $6::jsonb,
                  heartbeat_at = now()
           WHERE id = $1::uuid AND state = 'running' RETURNING id::text AS id`,
    values: [
      id,
      progress.total,
      progress.evaluated,
      progress.skipped,
      progress.unchanged,
      JSON.stringify(progress.report),
    ],
  };
}

/** Ends a running run (done, failed or cancelled); no row when it had already ended. */
export function finishImpactRunSql(
  id: string,
  end: {
    state: 'done' | 'failed' | 'cancelled';
    total: number | null;
    evaluated: number;
    skipped: number;
    unchanged: number;
    report: unknown;
    error: { code: string; message: string } | null;
  },
): Sql {
  return {
    text: `UPDATE impact_runs SET state = $2, total = $3, evaluated = $4, skipped = $5, unchanged = $6,
                  report = $7::jsonb, error = $8::jsonb, finished_at = now(), heartbeat_at = now()
           WHERE id = $1::uuid AND state = 'running' RETURNING ${RUN_COLUMNS}`,
    values: [
      id,
      end.state,
      end.total,
      end.evaluated,
      end.skipped,
      end.unchanged,
      JSON.stringify(end.report),
      end.error === null ? null : JSON.stringify(end.error),
    ],
  };
}

/** Cancels a running run (from any replica); no row when it was not running. */
export function cancelImpactRunSql(id: string): Sql {
  return {
    text: `UPDATE impact_runs SET state = 'cancelled', finished_at = now(),
                  error = '{"code":"impact_cancelled","message":"the run was cancelled"}'::jsonb
           WHERE id = $1::uuid AND state = 'running' RETURNING ${RUN_COLUMNS}`,
    values: [id],
  };
}

/**
 * Marks failed every running run whose heartbeat is older than `leaseMs` (its replica died), or,
 * with `replicaId`, every running run of that replica (it is stopping). Returns the runs it ended.
 */
export function failImpactRunsSql(
  options: { leaseMs: number } | { replicaId: string },
  error: { code: string; message: string },
): Sql {
  const lease = 'leaseMs' in options;
  return {
    text: `UPDATE impact_runs SET state = 'failed', finished_at = now(), error = $2::jsonb
           WHERE state = 'running'
             AND ${lease ? 'heartbeat_at < now() - make_interval(secs => $1::float8 / 1000)' : 'replica_id = $1'}
           RETURNING ${RUN_COLUMNS}`,
    values: [lease ? options.leaseMs : options.replicaId, JSON.stringify(error)],
  };
}
