-- The decision log keeps a record's caller, result and input as `json`, not `jsonb` (issues 25, 27).
--
-- Nobody queries these three columns by content (searches use the fact columns; the rollups read
-- `shadow`, `violated_controls`, `exceptions` and, for one test, whether `result` is null), yet
-- every insert paid for building their jsonb: the batch arrives as one JSON text, Postgres parsed
-- it and rebuilt the three values in its binary form. As `json` the value is the text the hash
-- chain already made, checked and stored as it is. Measured with bench/record-cost.ts (the `json`
-- arm against the schema before this migration, one run): tool calls 0.93× of Postgres's CPU and
-- WAL per decision, 0.91× of table and index bytes; a 10 KB model.response — whose redacted text
-- is most of the row — pays the jsonb build of 10 KB on every insert.
--
-- No row is rewritten and the log stays writable: changing a column's type would rewrite every
-- partition under an exclusive lock. The old columns are renamed (`input` → `input_jsonb`, …) and
-- keep the rows written before this migration; the new `json` columns take the old names and every
-- row written from now on, so a row holds its value in exactly one of the pair. Readers take
-- `COALESCE(new, old::json)` (SELECT_COLUMNS, src/audit/decision-log.ts) or fold the pair back into
-- one field (rowFromDatabase), so a record reads, exports and verifies the same whichever column
-- holds it: the hash chain covers the values, not their storage.
--
-- Rows over toast_tuple_target (8160 B, migration 0003: a 10 KB model.response's redacted text)
-- are compressed with lz4 where the server has it (2–3× cheaper per insert than pglz, measured for
-- the guardrails, bench/README.md); elsewhere (a server built without lz4, the embedded PGlite)
-- with the server's default.
ALTER TABLE decision_log RENAME COLUMN caller TO caller_jsonb;
ALTER TABLE decision_log RENAME COLUMN result TO result_jsonb;
ALTER TABLE decision_log RENAME COLUMN input TO input_jsonb;
ALTER TABLE decision_log ALTER COLUMN caller_jsonb DROP NOT NULL;
ALTER TABLE decision_log ADD COLUMN caller json, ADD COLUMN result json, ADD COLUMN input json;
-- Every record has a caller, in one column of the pair. NOT VALID: the rows before this migration
-- are not scanned (they hold caller_jsonb, NOT NULL until now); every row written is checked.
ALTER TABLE decision_log ADD CONSTRAINT decision_log_caller_present
  CHECK (caller IS NOT NULL OR caller_jsonb IS NOT NULL) NOT VALID;

-- SET COMPRESSION does not recurse to partitions: the parent (which new partitions copy,
-- src/audit/decision-log.ts createPartitionScript) and each existing partition get it.
DO $$
DECLARE
  rel regclass;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings
              WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    FOR rel IN SELECT 'decision_log'::regclass
               UNION ALL SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'decision_log'::regclass LOOP
      EXECUTE format('ALTER TABLE %s ALTER COLUMN caller SET COMPRESSION lz4, '
                     'ALTER COLUMN result SET COMPRESSION lz4, ALTER COLUMN input SET COMPRESSION lz4', rel);
    END LOOP;
  END IF;
END $$;

-- The rollups' rebuild skips undefined data-API paths as the batch statement does
-- (UNDEFINED_DATA_PATH, src/audit/kpi-sql.ts), on both columns of the pair.
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
          WHERE NOT (d.surface = 'data'
                     AND ((d.result IS NULL AND d.result_jsonb IS NULL)
                          OR json_typeof(d.result) = 'null' OR d.result_jsonb = 'null'::jsonb
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
