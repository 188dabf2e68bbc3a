/**
 * The decision log's one home: the row as stored and every SQL statement on it — insert (with the
 * chain heads), search, lookup, chain verification and partition maintenance — as pure functions
 * returning `{text, values}` (pg-boss's plans.ts style). Values are always parameters; the only
 * identifiers spliced into text are constants here or partition names built from integers. The same
 * statements run on Postgres and on PGlite. Nothing here runs a query.
 */
import type { Sql } from '../store/types.ts';

/**
 * One decision_log row exactly as stored, column by column. Every column except `hash` is hashed
 * (see chainHash); `decided_at` is the ISO-8601 string with milliseconds and `Z` that was hashed
 * (Postgres keeps microseconds, so the value reads back to the same string).
 */
export interface DecisionRow {
  id: string;
  decided_at: string;
  writer_id: string;
  seq: number;
  prev_hash: string;
  hash: string;
  surface: string;
  caller_sub: string;
  caller: unknown;
  entrypoint: string;
  bundle_revision: string;
  bundle_digest: string;
  subject_type: string | null;
  subject_id: string | null;
  action_name: string | null;
  resource_type: string | null;
  resource_id: string | null;
  allow: boolean;
  violated_controls: string[];
  result: unknown;
  input: unknown;
  input_sha256: string;
  exceptions: string[];
  shadow: unknown;
  eval_micros: number;
  trace_id: string | null;
  error: unknown;
}

/** The stored columns, in table order; the hash covers all of them but `hash`. */
export const DECISION_COLUMNS = [
  'id',
  'decided_at',
  'writer_id',
  'seq',
  'prev_hash',
  'hash',
  'surface',
  'caller_sub',
  'caller',
  'entrypoint',
  'bundle_revision',
  'bundle_digest',
  'subject_type',
  'subject_id',
  'action_name',
  'resource_type',
  'resource_id',
  'allow',
  'violated_controls',
  'result',
  'input',
  'input_sha256',
  'exceptions',
  'shadow',
  'eval_micros',
  'trace_id',
  'error',
] as const satisfies readonly (keyof DecisionRow)[];

/**
 * A decision_log row as `pg` or PGlite returns it, turned back into the DecisionRow that was hashed:
 * timestamptz comes back as a Date, bigint as a string.
 */
export function rowFromDatabase(raw: Record<string, unknown>): DecisionRow {
  const row = { ...raw } as Record<string, unknown>;
  const at = raw.decided_at;
  row.decided_at = at instanceof Date ? at.toISOString() : new Date(String(at)).toISOString();
  row.seq = Number(raw.seq);
  row.eval_micros = Number(raw.eval_micros);
  return row as unknown as DecisionRow;
}

/**
 * The KPI rollups (migrations/0008_kpi_rollups.sql, per writer since 0009: a writer's batch locks
 * only its own rollup rows, so replicas' group commits do not queue behind each other) maintained
 * from the rows the batch statement
 * really inserted: a replayed duplicate is skipped by ON CONFLICT DO NOTHING, is not in `inserted`,
 * and so is never counted twice. Counts add up and release columns take minimums, so batches may
 * arrive in any order (a late spool replay included). Rows are upserted in key order, so that two
 * writers' batches lock shared rollup rows in the same order (no deadlock). The same definitions
 * as verdict_rebuild_kpi_rollups() in the migration; test/audit/kpis.test.ts checks they agree.
 */
const ROLLUP_CTES = `keyed AS (
           SELECT date_trunc('hour', i.decided_at, 'UTC') AS bucket, i.entrypoint,
                  COALESCE(i.action_name, '') AS action_name, i.writer_id, k.control, i.allow,
                  COALESCE(cardinality(i.exceptions), 0) > 0 AS waived, k.counted, k.shadowed, k.flipped
           FROM (SELECT d.*, (d.shadow IS NOT NULL AND jsonb_typeof(d.shadow->'allow') = 'boolean') AS has_shadow,
                        ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(d.shadow->'controls') = 'array'
                                                                    THEN d.shadow->'controls' ELSE '[]'::jsonb END)) AS shadow_controls
                 FROM inserted d) i
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

/**
 * One statement stores a whole batch: the rows travel as a single jsonb parameter expanded by
 * jsonb_populate_recordset (free of the 65535-parameter limit; INSERT vs COPY measured in
 * docs/decisions/0003-audit-durability.md), and the chain heads of the batch's writers move forward
 * in the same statement, so the two are atomic without BEGIN/COMMIT round trips (ADR 0004); so are
 * the KPI rollups (ROLLUP_CTES).
 * `ON CONFLICT DO NOTHING` makes a replay of the same rows (spool) idempotent on (decided_at, id);
 * a head only moves forward, so replaying an old spool batch after newer ones cannot rewind it.
 */
const STORE_BATCH = {
  name: 'verdict_store_batch_v3',
  text: `WITH inserted AS (
           INSERT INTO decision_log
           SELECT * FROM jsonb_populate_recordset(NULL::decision_log, $1::jsonb)
           ON CONFLICT DO NOTHING
           RETURNING id, decided_at, writer_id, entrypoint, action_name, resource_type, resource_id, allow,
                     violated_controls, exceptions, shadow
         ), heads AS (
           INSERT INTO chain_heads (writer_id, seq, hash)
           SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[])
           ON CONFLICT (writer_id) DO UPDATE
           SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()
           WHERE chain_heads.seq < EXCLUDED.seq
         ), ${ROLLUP_CTES}
         SELECT count(*)::int AS inserted FROM inserted`,
};

/**
 * The statement that stores chained rows and moves their writers' chain heads. `json`, when given,
 * is each row's JSON text as the chain already made it (Chain.appendJson), so the batch is not
 * serialised again.
 */
export function storeBatchSql(rows: readonly DecisionRow[], json?: readonly string[]): Sql {
  const heads = new Map<string, DecisionRow>();
  for (const row of rows) {
    const head = heads.get(row.writer_id);
    if (!head || head.seq < row.seq) heads.set(row.writer_id, row);
  }
  const last = [...heads.values()];
  return {
    ...STORE_BATCH,
    values: [
      json ? `[${json.join(',')}]` : JSON.stringify(rows),
      last.map((h) => h.writer_id),
      last.map((h) => h.seq),
      last.map((h) => h.hash),
    ],
  };
}

/** What a search narrows on; every field is optional and they combine with AND. */
export interface DecisionFilter {
  /** Inclusive lower bound on decided_at (ISO-8601). */
  from?: string;
  /** Exclusive upper bound on decided_at (ISO-8601). */
  to?: string;
  callerSub?: string;
  subjectType?: string;
  subjectId?: string;
  actionName?: string;
  resourceType?: string;
  resourceId?: string;
  allow?: boolean;
  entrypoint?: string;
  revision?: string;
  /** A control id that must be among the record's violated controls. */
  control?: string;
  /** A waiver id that must be among the record's applied exceptions (GIN index, migration 0005). */
  exception?: string;
}

/** A position in the (decided_at, id) order: the last record a page returned. */
export interface Cursor {
  decidedAt: string;
  id: string;
}

// NOTE: decided_at is read as text in UTC with microseconds, so that a cursor carries the stored
// time exactly (a JS Date would round to milliseconds and could skip or repeat rows at a boundary).
const SELECT_COLUMNS = `id::text AS id,
  to_char(decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS decided_at,
  surface, caller_sub, caller, entrypoint, bundle_revision, bundle_digest,
  subject_type, subject_id, action_name, resource_type, resource_id, allow, violated_controls,
  result, input, input_sha256, exceptions, shadow, eval_micros, trace_id, error,
  writer_id, seq::text AS seq, prev_hash, hash`;

function conditions(filter: DecisionFilter, after: Cursor | null): { where: string; values: unknown[] } {
  const values: unknown[] = [];
  const clauses: string[] = [];
  const param = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  if (filter.from !== undefined) clauses.push(`decided_at >= ${param(filter.from)}::timestamptz`);
  if (filter.to !== undefined) clauses.push(`decided_at < ${param(filter.to)}::timestamptz`);
  const equalities: [keyof DecisionFilter, string][] = [
    ['callerSub', 'caller_sub'],
    ['subjectType', 'subject_type'],
    ['subjectId', 'subject_id'],
    ['actionName', 'action_name'],
    ['resourceType', 'resource_type'],
    ['resourceId', 'resource_id'],
    ['allow', 'allow'],
    ['entrypoint', 'entrypoint'],
    ['revision', 'bundle_revision'],
  ];
  for (const [field, column] of equalities) {
    const value = filter[field];
    if (value !== undefined) clauses.push(`${column} = ${param(value)}`);
  }
  if (filter.control !== undefined) {
    clauses.push(`violated_controls @> ARRAY[${param(filter.control)}::text]`);
  }
  if (filter.exception !== undefined) {
    clauses.push(`exceptions @> ARRAY[${param(filter.exception)}::text]`);
  }
  if (after) {
    const at = param(after.decidedAt);
    const id = param(after.id);
    // The plain `decided_at >=` duplicates the row comparison so that the planner can prune
    // partitions and bound the index scan; the row comparison alone does neither.
    clauses.push(`decided_at >= ${at}::timestamptz`, `(decided_at, id) > (${at}::timestamptz, ${id}::uuid)`);
  }
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', values };
}

/** The page of records after `after` (or from the start) matching `filter`, oldest first. */
export function searchDecisionsSql(filter: DecisionFilter, after: Cursor | null, limit: number): Sql {
  const { where, values } = conditions(filter, after);
  values.push(limit);
  return {
    // NOTE: ORDER BY names the table's columns (d.): bare names would mean the text aliases of
    // SELECT_COLUMNS, which sort the same but cannot use an index, so every page would sort the table.
    text: `SELECT ${SELECT_COLUMNS} FROM decision_log d ${where} ORDER BY d.decided_at, d.id LIMIT $${values.length}`,
    values,
  };
}

/** How many records, in time order, a control search examines before it asks the GIN index. */
export const CONTROL_WALK_ROWS = 20_000;

/**
 * Control search, step 1: the matching records among the next `walk` records (in time order) that
 * match the other filters. Cheap whatever the control: it reads at most `walk` rows.
 */
export function controlWalkSql(
  filter: DecisionFilter,
  after: Cursor | null,
  limit: number,
  walk: number,
): Sql {
  const { control, ...others } = filter;
  const { where, values } = conditions(others, after);
  values.push(walk);
  const walkParam = `$${values.length}`;
  values.push(control);
  const controlParam = `$${values.length}`;
  values.push(limit);
  return {
    text: `SELECT ${SELECT_COLUMNS} FROM (
             SELECT * FROM decision_log d ${where} ORDER BY d.decided_at, d.id LIMIT ${walkParam}
           ) d WHERE d.violated_controls @> ARRAY[${controlParam}::text]
           ORDER BY d.decided_at, d.id LIMIT $${values.length}`,
    values,
  };
}

/**
 * Control search, step 2: the matching records through the GIN index on violated_controls. The
 * ORDER BY is on an expression on purpose, so that the planner cannot choose to walk the time order
 * hoping to meet matches soon: for a rare control that walk reads the whole table.
 */
export function controlIndexSql(filter: DecisionFilter, after: Cursor | null, limit: number): Sql {
  const { where, values } = conditions(filter, after);
  values.push(limit);
  return {
    text: `SELECT ${SELECT_COLUMNS} FROM decision_log d ${where}
           ORDER BY d.decided_at + interval '0 seconds', d.id LIMIT $${values.length}`,
    values,
  };
}

/** One record by id. */
export function decisionByIdSql(id: string): Sql {
  return { text: `SELECT ${SELECT_COLUMNS} FROM decision_log WHERE id = $1::uuid LIMIT 1`, values: [id] };
}

/** Every writer's recorded chain head. */
export function chainHeadsSql(): Sql {
  return { text: 'SELECT writer_id, seq, hash FROM chain_heads' };
}

/** Where retention cut the log (at most one row). */
export function retentionSql(): Sql {
  return { text: 'SELECT dropped_before FROM decision_log_retention' };
}

/**
 * Chain verification's page: whole rows in chain order (writer, seq, id) after `after`, optionally
 * within [from, to).
 */
export function chainPageSql(options: {
  after: [writerId: string, seq: string, id: string] | null;
  from?: string;
  to?: string;
  limit: number;
}): Sql {
  const values: unknown[] = [];
  const where: string[] = [];
  if (options.after) {
    values.push(...options.after);
    where.push('(writer_id, seq, id) > ($1, $2::bigint, $3::uuid)');
  }
  if (options.from !== undefined) {
    values.push(options.from);
    where.push(`decided_at >= $${values.length}`);
  }
  if (options.to !== undefined) {
    values.push(options.to);
    where.push(`decided_at < $${values.length}`);
  }
  values.push(options.limit);
  return {
    text: `SELECT * FROM decision_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY writer_id, seq, id LIMIT $${values.length}`,
    values,
  };
}

/** A monthly partition of decision_log: rows with from <= decided_at < to (UTC). */
export interface MonthPartition {
  name: string;
  from: Date;
  to: Date;
}

/** The names of monthly partitions: `decision_log_pYYYYMM`. */
export const PARTITION_NAME = /^decision_log_p(\d{4})(\d{2})$/;

// Serialises partition DDL across replicas (distinct from the migration lock).
const PARTITION_LOCK_KEY = 7_301_553_018;

/**
 * Rows up to this size stay inline and uncompressed (migrations/0003_decision_log_inline_rows.sql):
 * compressing a release gate's ~3 KB input cost a third of Postgres's CPU per insert.
 */
const INLINE_ROW_BYTES = 8160;

/** Takes the partition DDL lock until the transaction ends. */
export function partitionLockSql(): Sql {
  return { text: 'SELECT pg_advisory_xact_lock($1)', values: [PARTITION_LOCK_KEY] };
}

/** The partitions attached to decision_log. */
export function partitionsSql(): Sql {
  return {
    text: `SELECT c.relname AS name FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = to_regclass('decision_log')`,
  };
}

/** Whether a table of that name exists. */
export function tableExistsSql(name: string): Sql {
  return { text: 'SELECT to_regclass($1) IS NOT NULL AS exists', values: [name] };
}

function checkedPartitionName(name: string): string {
  if (!PARTITION_NAME.test(name)) throw new Error(`not a decision_log partition name: ${name}`);
  return name;
}

/**
 * The DDL that creates a monthly partition and attaches it. Rows that already landed in the
 * DEFAULT partition for that month move into it in the same script, because Postgres refuses to
 * attach a partition whose range the default partition holds rows for. DDL takes no parameters:
 * the name is checked against PARTITION_NAME and the bounds are ISO timestamps of Dates.
 */
export function createPartitionScript(partition: MonthPartition): string {
  const name = checkedPartitionName(partition.name);
  const from = `'${partition.from.toISOString()}'`;
  const to = `'${partition.to.toISOString()}'`;
  return `
    CREATE TABLE ${name} (LIKE decision_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
      WITH (toast_tuple_target = ${INLINE_ROW_BYTES});
    INSERT INTO ${name}
      SELECT * FROM decision_log_default WHERE decided_at >= ${from} AND decided_at < ${to};
    DELETE FROM decision_log_default WHERE decided_at >= ${from} AND decided_at < ${to};
    ALTER TABLE decision_log ATTACH PARTITION ${name} FOR VALUES FROM (${from}) TO (${to});
  `;
}

/** The DDL that drops a monthly partition. */
export function dropPartitionScript(name: string): string {
  return `DROP TABLE IF EXISTS ${checkedPartitionName(name)}`;
}

/** Records that retention cut the log before `before` (only ever moves forward). */
export function recordRetentionSql(before: Date): Sql {
  return {
    text: `INSERT INTO decision_log_retention (id, dropped_before) VALUES (true, $1)
           ON CONFLICT (id) DO UPDATE
           SET dropped_before = GREATEST(decision_log_retention.dropped_before, EXCLUDED.dropped_before)`,
    values: [before.toISOString()],
  };
}

/** Deletes the DEFAULT partition's rows older than `before`. */
export function deleteDefaultBeforeSql(before: Date): Sql {
  return { text: 'DELETE FROM decision_log_default WHERE decided_at < $1', values: [before.toISOString()] };
}
