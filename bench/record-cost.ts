/**
 * What recording a decision costs, old write path against new, A/B in one run (issue 27).
 *
 *   node bench/record-cost.ts [--decisions 20000] [--rounds 3] [--concurrency 32]
 *                             [--kind tool-call|release-gate|model-response]
 *                             [--sequential 400] [--arms old,new] [--database-url postgres://…]
 *                             (arms: old, v14, new, norollupnew, lz4, lz4new, noidx, norollup, linger, indexes)
 *
 * Two databases on the local Postgres, `verdict_bench_record_<arm>_<pid>`: `old` holds the schema of
 * migrations 0001–0013 and is written with the batch statement those migrations went with (a frozen
 * copy below), `v14` the schema of 0001–0014 with that schema's statement (jsonb columns, before
 * migration 0015), `new` the whole migrations folder and the write path of src/audit as it is.
 * `--kind model-response` records 10 KB `model.response` decisions (bench/guardrails.ts's response:
 * a secret, an email address and a card number planted, so the record holds the redacted text). Real
 * decision records are made once by DecisionService on the committed bundle (the run's tool-call or
 * release-gate envelopes, with the mask), then the arms take turns, round after round (the first
 * arm alternates), each writing `--decisions` records through a real AuditWriter (`sync`, the
 * default batch settings) from `--concurrency` callers that each record one decision at a time.
 *
 * Per arm and round: the writer process's CPU per decision (process.cpuUsage: the chain, the
 * statement's text, the Postgres client), the CPU of the one backend that ran every batch
 * (/proc/<pid>/schedstat: nanoseconds, this database's only), the CPU of every `postgres` process
 * on the host (WAL writer and checkpointer included, other sessions' too), WAL bytes per decision
 * (pg_current_wal_lsn() delta: the whole server's), and table + index + TOAST bytes per decision.
 * The exact WAL of the batch statement, unshared, is read apart with EXPLAIN (ANALYZE, WAL) on a
 * few batches per arm. Medians over rounds and each arm's ratio to the first are printed; on a shared host,
 * read the ratios.
 *
 * `--sequential N` then measures one decision at a time (what an agent does): N records recorded
 * one after another through each arm's writer, with the group commit lingering always (the old
 * writer) and only with company (the new); the bare batch statement for one row, with no writer
 * around it (the commit's own round trip and fsync); p50/p99 of each.
 *
 * `--http N` measures the same through HTTP: two Verdict servers (`node src/main.ts`, one worker,
 * `sync` and `off` audit, this checkout's code) answer N sequential tool-call decisions each, in
 * alternating blocks of 10, with 10 bare batch statements between blocks.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { type DecisionRow, storeBatchSql } from '../src/audit/decision-log.ts';
import { ROLLUP_CTES } from '../src/audit/kpi-sql.ts';
import { MemoryRecorder } from '../src/audit/memory-recorder.ts';
import { ensurePartitions } from '../src/audit/partitions.ts';
import { AuditWriter, storeBatch } from '../src/audit/writer.ts';
import { DecisionService } from '../src/decisions/service.ts';
import type { Caller, DecisionRecord } from '../src/decisions/types.ts';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { loadMigrations, migrate } from '../src/store/migrate.ts';
import { PostgresDatabase } from '../src/store/postgres.ts';
import type { Database, Queryable, QueryResult, Sql } from '../src/store/types.ts';
import { response, responseEnvelope } from './guardrails.ts';
import { loadInputs } from './inputs.ts';
import {
  BENCH_CALLER,
  mintToken,
  postgresCpuSecondsSince,
  postgresTicks,
  runBenchMain,
  startSystem,
} from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    decisions: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '32' },
    kind: { type: 'string', default: 'tool-call' },
    sequential: { type: 'string', default: '400' },
    http: { type: 'string', default: '0' },
    arms: { type: 'string', default: 'old,new' },
    'explain-batches': { type: 'string', default: '5' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    keep: { type: 'boolean', default: false },
  },
});
const decisions = Number(args.decisions);
const rounds = Number(args.rounds);
const concurrency = Number(args.concurrency);
const sequential = Number(args.sequential);
const httpRequests = Number(args.http);

/**
 * The batch statement of migrations 0001–0013 (src/audit/decision-log.ts before issue 27), kept
 * here verbatim so that the old arm writes as the old code did. Same parameters as storeBatchSql.
 */
const LEGACY_STORE_BATCH = {
  name: 'verdict_store_batch_v3',
  text: `WITH inserted AS (
           INSERT INTO decision_log
           SELECT * FROM jsonb_populate_recordset(NULL::decision_log, $1::jsonb)
           ON CONFLICT DO NOTHING
           RETURNING id, decided_at, writer_id, entrypoint, action_name, resource_type, resource_id, allow,
                     violated_controls, exceptions, shadow, (surface = 'data' AND (result IS NULL OR result = 'null'::jsonb
                                   OR error->>'code' = 'unknown_entrypoint')) AS undefined_path
         ), heads AS (
           INSERT INTO chain_heads (writer_id, seq, hash)
           SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[])
           ON CONFLICT (writer_id) DO UPDATE
           SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()
           WHERE chain_heads.seq < EXCLUDED.seq
         ), keyed AS (
           SELECT date_trunc('hour', i.decided_at, 'UTC') AS bucket, i.entrypoint,
                  COALESCE(i.action_name, '') AS action_name, i.writer_id, k.control, i.allow,
                  COALESCE(cardinality(i.exceptions), 0) > 0 AS waived, k.counted, k.shadowed, k.flipped
           FROM (SELECT d.*, (d.shadow IS NOT NULL AND jsonb_typeof(d.shadow->'allow') = 'boolean') AS has_shadow,
                        ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(d.shadow->'controls') = 'array'
                                                                    THEN d.shadow->'controls' ELSE '[]'::jsonb END)) AS shadow_controls
                 FROM inserted d WHERE NOT d.undefined_path) i
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
         )
         SELECT count(*)::int AS inserted FROM inserted`,
};

/** One side of the A/B: a schema and a way to turn the writer's batch statement into its own. */
interface Arm {
  name: string;
  /** Which migrations make its schema. */
  migrations: (name: string) => boolean;
  /** Extra DDL after the migrations (exploring a lever before it becomes a migration). */
  ddl?: string;
  /** The statement this arm runs for the writer's batch (same parameters as storeBatchSql). */
  batch?: { name: string; text: string };
  /** Whether its writer lingers for a lone record (the old group commit). */
  lingerAlone: boolean;
}

const ARMS: Record<string, Arm> = {
  old: {
    name: 'old',
    migrations: (name) => name < '0014',
    batch: LEGACY_STORE_BATCH,
    lingerAlone: true,
  },
  v14: {
    name: 'v14',
    migrations: (name) => name < '0015',
    batch: {
      name: 'verdict_store_batch_v3',
      text: storeBatchSql([])
        .text.replace(
          'json_populate_recordset(NULL::decision_log, $1::json)',
          'jsonb_populate_recordset(NULL::decision_log, $1::jsonb)',
        )
        .replace("json_typeof(result) = 'null'", "result = 'null'::jsonb"),
    },
    lingerAlone: false,
  },
  new: { name: 'new', migrations: () => true, lingerAlone: false },
};

// Levers measured on their own before any became a migration (bench/README.md says which were kept).
const PER_PARTITION = (statement: string) => `DO $$ DECLARE part regclass; BEGIN
  FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'decision_log'::regclass LOOP
    EXECUTE format('${statement}', part);
  END LOOP; END $$;`;
const SECONDARY_INDEXES = [
  'id',
  'caller',
  'subject',
  'action',
  'resource',
  'allow',
  'entry',
  'revision',
  'controls',
  'chain',
  'subject_id',
  'resource_id',
  'exceptions',
];
const levers: Arm[] = [
  {
    name: 'lz4',
    ddl: `ALTER TABLE decision_log ALTER COLUMN input SET COMPRESSION lz4, ALTER COLUMN result SET COMPRESSION lz4,
            ALTER COLUMN caller SET COMPRESSION lz4;
          ${PER_PARTITION('ALTER TABLE %s SET (toast_tuple_target = 128)')}`,
  },
  {
    name: 'noidx',
    ddl: SECONDARY_INDEXES.map((i) => `DROP INDEX decision_log_${i}_idx;`).join('\n'),
  },
  {
    name: 'norollup',
    batch: {
      name: 'verdict_store_batch_norollup',
      text: LEGACY_STORE_BATCH.text.replace(/, keyed AS \([\s\S]*\n {9}\)\n/, '\n'),
    },
  },
].map((lever) => ({
  migrations: (name: string) => name < '0014',
  batch: LEGACY_STORE_BATCH,
  lingerAlone: true,
  ...lever,
}));
for (const lever of levers) ARMS[lever.name] = lever;
// On top of the new schema: lz4 instead of pglz, and rows over ~2 KB compressed again (0003 kept
// them inline and uncompressed up to 8 KB because pglz cost a third of the backend's CPU).
ARMS.lz4new = {
  name: 'lz4new',
  migrations: (name) => name < '0015',
  batch: ARMS.v14!.batch,
  lingerAlone: false,
  ddl: `ALTER TABLE decision_log ALTER COLUMN input SET COMPRESSION lz4, ALTER COLUMN result SET COMPRESSION lz4,
          ALTER COLUMN caller SET COMPRESSION lz4;
        ${PER_PARTITION('ALTER TABLE %s RESET (toast_tuple_target)')}`,
};
// The new write path with the old group commit (a lone record lingers too): --concurrency 4.
ARMS.linger = { name: 'linger', migrations: () => true, lingerAlone: true };
// The new schema written by the old statement: the indexes alone, without the rollups' rewrite.
ARMS.indexes = {
  name: 'indexes',
  migrations: (name) => name < '0015',
  batch: LEGACY_STORE_BATCH,
  lingerAlone: false,
};
// Migration 0015 (input, result and caller as json) was the `json` arm here: it is `new` against `v14`.
// The write path as it is without the KPI rollups (a bound, not a proposal: what taking the rollups
// out of the commit could save at most, before the cost of maintaining them elsewhere).
const storeBatchText = storeBatchSql([]).text;
if (!storeBatchText.includes(`), ${ROLLUP_CTES}`))
  throw new Error('storeBatchSql no longer splices ROLLUP_CTES');
ARMS.norollupnew = {
  name: 'norollupnew',
  migrations: () => true,
  batch: { name: 'verdict_store_batch_norollup_new', text: storeBatchText.replace(`), ${ROLLUP_CTES}`, ')') },
  lingerAlone: false,
};

/** A Database whose batch statement is the arm's own; everything else passes through. */
function armDatabase(db: PostgresDatabase, arm: Arm): Database {
  const batch = arm.batch;
  if (!batch) return db;
  const swap = (sql: Sql): Sql =>
    sql.name?.startsWith('verdict_store_batch') ? { ...batch, values: sql.values } : sql;
  return {
    kind: db.kind,
    connection: db.connection,
    query<Row>(sql: Sql): Promise<QueryResult<Row>> {
      return db.query<Row>(swap(sql));
    },
    exec: (script) => db.exec(script),
    transaction: <T>(work: (tx: Queryable) => Promise<T>) =>
      db.transaction((tx) =>
        work({ query: <Row>(sql: Sql) => tx.query<Row>(swap(sql)), exec: (s) => tx.exec(s) }),
      ),
    ping: () => db.ping(),
    close: () => db.close(),
  };
}

function databaseUrl(name: string): string {
  const url = new URL(args['database-url']);
  url.pathname = `/${name}`;
  return url.toString();
}

async function recreate(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: args['database-url'] });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
}

async function dropDatabase(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: args['database-url'] });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

/** Decision records as the server makes them: DecisionService on the committed bundle. */
async function makeRecords(): Promise<DecisionRecord[]> {
  const engine = PolicyEngine.fromBundle(
    parseBundle(readFileSync(path.join(root, 'policies/bundle/bundle.tar.gz'))),
  );
  const recorder = new MemoryRecorder();
  const service = new DecisionService({ policy: { current: () => engine }, recorder });
  const inputs = await loadInputs(200, 42);
  const envelopes =
    args.kind === 'release-gate'
      ? inputs.releases
      : args.kind === 'model-response'
        ? [responseEnvelope(response(10_240))]
        : inputs.toolCalls;
  for (const envelope of envelopes) {
    await service.decide({
      surface: 'native',
      entrypoint: 'verdict/decision',
      input: envelope,
      caller: BENCH_CALLER as Caller,
      traceId: null,
    });
  }
  return recorder.records;
}

/** The i-th record to write: one of the made records under a fresh id and time. */
function recordAt(made: DecisionRecord[], i: number): DecisionRecord {
  return { ...made[i % made.length]!, id: uuidv7(), decidedAt: new Date().toISOString() };
}

/** CPU nanoseconds a process has run (/proc/<pid>/schedstat). */
function schedNanos(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
}

interface Setup {
  arm: Arm;
  dbName: string;
  db: PostgresDatabase;
  armDb: Database;
  backendPid: number;
  spoolDir: string;
}

async function setUp(arm: Arm): Promise<Setup> {
  const dbName = `verdict_bench_record_${arm.name}_${process.pid}`;
  await recreate(dbName);
  // One connection: the writer's one loop runs every batch on it, so its backend is this pid.
  const db = new PostgresDatabase({ url: databaseUrl(dbName), max: 1 });
  await migrate(
    db,
    loadMigrations().filter((m) => arm.migrations(m.name)),
  );
  await ensurePartitions(db);
  if (arm.ddl) await db.exec(arm.ddl);
  const { rows } = await db.query<{ pid: number }>({ text: 'SELECT pg_backend_pid() AS pid', values: [] });
  return {
    arm,
    dbName,
    db,
    armDb: armDatabase(db, arm),
    backendPid: rows[0]!.pid,
    spoolDir: mkdtempSync(path.join(tmpdir(), 'verdict-record-cost-')),
  };
}

function writerOf(s: Setup, lingerAlone: boolean): AuditWriter {
  return new AuditWriter({
    db: s.armDb,
    spoolDir: s.spoolDir,
    mode: 'sync',
    batchMaxRecords: 500,
    batchMaxWaitMs: 2,
    queueMaxRecords: 10_000,
    enqueueTimeoutMs: 5_000,
    spoolMaxBytes: 64 * 1024 * 1024,
    lingerAlone,
  });
}

async function scalar<T>(db: Queryable, text: string): Promise<T> {
  const { rows } = await db.query<{ v: T }>({ text, values: [] });
  return rows[0]!.v;
}

const SIZE_SQL = `SELECT COALESCE(sum(pg_total_relation_size(inhrelid)), 0)::bigint AS v
                  FROM pg_inherits WHERE inhparent = 'decision_log'::regclass`;

interface Round {
  arm: string;
  seconds: number;
  processMicros: number;
  backendMicros: number;
  postgresMicros: number;
  walBytes: number;
  tableBytes: number;
  batches: number;
}

async function round(s: Setup, made: DecisionRecord[]): Promise<Round> {
  const writer = writerOf(s, s.arm.lingerAlone);
  await writer.start();
  // Warm-up: the statement prepared, the code optimised.
  await Promise.all(Array.from({ length: concurrency }, (_, c) => writer.record([recordAt(made, c)])));
  const records = Array.from({ length: decisions }, (_, i) => recordAt(made, i));
  const walBefore = await scalar<string>(s.db, 'SELECT pg_current_wal_lsn()::text AS v');
  const sizeBefore = Number(await scalar<string>(s.db, SIZE_SQL));
  const batchesBefore = writer.stats().batches;
  // The pool's one connection may have been closed while idle (between rounds): ask again.
  s.backendPid = await scalar<number>(s.db, 'SELECT pg_backend_pid() AS v');
  const pgBefore = postgresTicks();
  const backendBefore = schedNanos(s.backendPid);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < records.length) {
        const record = records[next++]!;
        await writer.record([record]);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const backendNanos = schedNanos(s.backendPid) - backendBefore;
  const pgSeconds = postgresCpuSecondsSince(pgBefore);
  const batches = writer.stats().batches - batchesBefore;
  const walBytes = Number(
    await scalar<string>(s.db, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${walBefore}')::bigint AS v`),
  );
  const tableBytes = Number(await scalar<string>(s.db, SIZE_SQL)) - sizeBefore;
  await writer.close();
  return {
    arm: s.arm.name,
    seconds,
    processMicros: (cpu.user + cpu.system) / decisions,
    backendMicros: backendNanos / 1000 / decisions,
    postgresMicros: (pgSeconds * 1e6) / decisions,
    walBytes: walBytes / decisions,
    tableBytes: tableBytes / decisions,
    batches,
  };
}

/** The batch statement's own WAL for a batch of `size` rows, from EXPLAIN (ANALYZE, WAL). */
async function explainWal(
  s: Setup,
  made: DecisionRecord[],
  size: number,
): Promise<{ bytes: number; fpi: number }> {
  const { Chain } = await import('../src/audit/chain.ts');
  const chain = new Chain(uuidv7());
  const { rows, json } = chain.appendJson(Array.from({ length: size }, (_, i) => recordAt(made, i)));
  const sql = storeBatchSql(rows as DecisionRow[], json);
  const text = s.arm.batch ? s.arm.batch.text : sql.text;
  const result = await s.db.query<{ 'QUERY PLAN': [{ Plan: { 'WAL Bytes': number; 'WAL FPI': number } }] }>({
    text: `EXPLAIN (ANALYZE, WAL, FORMAT JSON) ${text}`,
    values: sql.values,
  });
  const plan = result.rows[0]!['QUERY PLAN'][0]!.Plan;
  return { bytes: plan['WAL Bytes'] / size, fpi: plan['WAL FPI'] };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * One record at a time through two writers on the same database — one lingering always (the old
 * group commit), one only with company (the new) — and the bare batch statement, in alternating
 * blocks of 25 so that the three share the host's moments.
 */
async function sequentialLatency(s: Setup, made: DecisionRecord[]): Promise<Record<string, number[]>> {
  const writers = { always: writerOf(s, true), company: writerOf(s, false) };
  const times: Record<string, number[]> = { bare: [], always: [], company: [] };
  for (const writer of Object.values(writers)) {
    await writer.start();
    for (let i = 0; i < 20; i++) await writer.record([recordAt(made, i)]);
  }
  await bareCommit(s, made, 20);
  for (let block = 0; block * 25 < sequential; block++) {
    times.bare!.push(...(await bareCommit(s, made, 25)));
    for (const [name, writer] of Object.entries(writers)) {
      for (let i = 0; i < 25; i++) {
        const record = recordAt(made, i);
        const t = performance.now();
        await writer.record([record]);
        times[name]!.push(performance.now() - t);
      }
    }
  }
  for (const writer of Object.values(writers)) await writer.close();
  return times;
}

/** The batch statement for one row, no writer around it: the commit's own round trip and fsync. */
async function bareCommit(s: Setup, made: DecisionRecord[], count: number): Promise<number[]> {
  const { Chain } = await import('../src/audit/chain.ts');
  const chain = new Chain(uuidv7());
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const { rows, json } = chain.appendJson([recordAt(made, i)]);
    const t = performance.now();
    await storeBatch(s.armDb, rows, json);
    times.push(performance.now() - t);
  }
  return times;
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

/** The arm that runs this checkout's code as it is (`new`), else the last one. */
function newest(setups: Setup[]): Setup {
  return setups.find((s) => s.arm.name === 'new') ?? setups.at(-1)!;
}

/** One decision at a time through HTTP, `sync` against `off`, with the bare commit beside them. */
async function httpSequential(s: Setup, made: DecisionRecord[]): Promise<void> {
  const { toolCalls } = await loadInputs(200, 42);
  const jwtSecret = `bench-${uuidv7()}`;
  const token = mintToken(jwtSecret);
  const workDir = mkdtempSync(path.join(tmpdir(), 'verdict-record-http-'));
  const env = {
    bundlePath: path.join(root, 'policies/bundle/bundle.tar.gz'),
    opaBundleDir: '',
    databaseUrl: databaseUrl(s.dbName),
    jwtSecret,
    workDir,
    cpus: null,
  };
  const servers = [];
  for (const mode of ['sync', 'off'] as const) {
    servers.push(
      await startSystem({ id: `verdict-${mode}-w1`, kind: 'verdict', auditMode: mode, workers: 1 }, env),
    );
  }
  const times = servers.map(() => [] as number[]);
  const bare: number[] = [];
  try {
    const ask = async (url: string, i: number) => {
      const started = performance.now();
      const response = await fetch(`${url}/v1/decisions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(toolCalls[i % toolCalls.length]),
      });
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`HTTP ${response.status} from ${url}`);
      return performance.now() - started;
    };
    for (const server of servers) for (let i = 0; i < 50; i++) await ask(server.url, i);
    for (let block = 0; block * 10 < httpRequests; block++) {
      for (const [k, server] of servers.entries()) {
        for (let i = 0; i < 10; i++) times[k]!.push(await ask(server.url, block * 10 + i));
      }
      bare.push(...(await bareCommit(s, made, 10)));
    }
  } finally {
    for (const server of servers) await server.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
  console.log(`\none tool-call decision at a time through HTTP (${times[0]!.length} each, one worker), ms:`);
  for (const [k, server] of servers.entries()) {
    const t = times[k]!;
    console.log(
      `  ${server.spec.id.padEnd(16)} p50 ${fmt(percentile(t, 50), 2)} p99 ${fmt(percentile(t, 99), 2)}`,
    );
  }
  console.log(
    `  the batch statement alone (1 row, commit), same minutes: p50 ${fmt(percentile(bare, 50), 2)} p99 ${fmt(percentile(bare, 99), 2)}`,
  );
}

async function main(): Promise<void> {
  const arms = args.arms.split(',').map((name) => {
    const arm = ARMS[name];
    if (!arm) throw new Error(`unknown arm ${name}; known: ${Object.keys(ARMS).join(', ')}`);
    return arm;
  });
  const made = await makeRecords();
  const bytes = made.reduce((sum, r) => sum + JSON.stringify(r).length, 0) / made.length;
  console.log(
    `${made.length} ${args.kind} records made by DecisionService (mean ${Math.round(bytes)} B of JSON); ` +
      `${decisions} decisions × ${rounds} rounds × ${arms.length} arms, ${concurrency} callers`,
  );
  const setups: Setup[] = [];
  for (const arm of arms) setups.push(await setUp(arm));
  const results: Round[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? setups : [...setups].reverse();
      for (const s of order) {
        const result = await round(s, made);
        results.push(result);
        console.log(
          `round ${r + 1} ${s.arm.name.padEnd(10)} ${fmt(decisions / result.seconds, 0)}/s  ` +
            `process ${fmt(result.processMicros)} µs  backend ${fmt(result.backendMicros)} µs  ` +
            `postgres ${fmt(result.postgresMicros)} µs  WAL ${fmt(result.walBytes, 0)} B  ` +
            `table ${fmt(result.tableBytes, 0)} B  (${(decisions / result.batches).toFixed(1)} rows/batch)`,
        );
      }
    }
    const explainBatches = Number(args['explain-batches']);
    const explained = new Map<string, { bytes: number; fpi: number }[]>();
    for (const s of setups) {
      const list: { bytes: number; fpi: number }[] = [];
      for (let i = 0; i < explainBatches; i++) list.push(await explainWal(s, made, 32));
      explained.set(s.arm.name, list);
    }
    console.log('\nmedians per decision (rounds alternate which arm goes first):');
    const summary = new Map<string, Record<string, number>>();
    for (const s of setups) {
      const mine = results.filter((x) => x.arm === s.arm.name);
      const row = {
        'decisions/s': median(mine.map((x) => decisions / x.seconds)),
        'process CPU µs': median(mine.map((x) => x.processMicros)),
        'backend CPU µs': median(mine.map((x) => x.backendMicros)),
        'all postgres CPU µs': median(mine.map((x) => x.postgresMicros)),
        'WAL B (server)': median(mine.map((x) => x.walBytes)),
        'WAL B (statement, EXPLAIN)': median(explained.get(s.arm.name)!.map((x) => x.bytes)),
        'full-page images per batch': median(explained.get(s.arm.name)!.map((x) => x.fpi)),
        'table+index B': median(mine.map((x) => x.tableBytes)),
      };
      summary.set(s.arm.name, row);
    }
    const names = setups.map((s) => s.arm.name);
    const keys = Object.keys(summary.get(names[0]!)!);
    const ratioNames = names.slice(1).map((n) => `${n}/${names[0]}`);
    // Columns as wide as their headings, so that long arm names stay apart.
    const width = (heading: string, least: number) => Math.max(least, heading.length + 2);
    console.log(
      `${''.padEnd(28)}${names.map((n) => n.padStart(width(n, 12))).join('')}${ratioNames.map((n) => n.padStart(width(n, 14))).join('')}`,
    );
    for (const key of keys) {
      const values = names.map((n) => summary.get(n)![key]!);
      const ratios = values
        .slice(1)
        .map((v, i) =>
          (values[0] ? `${(v / values[0]).toFixed(2)}×` : '—').padStart(width(ratioNames[i]!, 14)),
        );
      console.log(
        `${key.padEnd(28)}${values.map((v, i) => fmt(v).padStart(width(names[i]!, 12))).join('')}${ratios.join('')}`,
      );
    }
    if (sequential > 0) {
      // The linger does not depend on the schema: measured on the new arm's database.
      const times = await sequentialLatency(newest(setups), made);
      console.log(
        `\none decision at a time (${times.bare!.length} sequential records each, blocks of 25 alternating), ms:`,
      );
      const label: Record<string, string> = {
        bare: 'the batch statement alone (1 row + commit)',
        always: 'writer.record, lingers always (old)',
        company: 'writer.record, lingers with company (new)',
      };
      for (const [name, t] of Object.entries(times)) {
        console.log(
          `  ${label[name]!.padEnd(44)} p50 ${fmt(percentile(t, 50), 2)} p99 ${fmt(percentile(t, 99), 2)}`,
        );
      }
      const bare = percentile(times.bare!, 50);
      console.log(
        `  p50 above the bare statement: old ${fmt(percentile(times.always!, 50) - bare, 2)}, new ${fmt(percentile(times.company!, 50) - bare, 2)}`,
      );
    }
    if (httpRequests > 0) await httpSequential(newest(setups), made);
  } finally {
    for (const s of setups) {
      await s.db.close();
      rmSync(s.spoolDir, { recursive: true, force: true });
      if (!args.keep) await dropDatabase(s.dbName);
    }
  }
}

runBenchMain('record-cost', main);
