-- Undefined OPA data-API paths (issue 23): a /v1/data path with no value (no such rule, or below a
-- rule and leading nowhere) is recorded like any decision but is no governance figure, so the KPI
-- rollups skip it. The same filter as UNDEFINED_DATA_PATH in src/audit/kpi-sql.ts;
-- test/audit/kpis.test.ts checks the two agree. The rollups are rebuilt once with it.
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
          FROM decision_log d
          WHERE NOT (d.surface = 'data' AND (d.result IS NULL OR d.result = 'null'::jsonb
                                              OR d.error->>'code' = 'unknown_entrypoint'))) i
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
