/**
 * The decision log's one home: the row as stored and every SQL statement on it (decision_log, its
 * partitions, chain_heads, decision_log_retention; test/architecture/rules.ts) — insert (with the
 * chain heads), search, lookup, chain verification, the reads of the SIEM forwarder, of evidence
 * packages and of the shadow report, and partition maintenance — as pure functions
 * returning `{text, values}` (pg-boss's plans.ts style). Values are always parameters; the only
 * identifiers spliced into text are constants here or partition names built from integers. The same
 * statements run on Postgres and on PGlite. Nothing here runs a query.
 */
import { keysetConditions } from '../store/keyset.ts';
import type { Sql } from '../store/types.ts';
import { ROLLUP_CTES, UNDEFINED_DATA_PATH } from './kpi-sql.ts';

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

/**
 * What was decided about what: a run of columns that the table and the CSV export (export.ts) both
 * keep in this order.
 */
export const DECISION_FACT_COLUMNS = [
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
] as const satisfies readonly (keyof DecisionRow)[];

/**
 * The stored columns (in the table's order before migration 0015 moved caller, result and input to
 * its end as json); the hash covers all of them but `hash`.
 */
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
  ...DECISION_FACT_COLUMNS,
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
 * The columns stored as `json` since migration 0015; the rows written before it hold their value in
 * `<column>_jsonb` instead (a row holds it in exactly one of the pair). Readers take
 * `COALESCE(column, column_jsonb::json)` (SELECT_COLUMNS) or fold the pair (rowFromDatabase).
 */
const JSON_COLUMNS = ['caller', 'result', 'input'] as const;

/** `COALESCE(d.column, d.column_jsonb::json)`: the value of a JSON_COLUMNS column in either storage. */
function jsonColumn(column: (typeof JSON_COLUMNS)[number], table = 'd'): string {
  return `COALESCE(${table}.${column}, ${table}.${column}_jsonb::json)`;
}

/**
 * A decision_log row as `pg` or PGlite returns it, turned back into the DecisionRow that was hashed:
 * timestamptz comes back as a Date, bigint as a string, and a row written before migration 0015
 * has its caller, result and input folded back from their `_jsonb` columns.
 */
export function rowFromDatabase(raw: Record<string, unknown>): DecisionRow {
  const row = { ...raw } as Record<string, unknown>;
  for (const column of JSON_COLUMNS) {
    const legacy = `${column}_jsonb`;
    if (legacy in row) {
      row[column] ??= row[legacy];
      delete row[legacy];
    }
  }
  const at = raw.decided_at;
  row.decided_at = at instanceof Date ? at.toISOString() : new Date(String(at)).toISOString();
  row.seq = Number(raw.seq);
  row.eval_micros = Number(raw.eval_micros);
  return row as unknown as DecisionRow;
}

/**
 * One statement stores a whole batch: the rows travel as a single json parameter expanded by
 * json_populate_recordset, which stores each row's caller, result and input as the text the chain
 * made (json columns, migration 0015) (free of the 65535-parameter limit; INSERT vs COPY measured in
 * docs/decisions/0003-audit-durability.md), and the chain heads of the batch's writers move forward
 * in the same statement, so the two are atomic without BEGIN/COMMIT round trips (ADR 0004); so are
 * the KPI rollups (ROLLUP_CTES, src/audit/kpi-sql.ts).
 * `ON CONFLICT DO NOTHING` makes a replay of the same rows (spool) idempotent on (decided_at, id);
 * a head only moves forward, so replaying an old spool batch after newer ones cannot rewind it.
 */
const STORE_BATCH = {
  name: 'verdict_store_batch_v5',
  text: `WITH inserted AS (
           INSERT INTO decision_log
           SELECT * FROM json_populate_recordset(NULL::decision_log, $1::json)
           ON CONFLICT DO NOTHING
           RETURNING id, decided_at, writer_id, entrypoint, action_name, resource_type, resource_id, allow,
                     violated_controls, exceptions, shadow, ${UNDEFINED_DATA_PATH}
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
 * A batch holding a row of this many characters travels to `pg` as UTF-8 bytes (batchBytes). A
 * batch of short rows (tool calls, ~1.5 K characters each) is as cheap or cheaper as one text.
 */
const LONG_ROW_CHARS = 4096;

/**
 * A batch's JSON array as UTF-8 bytes, each row encoded once straight into one buffer. `pg` sends a
 * Buffer as a binary parameter, which for `json` is the same UTF-8 text. The text parameter costs
 * more on long rows: joining them, then `pg` measuring the joined string's UTF-8 length and encoding
 * it, each a pass over the whole batch, and slower still on text outside Latin-1 (a 10 KB
 * `model.response` with CJK or emoji: bench/README.md, "The batch as bytes").
 */
function batchBytes(json: readonly string[], chars: number): Buffer {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit (a surrogate pair: 4 bytes for 2 units).
  const buffer = Buffer.allocUnsafe(3 * chars + json.length + 1);
  let at = 0;
  buffer[at++] = 0x5b; // [
  json.forEach((row, i) => {
    if (i > 0) buffer[at++] = 0x2c; // ,
    at += buffer.write(row, at, 'utf8');
  });
  buffer[at++] = 0x5d; // ]
  return buffer.subarray(0, at);
}

/**
 * The statement that stores chained rows and moves their writers' chain heads. `json`, when given,
 * is each row's JSON text as the chain already made it (Chain.appendJson), so the batch is not
 * serialised again. `bytes`: the database is Postgres through `pg`, which takes a long batch as
 * UTF-8 bytes (batchBytes); PGlite takes text.
 */
export function storeBatchSql(rows: readonly DecisionRow[], json?: readonly string[], bytes = false): Sql {
  const heads = new Map<string, DecisionRow>();
  for (const row of rows) {
    const head = heads.get(row.writer_id);
    if (!head || head.seq < row.seq) heads.set(row.writer_id, row);
  }
  const last = [...heads.values()];
  return {
    ...STORE_BATCH,
    values: [
      json ? batchParameter(json, bytes) : JSON.stringify(rows),
      last.map((h) => h.writer_id),
      last.map((h) => h.seq),
      last.map((h) => h.hash),
    ],
  };
}

function batchParameter(json: readonly string[], bytes: boolean): string | Buffer {
  let chars = 0;
  let longest = 0;
  for (const row of json) {
    chars += row.length;
    if (row.length > longest) longest = row.length;
  }
  return bytes && longest >= LONG_ROW_CHARS ? batchBytes(json, chars) : `[${json.join(',')}]`;
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
  /** A waiver id that must be among the record's applied exceptions (GIN index, migrations 0005, 0014). */
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
  surface, caller_sub, ${jsonColumn('caller')} AS caller, entrypoint, bundle_revision, bundle_digest,
  subject_type, subject_id, action_name, resource_type, resource_id, allow, violated_controls,
  ${jsonColumn('result')} AS result, ${jsonColumn('input')} AS input, input_sha256, exceptions, shadow,
  eval_micros, trace_id, error,
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
    ['entrypoint', 'entrypoint'],
    ['revision', 'bundle_revision'],
  ];
  for (const [field, column] of equalities) {
    const value = filter[field];
    if (value !== undefined) clauses.push(`${column} = ${param(value)}`);
  }
  // NOTE: `allow` is spelled out, not a parameter: the index on (decided_at, id) of denies is partial
  // (`WHERE NOT allow`, migration 0014), and the planner proves that from the literal clause. An
  // allow search walks the time order, where allows are most of the rows.
  if (filter.allow !== undefined) clauses.push(filter.allow ? 'allow' : 'NOT allow');
  // NOTE: `<> '{}'` is the predicate of the partial GIN indexes (migration 0014), stated in the same
  // words so that the planner can prove the index covers the search; it changes no result.
  if (filter.control !== undefined) {
    clauses.push(`violated_controls <> '{}'`, `violated_controls @> ARRAY[${param(filter.control)}::text]`);
  }
  if (filter.exception !== undefined) {
    clauses.push(`exceptions <> '{}'`, `exceptions @> ARRAY[${param(filter.exception)}::text]`);
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

/** A record's stored input size (as stored: compressed or not, in either column of the pair). */
const STORED_INPUT_BYTES = 'coalesce(pg_column_size(d.input), pg_column_size(d.input_jsonb), 0)';

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

/**
 * Impact analysis's page (src/bundles/impact.ts): the next records after `after` matching `filter`,
 * in (decided_at, id) order, with only what a re-evaluation needs — at most `limit` of them, and no
 * more than `maxBytes` of stored input (`pg_column_size`, as stored) once the first is counted: a
 * record that starts past the budget waits for the next page, so a page holds at most `maxBytes`
 * plus one record whatever the inputs' sizes (one record always fits, however large). One row:
 * `scanned` (records read before the byte cut; fewer than `limit` and all kept means the window
 * ended), how many were kept, the last kept one's position (the next page's cursor) and the kept
 * records as one JSON text, parsed by the worker thread that evaluates it. A record's input comes
 * as `input_text` (the json column's text as stored, since migration 0015: evaluated without being
 * parsed when its digest is the recorded one) or, for a record written before, as the `input` value. On Postgres that worker
 * reads the page itself (impact-worker.ts), so the text never reaches the replica's main thread,
 * which stays free for live decisions; on PGlite the main thread reads it and hands the text over.
 */
export function impactPageSql(
  filter: DecisionFilter,
  after: Cursor | null,
  limit: number,
  maxBytes: number,
): Sql {
  const { where, values } = conditions(filter, after);
  values.push(limit);
  const limitParam = `$${values.length}`;
  values.push(maxBytes);
  const bytesParam = `$${values.length}`;
  return {
    // NOTE: the window's ORDER BY is the query's (d.decided_at, d.id, unique), so the running sum is
    // computed on the index order as rows stream, and the LIMIT still stops the scan.
    text: `WITH scanned AS (
             SELECT id::text AS id,
                    to_char(decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS decided_at,
                    surface, entrypoint, allow, violated_controls, d.input_jsonb AS input,
                    d.input::text AS input_text, input_sha256, error,
                    sum(${STORED_INPUT_BYTES}) OVER (ORDER BY d.decided_at, d.id) - ${STORED_INPUT_BYTES}
                      AS bytes_before
               FROM decision_log d ${where} ORDER BY d.decided_at, d.id LIMIT ${limitParam}
           ), page AS (
             SELECT id, decided_at, surface, entrypoint, allow, violated_controls, input, input_text, input_sha256,
                    error
               FROM scanned WHERE bytes_before < ${bytesParam}
           )
           SELECT (SELECT count(*) FROM scanned)::int AS scanned,
                  count(*)::int AS count,
                  (array_agg(decided_at ORDER BY decided_at DESC, id DESC))[1] AS last_decided_at,
                  (array_agg(id ORDER BY decided_at DESC, id DESC))[1] AS last_id,
                  coalesce(json_agg(page ORDER BY decided_at, id), '[]')::text AS records
             FROM page`,
    values,
  };
}

/** How many records match `filter` (impact analysis's total, for its progress). */
export function countDecisionsSql(filter: DecisionFilter): Sql {
  const { where, values } = conditions(filter, null);
  return { text: `SELECT count(*)::bigint AS count FROM decision_log d ${where}`, values };
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
  return { text: `SELECT ${SELECT_COLUMNS} FROM decision_log d WHERE id = $1::uuid LIMIT 1`, values: [id] };
}

/** Every writer's recorded chain head. */
export function chainHeadsSql(): Sql {
  return { text: 'SELECT writer_id, seq, hash FROM chain_heads', values: [] };
}

/** Where retention cut the log (at most one row). */
export function retentionSql(): Sql {
  return { text: 'SELECT dropped_before FROM decision_log_retention', values: [] };
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
  const after = options.after && {
    compare: '(writer_id, seq, id) > ($1, $2::bigint, $3::uuid)',
    values: options.after,
  };
  const { where, values } = keysetConditions(after, {
    column: 'decided_at',
    from: options.from,
    to: options.to,
  });
  values.push(options.limit);
  return {
    text: `SELECT * FROM decision_log ${where} ORDER BY writer_id, seq, id LIMIT $${values.length}`,
    values,
  };
}

/**
 * The records about one resource, in (decided_at, id) order, optionally within [from, to): an
 * evidence package's decisions.
 */
export function resourceDecisionsSql(query: {
  resourceType: string;
  resourceId: string;
  from?: string;
  to?: string;
}): Sql {
  const values: unknown[] = [query.resourceType, query.resourceId];
  let window = '';
  if (query.from) {
    values.push(query.from);
    window += ` AND decided_at >= $${values.length}::timestamptz`;
  }
  if (query.to) {
    values.push(query.to);
    window += ` AND decided_at < $${values.length}::timestamptz`;
  }
  return {
    text: `SELECT * FROM decision_log WHERE resource_type = $1 AND resource_id = $2${window} ORDER BY decided_at, id`,
    values,
  };
}

/** A writer's chain from `fromSeq` to `toSeq` (both included): an evidence package's segment. */
export function chainSegmentSql(writerId: string, fromSeq: number, toSeq: number): Sql {
  return {
    text: 'SELECT * FROM decision_log WHERE writer_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, id',
    values: [writerId, fromSeq, toSeq],
  };
}

/** The next `limit` rows of a writer's chain after `afterSeq`, in seq order (the SIEM forwarder). */
export function chainAfterSql(writerId: string, afterSeq: number, limit: number): Sql {
  return {
    text: 'SELECT * FROM decision_log WHERE writer_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
    values: [writerId, afterSeq, limit],
  };
}

/**
 * The row at each (writer, seq) position that holds one: its hash and decided_at (checkpoint
 * verification compares the hash; the SIEM forwarder's lag reads the time).
 */
export function chainPositionsSql(positions: readonly { writer_id: string; seq: number }[]): Sql {
  return {
    text: `SELECT u.writer_id, u.seq::text AS seq, t.hash, t.decided_at
           FROM unnest($1::text[], $2::bigint[]) AS u(writer_id, seq)
           JOIN LATERAL (SELECT hash, decided_at FROM decision_log t WHERE t.writer_id = u.writer_id AND t.seq = u.seq
                         ORDER BY t.id LIMIT 1) t ON true`,
    values: [positions.map((p) => p.writer_id), positions.map((p) => p.seq)],
  };
}

/** How many decision ids a shadow report shows per direction and per control. */
export const SHADOW_SAMPLE_IDS = 5;

// The decisions of [$1, $2) that carried a shadow result (of revision $3 when not null), with the
// direction in which the shadow revision would have flipped them.
const SHADOWED = `
  WITH shadowed AS (
    SELECT id, decided_at, allow, violated_controls, shadow,
           CASE WHEN allow AND NOT (shadow->>'allow')::boolean THEN 'allow_to_deny'
                WHEN NOT allow AND (shadow->>'allow')::boolean THEN 'deny_to_allow' END AS direction
      FROM decision_log
     WHERE shadow IS NOT NULL AND jsonb_typeof(shadow) = 'object'
       AND decided_at >= $1 AND decided_at < $2
       AND ($3::text IS NULL OR shadow->>'digest' = $3)
  )`;

/** The shadow report's totals: decisions compared and the shadow revisions seen. */
export function shadowTotalsSql(from: string, to: string, digest: string | null): Sql {
  return {
    text: `${SHADOWED}
      SELECT count(*) AS compared, array_remove(array_agg(DISTINCT shadow->>'digest'), NULL) AS digests
        FROM shadowed`,
    values: [from, to, digest],
  };
}

/** The shadow report's flips by direction, with sample decision ids. */
export function shadowFlipsSql(from: string, to: string, digest: string | null): Sql {
  return {
    text: `${SHADOWED}
      SELECT direction, count(*) AS count,
             (array_agg(id::text ORDER BY decided_at DESC, id DESC))[1:${SHADOW_SAMPLE_IDS}] AS sample_ids
        FROM shadowed WHERE direction IS NOT NULL
       GROUP BY direction ORDER BY direction`,
    values: [from, to, digest],
  };
}

/** The shadow report's flips by control and direction, with sample decision ids. */
export function shadowControlsSql(from: string, to: string, digest: string | null): Sql {
  return {
    text: `${SHADOWED},
      flipped AS (
        SELECT id, decided_at, direction, control
          FROM shadowed, LATERAL jsonb_array_elements_text(
            CASE jsonb_typeof(shadow->'controls') WHEN 'array' THEN shadow->'controls' ELSE '[]'::jsonb END
          ) AS control
         WHERE direction = 'allow_to_deny'
        UNION ALL
        SELECT id, decided_at, direction, control
          FROM shadowed, LATERAL unnest(violated_controls) AS control
         WHERE direction = 'deny_to_allow'
      )
      SELECT direction, control, count(DISTINCT id) AS count,
             (array_agg(DISTINCT id::text))[1:${SHADOW_SAMPLE_IDS}] AS sample_ids
        FROM flipped GROUP BY direction, control ORDER BY count(DISTINCT id) DESC, direction, control
       LIMIT 200`,
    values: [from, to, digest],
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
    values: [],
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
    CREATE TABLE ${name} (LIKE decision_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION)
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
