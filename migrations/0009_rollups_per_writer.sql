-- KPI rollup rows per writer (issue 17). Every batch statement upserts its hour's rollup rows; when
-- those rows were shared by every writer, a replica's group commit waited on another replica's
-- until that one had committed (fsync included), so N replicas' commits ran as one queue
-- (bench/scale.ts). Keyed by writer_id as well, each writer updates only its own rows; the KPI
-- queries already sum over everything but their own grouping keys.
ALTER TABLE decision_rollup_hourly ADD COLUMN IF NOT EXISTS writer_id text NOT NULL DEFAULT '';
ALTER TABLE decision_rollup_hourly DROP CONSTRAINT IF EXISTS decision_rollup_hourly_pkey;
ALTER TABLE decision_rollup_hourly ADD PRIMARY KEY (bucket, entrypoint, action_name, control, writer_id);

-- The same definitions as storeBatchSql in src/audit/decision-log.ts, now per writer;
-- test/audit/kpis.test.ts checks the two agree.
CREATE OR REPLACE FUNCTION verdict_rebuild_kpi_rollups() RETURNS void LANGUAGE sql AS $fn$
  DELETE FROM decision_rollup_hourly;
  DELETE FROM release_gates;
  INSERT INTO decision_rollup_hourly
    (bucket, entrypoint, action_name, control, writer_id, decisions, denies, waived_allows, shadowed, shadow_flips)
  SELECT bucket, entrypoint, action_name, control, writer_id,
         count(*) FILTER (WHERE counted), count(*) FILTER (WHERE counted AND NOT allow),
         count(*) FILTER (WHERE counted AND allow AND waived), count(*) FILTER (WHERE shadowed),
         count(*) FILTER (WHERE flipped)
  FROM (
    SELECT date_trunc('hour', i.decided_at, 'UTC') AS bucket, i.entrypoint, COALESCE(i.action_name, '') AS action_name,
           i.writer_id, k.control, i.allow, COALESCE(cardinality(i.exceptions), 0) > 0 AS waived, k.counted,
           k.shadowed, k.flipped
    FROM (SELECT d.decided_at, d.entrypoint, d.action_name, d.writer_id, d.allow, d.exceptions, d.shadow,
                 d.violated_controls,
                 (d.shadow IS NOT NULL AND jsonb_typeof(d.shadow->'allow') = 'boolean') AS has_shadow,
                 ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(d.shadow->'controls') = 'array'
                                                             THEN d.shadow->'controls' ELSE '[]'::jsonb END)) AS shadow_controls
          FROM decision_log d) i
    CROSS JOIN LATERAL (
      SELECT '' AS control, true AS counted, i.has_shadow AS shadowed,
             (i.has_shadow AND (i.shadow->>'allow')::boolean <> i.allow) AS flipped
      UNION ALL
      SELECT u.c, COALESCE(u.c = ANY(i.violated_controls), false), false,
             (i.has_shadow AND COALESCE(u.c = ANY(i.violated_controls), false) <> (u.c = ANY(i.shadow_controls)))
      FROM (SELECT DISTINCT unnest(COALESCE(i.violated_controls, '{}') || i.shadow_controls) AS c) u
    ) k
  ) keyed
  GROUP BY bucket, entrypoint, action_name, control, writer_id;
  INSERT INTO release_gates
  SELECT resource_type, resource_id, min(decided_at), (array_agg(allow ORDER BY decided_at, id))[1],
         min(decided_at) FILTER (WHERE NOT allow), min(decided_at) FILTER (WHERE allow), count(*)
  FROM decision_log
  WHERE action_name = 'release.deploy' AND resource_type IS NOT NULL AND resource_id IS NOT NULL
  GROUP BY resource_type, resource_id;
$fn$;

SELECT verdict_rebuild_kpi_rollups();
