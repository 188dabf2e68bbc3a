import type { Sql } from '../store/types.ts';

/**
 * The KPI rollups' home: every statement on decision_rollup_hourly and release_gates, as pure
 * functions returning `{text, values}` (values always parameters). The rollups are maintained by
 * the decision log's batch statement (storeBatchSql in decision-log.ts splices ROLLUP_CTES into its
 * WITH) and read by computeKpis (kpis.ts). Nothing here runs a query.
 */

/** A KPI window: [from, to) as ISO-8601 strings, whole UTC hours (kpiWindow). */
export type KpiWindow = readonly [from: string, to: string];

/**
 * The batch statement's RETURNING column `undefined_path`: the row is an OPA data-API path with no
 * value (no such rule, or a path below a rule that leads nowhere) — recorded like any decision, but
 * no governance figure: the rollups skip it (verdict_rebuild_kpi_rollups(), last defined in
 * migrations/0015_decision_log_json_columns.sql, does the same on a rebuild). It reads only rows
 * the batch statement inserts, whose `result` is the json column (migration 0015).
 */
export const UNDEFINED_DATA_PATH = `(surface = 'data' AND (result IS NULL OR json_typeof(result) = 'null'
                                   OR error->>'code' = 'unknown_entrypoint')) AS undefined_path`;

/**
 * The KPI rollups (migrations/0008_kpi_rollups.sql, per writer since 0009: a writer's batch locks
 * only its own rollup rows, so replicas' group commits do not queue behind each other) maintained
 * from the rows the batch statement really inserted — these CTEs read storeBatchSql's `inserted`: a replayed duplicate is skipped by ON CONFLICT DO NOTHING, is not in `inserted`,
 * and so is never counted twice. Counts add up and release columns take minimums, so batches may
 * arrive in any order (a late spool replay included). Rows are upserted in key order, so that two
 * writers' batches lock shared rollup rows in the same order (no deadlock). The same definitions
 * as verdict_rebuild_kpi_rollups() in the migration; test/audit/kpis.test.ts checks they agree.
 * `keyed` takes the common record — no shadow result — in one scan of `inserted` (a row for the
 * record, control '', and one per distinct violated control, unnested from one array; the DISTINCT
 * subquery only for a record with two or more) and keeps the per-record lateral work for shadowed
 * ones: the rollups were about a quarter of the backend's CPU per batch. Set operations took the
 * backend's CPU per decision to 0.88× (bench/record-cost.ts, bench/README.md's sixth round), the
 * one scan the statement to 0.92–0.95× (bench/batch-statement.ts, session 12).
 */
export const ROLLUP_CTES = `keyed AS (
           SELECT date_trunc('hour', i.decided_at, 'UTC') AS bucket, i.entrypoint,
                  COALESCE(i.action_name, '') AS action_name, i.writer_id,
                  unnest('{""}'::text[] || CASE WHEN COALESCE(cardinality(i.violated_controls), 0) <= 1
                                               THEN i.violated_controls
                                               ELSE ARRAY(SELECT DISTINCT unnest(i.violated_controls)) END) AS control,
                  i.allow, COALESCE(cardinality(i.exceptions), 0) > 0 AS waived, true AS counted, false AS shadowed,
                  false AS flipped
           FROM inserted i WHERE NOT i.undefined_path AND i.shadow IS NULL
           UNION ALL
           SELECT date_trunc('hour', i.decided_at, 'UTC') AS bucket, i.entrypoint,
                  COALESCE(i.action_name, '') AS action_name, i.writer_id, k.control, i.allow,
                  COALESCE(cardinality(i.exceptions), 0) > 0 AS waived, k.counted, k.shadowed, k.flipped
           FROM (SELECT d.*, (jsonb_typeof(d.shadow->'allow') = 'boolean') AS has_shadow,
                        ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(d.shadow->'controls') = 'array'
                                                                    THEN d.shadow->'controls' ELSE '[]'::jsonb END)) AS shadow_controls
                 FROM inserted d WHERE NOT d.undefined_path AND d.shadow IS NOT NULL) i
           CROSS JOIN LATERAL (
             SELECT '' AS control, true AS counted, i.has_shadow AS shadowed,
                    (i.has_shadow AND (i.shadow->>'allow')::boolean <> i.allow) AS flipped
             UNION ALL
             SELECT u.c, COALESCE(u.c = ANY(i.violated_controls), false), false,
                    (i.has_shadow AND COALESCE(u.c = ANY(i.violated_controls), false) <> (u.c = ANY(i.shadow_controls)))
             FROM (SELECT DISTINCT unnest(COALESCE(i.violated_controls, '{}') || i.shadow_controls) AS c) u
           ) k
         ), rollup AS (
           INSERT INTO decision_rollup_hourly AS r
             (bucket, entrypoint, action_name, control, writer_id, decisions, denies, waived_allows, shadowed,
              shadow_flips)
           SELECT bucket, entrypoint, action_name, control, writer_id,
                  count(*) FILTER (WHERE counted), count(*) FILTER (WHERE counted AND NOT allow),
                  count(*) FILTER (WHERE counted AND allow AND waived), count(*) FILTER (WHERE shadowed),
                  count(*) FILTER (WHERE flipped)
           FROM keyed GROUP BY bucket, entrypoint, action_name, control, writer_id
           ORDER BY bucket, entrypoint, action_name, control, writer_id
           ON CONFLICT (bucket, entrypoint, action_name, control, writer_id) DO UPDATE
           SET decisions = r.decisions + EXCLUDED.decisions, denies = r.denies + EXCLUDED.denies,
               waived_allows = r.waived_allows + EXCLUDED.waived_allows,
               shadowed = r.shadowed + EXCLUDED.shadowed, shadow_flips = r.shadow_flips + EXCLUDED.shadow_flips
         ), gates AS (
           INSERT INTO release_gates AS g
           SELECT resource_type, resource_id, min(decided_at), (array_agg(allow ORDER BY decided_at, id))[1],
                  min(decided_at) FILTER (WHERE NOT allow), min(decided_at) FILTER (WHERE allow), count(*)
           FROM inserted
           WHERE action_name = 'release.deploy' AND resource_type IS NOT NULL AND resource_id IS NOT NULL
           GROUP BY resource_type, resource_id ORDER BY resource_type, resource_id
           ON CONFLICT (resource_type, resource_id) DO UPDATE
           SET first_allow = CASE WHEN EXCLUDED.first_at < g.first_at THEN EXCLUDED.first_allow ELSE g.first_allow END,
               first_at = LEAST(g.first_at, EXCLUDED.first_at),
               first_deny_at = LEAST(g.first_deny_at, EXCLUDED.first_deny_at),
               first_allow_at = LEAST(g.first_allow_at, EXCLUDED.first_allow_at),
               attempts = g.attempts + EXCLUDED.attempts
         )`;

/** The select list of a median and a 90th percentile over a `seconds` column. */
export const PERCENTILES = `count(*) AS count,
  percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median,
  percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90`;

/** Decisions, denies, waived allows, shadowed decisions and flips per entrypoint (release ones apart). */
export function kpiByEntrypointSql(window: KpiWindow): Sql {
  return {
    text: `SELECT entrypoint, sum(decisions) AS decisions, sum(denies) AS denies, sum(waived_allows) AS waived,
                  sum(shadowed) AS shadowed, sum(shadow_flips) AS flips,
                  sum(decisions) FILTER (WHERE action_name = 'release.deploy') AS release_decisions,
                  sum(denies) FILTER (WHERE action_name = 'release.deploy') AS release_denies
           FROM decision_rollup_hourly WHERE control = '' AND bucket >= $1 AND bucket < $2
           GROUP BY entrypoint ORDER BY entrypoint`,
    values: [...window],
  };
}

/** Per control: the decisions that violated it, the denies among them, and the shadow flips. */
export function kpiByControlSql(window: KpiWindow): Sql {
  return {
    text: `SELECT control, sum(decisions) AS violations, sum(denies) AS denies, sum(shadow_flips) AS flips
           FROM decision_rollup_hourly WHERE control <> '' AND bucket >= $1 AND bucket < $2
           GROUP BY control ORDER BY control`,
    values: [...window],
  };
}

/** The series points of the window, one per `bucket` ('hour', 'day' or 'week'). */
export function kpiSeriesSql(window: KpiWindow, bucket: string): Sql {
  return {
    text: `SELECT date_trunc($3, bucket, 'UTC') AS start, sum(decisions) AS decisions, sum(denies) AS denies,
                  sum(waived_allows) AS waived, sum(shadowed) AS shadowed, sum(shadow_flips) AS flips,
                  COALESCE(sum(decisions) FILTER (WHERE action_name = 'release.deploy'), 0) AS release_decisions,
                  COALESCE(sum(decisions - denies) FILTER (WHERE action_name = 'release.deploy'), 0) AS release_passes
           FROM decision_rollup_hourly WHERE control = '' AND bucket >= $1 AND bucket < $2
           GROUP BY 1 ORDER BY 1`,
    values: [...window, bucket],
  };
}

/** Releases first gated in the window, and how many passed at their first attempt. */
export function releaseGatesSql(window: KpiWindow): Sql {
  return {
    text: `SELECT count(*) AS releases, count(*) FILTER (WHERE first_allow) AS first_passes
           FROM release_gates WHERE first_at >= $1 AND first_at < $2`,
    values: [...window],
  };
}

/** Percentiles of the time from a release's first deny to its first pass, the pass in the window. */
export function remediationSql(window: KpiWindow): Sql {
  return {
    text: `SELECT ${PERCENTILES} FROM (
             SELECT extract(epoch FROM first_allow_at - first_deny_at)::float8 AS seconds FROM release_gates
             WHERE NOT first_allow AND first_allow_at >= $1 AND first_allow_at < $2
           ) r`,
    values: [...window],
  };
}
