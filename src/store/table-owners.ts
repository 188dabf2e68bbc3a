/**
 * Which module owns each table: the one file of src/ whose statements name it (paths relative to
 * src/). Every other module reads and writes a table through its owner's statement builders (pure
 * functions returning `{text, values}`, run by the caller) or its readers; a statement that joins
 * two tables lives with their common owner. test/architecture/table-owners.test.ts checks that no
 * string in src/ names a table (after FROM, JOIN, INTO, UPDATE, DELETE FROM or TABLE) outside its
 * owner, and that every table the migrations create has an owner here.
 *
 * The decision log's tables are split by concern inside audit/: the log itself (rows, chain heads,
 * retention, partitions), the KPI rollups its batch statement maintains, the signed checkpoints and
 * the SIEM forwarder's cursors.
 */
export const TABLE_OWNERS = {
  decision_log: 'audit/decision-log.ts',
  decision_log_default: 'audit/decision-log.ts',
  decision_log_retention: 'audit/decision-log.ts',
  chain_heads: 'audit/decision-log.ts',
  decision_rollup_hourly: 'audit/kpi-sql.ts',
  release_gates: 'audit/kpi-sql.ts',
  chain_checkpoints: 'audit/checkpoint-sql.ts',
  siem_cursors: 'audit/siem-cursor-sql.ts',
  siem_leases: 'audit/siem-cursor-sql.ts',
  platform_events: 'audit/event-log.ts',
  platform_event_heads: 'audit/event-log.ts',
  policy_revisions: 'bundles/revisions.ts',
  fleet_state: 'store/fleet.ts',
  replicas: 'store/fleet.ts',
  schema_migrations: 'store/migrate.ts',
  exceptions: 'grants/grants-sql.ts',
  approvals: 'grants/grants-sql.ts',
} as const satisfies Record<string, string>;

/** A table of the schema (migrations/, and schema_migrations made by src/store/migrate.ts). */
export type TableName = keyof typeof TABLE_OWNERS;
