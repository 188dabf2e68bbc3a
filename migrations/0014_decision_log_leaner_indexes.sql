-- The decision log's write cost (issue 27): indexes no search needs, and GIN entries for empty arrays.
--
-- Every decision wrote 12 B-tree and 2 GIN index entries (2.8 KB of table and index and 3.5 KB of
-- WAL per tool call). Measured with bench/record-cost.ts, old and new schema alternating:
--
-- * (subject_type, subject_id, decided_at, id) and (resource_type, resource_id, decided_at, id) serve
--   no search that 0002's (subject_id, decided_at, id) and (resource_id, decided_at, id) do not: a
--   filter on type and id is an id's range scan filtered on the type (docs/api-audit.md measured
--   both filters at the same p50), and a filter on the type alone cannot use them in (decided_at,
--   id) order. Dropped.
-- * (allow, decided_at, id) held every allow, which no search needs: a search for allows walks the
--   time order (the primary key), where allows are most rows. It becomes (decided_at, id) WHERE NOT
--   allow: the denies, the search an auditor makes, stay one range scan.
-- * The GIN indexes on violated_controls and exceptions held an entry for every empty array: most
--   decisions violate nothing and apply no waiver. They become partial, on non-empty arrays; the
--   searches (src/audit/decision-log.ts) state the same predicate so that the planner uses them.
--
-- Old rows are untouched (no row is rewritten; the hash chain covers values, not indexes). On a
-- large existing log, build the three partial indexes without blocking writes before upgrading, as
-- docs/api-audit.md says for 0002 (`CREATE INDEX … ON ONLY`, `CREATE INDEX CONCURRENTLY` per
-- partition, `ALTER INDEX … ATTACH PARTITION`) under the names below; IF NOT EXISTS then skips them.
DROP INDEX IF EXISTS decision_log_subject_idx;
DROP INDEX IF EXISTS decision_log_resource_idx;

DROP INDEX IF EXISTS decision_log_allow_idx;
CREATE INDEX IF NOT EXISTS decision_log_denies_idx ON decision_log (decided_at, id) WHERE NOT allow;

DROP INDEX IF EXISTS decision_log_controls_idx;
CREATE INDEX IF NOT EXISTS decision_log_controls_nonempty_idx
  ON decision_log USING gin (violated_controls) WHERE violated_controls <> '{}';

DROP INDEX IF EXISTS decision_log_exceptions_idx;
CREATE INDEX IF NOT EXISTS decision_log_exceptions_nonempty_idx
  ON decision_log USING gin (exceptions) WHERE exceptions <> '{}';
