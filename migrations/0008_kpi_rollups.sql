-- Governance KPIs (issue 16): rollups of the decision log maintained as records are written, so
-- that GET /v1/kpis reads hundreds of rows for a 30-day window instead of millions.
--
-- decision_rollup_hourly: per UTC hour, entrypoint, action and control ('' = every decision):
--   decisions / denies        on '': all decisions; on a control: decisions that violated it
--   waived_allows             allows that carried at least one waiver (decision_log.exceptions)
--   shadowed                  on '': decisions with a shadow result
--   shadow_flips              on '': shadow allow <> allow; on a control: the control is violated
--                             by exactly one of the active and the shadow revision
-- release_gates: per release (resource of a release.deploy decision): its first decision, whether
-- that passed, its first deny, its first allow, and how many decisions.
--
-- Both are upserted by the statement that inserts a batch (storeBatchSql), from the rows that
-- statement really inserted (RETURNING of INSERT … ON CONFLICT DO NOTHING): a spool replay of rows
-- already stored inserts nothing and so counts nothing. Counts are sums and the release columns are
-- minimums (the first outcome follows the earliest time), so the order in which batches arrive —
-- a late replay included — does not change the result.
CREATE TABLE IF NOT EXISTS decision_rollup_hourly (
  bucket         timestamptz NOT NULL,
  entrypoint     text NOT NULL,
  action_name    text NOT NULL,
  control        text NOT NULL,
  decisions      bigint NOT NULL,
  denies         bigint NOT NULL,
  waived_allows  bigint NOT NULL,
  shadowed       bigint NOT NULL,
  shadow_flips   bigint NOT NULL,
  PRIMARY KEY (bucket, entrypoint, action_name, control)
);

CREATE TABLE IF NOT EXISTS release_gates (
  resource_type   text NOT NULL,
  resource_id     text NOT NULL,
  first_at        timestamptz NOT NULL,
  first_allow     boolean NOT NULL,
  first_deny_at   timestamptz,
  first_allow_at  timestamptz,
  attempts        bigint NOT NULL,
  PRIMARY KEY (resource_type, resource_id)
);
CREATE INDEX IF NOT EXISTS release_gates_first_idx ON release_gates (first_at);
CREATE INDEX IF NOT EXISTS release_gates_allow_idx ON release_gates (first_allow_at);

-- Rebuilds both from decision_log (used once here for rows stored before this migration, and by
-- bench/seed-decisions.ts after a bulk load that bypasses the writer). Same definitions as
-- storeBatchSql in src/audit/decision-log.ts; test/audit/kpis.test.ts checks the two agree.
CREATE OR REPLACE FUNCTION verdict_rebuild_kpi_rollups() RETURNS void LANGUAGE sql AS $fn$
  DELETE FROM decision_rollup_hourly;
  DELETE FROM release_gates;
  INSERT INTO decision_rollup_hourly
  SELECT bucket, entrypoint, action_name, control,
         count(*) FILTER (WHERE counted), count(*) FILTER (WHERE counted AND NOT allow),
         count(*) FILTER (WHERE counted AND allow AND waived), count(*) FILTER (WHERE shadowed),
         count(*) FILTER (WHERE flipped)
  FROM (
    SELECT date_trunc('hour', i.decided_at, 'UTC') AS bucket, i.entrypoint, COALESCE(i.action_name, '') AS action_name,
           k.control, i.allow, COALESCE(cardinality(i.exceptions), 0) > 0 AS waived, k.counted, k.shadowed, k.flipped
    FROM (SELECT d.decided_at, d.entrypoint, d.action_name, d.allow, d.exceptions, d.shadow, d.violated_controls,
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
  GROUP BY bucket, entrypoint, action_name, control;
  INSERT INTO release_gates
  SELECT resource_type, resource_id, min(decided_at), (array_agg(allow ORDER BY decided_at, id))[1],
         min(decided_at) FILTER (WHERE NOT allow), min(decided_at) FILTER (WHERE allow), count(*)
  FROM decision_log
  WHERE action_name = 'release.deploy' AND resource_type IS NOT NULL AND resource_id IS NOT NULL
  GROUP BY resource_type, resource_id;
$fn$;

SELECT verdict_rebuild_kpi_rollups();
