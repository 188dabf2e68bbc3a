-- Search indexes for the auditor API (GET /v1/decisions, src/audit/queries.ts).
--
-- A page is `WHERE <filters> AND (decided_at, id) > cursor ORDER BY decided_at, id LIMIT n`: an
-- index whose leading columns are the equality filter and then (decided_at, id) answers it with one
-- short range scan. 0001 leads with subject_type and resource_type, so a search by subject_id or
-- resource_id alone (the common auditor question: "everything this agent did", "everything that
-- touched this tool") had no usable index and walked the whole time order; measured on 10 M rows in
-- docs/api-audit.md.
--
-- On a large existing log, build these per partition with CREATE INDEX CONCURRENTLY first (see
-- docs/api-audit.md); IF NOT EXISTS then makes this migration a no-op.
CREATE INDEX IF NOT EXISTS decision_log_subject_id_idx  ON decision_log (subject_id, decided_at, id);
CREATE INDEX IF NOT EXISTS decision_log_resource_id_idx ON decision_log (resource_id, decided_at, id);
