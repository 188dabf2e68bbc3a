/**
 * Seeds a dedicated database (`verdict_bench` by default) with a large, realistic decision log for
 * query benchmarks (bench/query-bench.ts). Rows are generated server-side with
 * `INSERT … SELECT … FROM generate_series`, so nothing crosses the wire but the statement.
 *
 *   node bench/seed-decisions.ts --rows 10000000 [--months 12] [--url postgres://…/verdict_bench]
 *   node bench/seed-decisions.ts --count 10000000 --database-url postgres://…/verdict_bench   (the same)
 *   node bench/seed-decisions.ts --rows 10000000 --valid-chains   (rows whose hash chains verify)
 *
 * (`--rows` is the size: the KPI target is stated for 10 million rows; smaller runs take minutes.)
 * The KPI rollups (decision_rollup_hourly, release_gates) are rebuilt from the log after the load.
 *
 * The database is dropped and recreated; every migration in migrations/ is applied in order. The
 * secondary indexes on decision_log are dropped for the load and rebuilt afterwards from their own
 * definitions, which is several times faster than maintaining them row by row.
 *
 * Distributions (per row, independent): 20 callers (skewed: a few callers make most decisions),
 * subjects 60% agents (500 ids) / 25% users (5,000 ids) / 15% pipelines (50 ids), actions 70%
 * tool.call / 20% data.read / 10% release.deploy with matching resources, 85% allow; a denial
 * violates one control out of 24 (skewed: TOOL-001 is common, the REL-/DATA- ones rare); 4 writers;
 * 20 bundle revisions in time order; times spread evenly over the last `months` months, monthly
 * partitions included.
 *
 * With `--valid-chains` the rows are made in this process instead, with the same distributions,
 * chained by the service's own `Chain` (src/audit/chain.ts: one chain per writer, prev_hash and
 * hash as the audit writer computes them) and streamed in with one COPY FROM STDIN (CSV), the
 * writers' chain_heads set at the end: `verdict audit:verify` and the console's chain status then
 * pass on the seeded log. Slower than the server-side generator (SHA-256 and canonical JSON per
 * row in one Node process); a progress line every million rows says how fast.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { v7 as uuidv7 } from 'uuid';
import { Chain, DECISION_COLUMNS, type DecisionRow } from '../src/audit/chain.ts';
import type { DecisionRecord } from '../src/decisions/types.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    rows: { type: 'string' },
    count: { type: 'string' },
    months: { type: 'string', default: '12' },
    url: { type: 'string' },
    'database-url': { type: 'string' },
    chunk: { type: 'string', default: '250000' },
    'valid-chains': { type: 'boolean', default: false },
  },
});
const validChains = args['valid-chains'] === true;
const rows = Number(args.count ?? args.rows ?? '1000000');
const url = args['database-url'] ?? args.url ?? 'postgres://postgres@127.0.0.1:5432/verdict_bench';
const months = Number(args.months);
const chunk = Number(args.chunk);
if (!Number.isInteger(rows) || rows < 1) throw new Error('--rows must be a positive integer');
if (!Number.isInteger(months) || months < 1 || months > 120) throw new Error('--months must be 1..120');

const target = new URL(url);
const dbName = target.pathname.slice(1);
if (!/^[a-z_][a-z0-9_]*$/.test(dbName)) throw new Error(`unsafe database name ${dbName}`);
const admin = new URL(url);
admin.pathname = '/postgres';

function migrationScripts(): string[] {
  const dir = path.join(root, 'migrations');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => readFileSync(path.join(dir, f), 'utf8'));
}

async function recreateDatabase(): Promise<void> {
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await client.query(`CREATE DATABASE ${dbName}`);
  await client.end();
}

// The generator: one statement per chunk of ids [$1, $2]; $3 = total rows, $4 = start of the time
// range, $5 = its length in seconds. Random draws are taken once per row in the inner select.
const INSERT = `
INSERT INTO decision_log (
  id, decided_at, writer_id, seq, prev_hash, hash, surface, caller_sub, caller, entrypoint,
  bundle_revision, bundle_digest, subject_type, subject_id, action_name, resource_type, resource_id,
  allow, violated_controls, result, input, input_sha256, exceptions, eval_micros, trace_id)
SELECT
  (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3) || '8' ||
    substr(h, 4, 15))::uuid,
  t, 'bench-' || (i % 4), i / 4, h || h, md5(h) || h, 'native', caller_sub,
  jsonb_build_object('sub', caller_sub, 'iss', 'https://idp.example', 'scopes', jsonb_build_array('decisions:evaluate')),
  CASE WHEN action_name = 'release.deploy' THEN 'verdict/release' ELSE 'verdict/decision' END,
  'rev-' || lpad(((i * 20) / $3::bigint)::text, 2, '0'), 'sha256:' || md5('rev' || ((i * 20) / $3::bigint)) || md5('x'),
  subject_type, subject_id, action_name, resource_type, resource_id,
  allow, CASE WHEN allow THEN '{}'::text[] ELSE ARRAY[control] END,
  jsonb_build_object('allow', allow,
    'violations', CASE WHEN allow THEN '[]'::jsonb ELSE jsonb_build_array(jsonb_build_object(
      'control', control, 'message', 'control ' || control || ' failed', 'severity', 'high')) END,
    'obligations', '[]'::jsonb, 'exceptions', '[]'::jsonb),
  jsonb_build_object(
    'subject', jsonb_build_object('type', subject_type, 'id', subject_id),
    'action', jsonb_build_object('name', action_name),
    'resource', jsonb_build_object('type', resource_type, 'id', resource_id),
    'context', jsonb_build_object('environment', 'prod', 'session', jsonb_build_object('untrusted_content', r6 < 0.3)),
    'caller', jsonb_build_object('sub', caller_sub), 'now', t),
  h || h, '{}'::text[], (50 + r6 * 400)::int, substr(h, 1, 16)
FROM (
  SELECT i, t, h, r6,
    'svc-' || lpad(floor(power(r1, 3) * 20)::int::text, 2, '0') AS caller_sub,
    CASE WHEN r2 < 0.60 THEN 'agent' WHEN r2 < 0.85 THEN 'user' ELSE 'pipeline' END AS subject_type,
    CASE WHEN r2 < 0.60 THEN 'agent-' || floor(r3 * 500)::int
         WHEN r2 < 0.85 THEN 'user-' || floor(r3 * 5000)::int
         ELSE 'pipeline-' || floor(r3 * 50)::int END AS subject_id,
    CASE WHEN r4 < 0.70 THEN 'tool.call' WHEN r4 < 0.90 THEN 'data.read' ELSE 'release.deploy' END AS action_name,
    CASE WHEN r4 < 0.70 THEN 'tool' WHEN r4 < 0.90 THEN 'dataset' ELSE 'model' END AS resource_type,
    CASE WHEN r4 < 0.70 THEN 'tool-' || floor(r3 * r5 * 200)::int
         WHEN r4 < 0.90 THEN 'dataset-' || floor(r5 * 1000)::int
         ELSE 'model-' || floor(r5 * 100)::int END AS resource_id,
    r5 < 0.85 AS allow,
    (ARRAY['TOOL-001','TOOL-001','TOOL-001','TOOL-001','TOOL-002','TOOL-002','TOOL-003','TOOL-004',
           'TOOL-005','TOOL-006','TOOL-007','DATA-001','DATA-002','DATA-003','DATA-004','REL-001',
           'REL-002','REL-003','REL-004','REL-005','REL-006','REL-007','REL-008','EXC-001'])
      [1 + floor(power(r6, 2) * 24)::int] AS control
  FROM (
    SELECT i,
      $4::timestamptz + make_interval(secs => (i::float8 / $3) * $5 + random() * 0.5) AS t,
      md5(i::text || random()::text) AS h,
      random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5, random() AS r6
    FROM generate_series($1::bigint, $2::bigint) AS i
  ) draws
) s`;

const CONTROLS = [
  'TOOL-001',
  'TOOL-001',
  'TOOL-001',
  'TOOL-001',
  'TOOL-002',
  'TOOL-002',
  'TOOL-003',
  'TOOL-004',
  'TOOL-005',
  'TOOL-006',
  'TOOL-007',
  'DATA-001',
  'DATA-002',
  'DATA-003',
  'DATA-004',
  'REL-001',
  'REL-002',
  'REL-003',
  'REL-004',
  'REL-005',
  'REL-006',
  'REL-007',
  'REL-008',
  'EXC-001',
];
const WRITERS = 4;

/** mulberry32: a small seeded generator, so that two seeds of the same size hold the same rows. */
function random32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Row i of `total` as a DecisionRecord, drawn as the SQL generator draws it. */
function recordAt(
  i: number,
  total: number,
  startMs: number,
  spanMs: number,
  random: () => number,
): DecisionRecord {
  const [r1, r2, r3, r4, r5, r6] = [random(), random(), random(), random(), random(), random()];
  const at = Math.floor(startMs + (i / total) * spanMs);
  const callerSub = `svc-${String(Math.floor(r1 ** 3 * 20)).padStart(2, '0')}`;
  const subjectType = r2 < 0.6 ? 'agent' : r2 < 0.85 ? 'user' : 'pipeline';
  const subjectId =
    r2 < 0.6
      ? `agent-${Math.floor(r3 * 500)}`
      : r2 < 0.85
        ? `user-${Math.floor(r3 * 5000)}`
        : `pipeline-${Math.floor(r3 * 50)}`;
  const actionName = r4 < 0.7 ? 'tool.call' : r4 < 0.9 ? 'data.read' : 'release.deploy';
  const resourceType = r4 < 0.7 ? 'tool' : r4 < 0.9 ? 'dataset' : 'model';
  const resourceId =
    r4 < 0.7
      ? `tool-${Math.floor(r3 * r5 * 200)}`
      : r4 < 0.9
        ? `dataset-${Math.floor(r5 * 1000)}`
        : `model-${Math.floor(r5 * 100)}`;
  const allow = r5 < 0.85;
  const control = CONTROLS[Math.floor(r6 ** 2 * 24)] as string;
  const revision = Math.floor((i * 20) / total);
  const decidedAt = new Date(at).toISOString();
  return {
    id: uuidv7({ msecs: at }),
    decidedAt,
    surface: 'native',
    caller: { sub: callerSub, iss: 'https://idp.example', clientId: null, scopes: ['decisions:evaluate'] },
    entrypoint: actionName === 'release.deploy' ? 'verdict/release' : 'verdict/decision',
    bundle: {
      revision: `rev-${String(revision).padStart(2, '0')}`,
      digest: `sha256:${String(revision).padStart(64, '0')}`,
    },
    subjectType,
    subjectId,
    actionName,
    resourceType,
    resourceId,
    allow,
    result: {
      allow,
      violations: allow ? [] : [{ control, message: `control ${control} failed`, severity: 'high' }],
      obligations: [],
      exceptions: [],
    },
    input: {
      subject: { type: subjectType, id: subjectId },
      action: { name: actionName },
      resource: { type: resourceType, id: resourceId },
      context: { environment: 'prod', session: { untrusted_content: r6 < 0.3 } },
      caller: { sub: callerSub },
      now: decidedAt,
    },
    inputSha256: (i.toString(16) + r1.toString(16).slice(2)).padEnd(64, '0').slice(0, 64),
    exceptions: [],
    shadow: null,
    evalMicros: Math.floor(50 + r6 * 400),
    traceId: null,
    error: null,
  };
}

/** A CSV field for COPY (text arrays as Postgres array literals, objects as JSON). */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let text: string;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string'))
    text = `{${v.map((x) => `"${x.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
  else if (typeof v === 'object') text = JSON.stringify(v);
  else text = String(v);
  return `"${text.replaceAll('"', '""')}"`;
}

/**
 * Makes `total` rows in time order, row i on writer i mod 4, chains them with the service's Chain,
 * and streams them into decision_log with one COPY; then sets chain_heads. Progress every million.
 */
async function seedValidChains(
  client: pg.Client,
  total: number,
  startMs: number,
  spanMs: number,
  loadStarted: number,
): Promise<void> {
  const chains = Array.from({ length: WRITERS }, (_, w) => new Chain(`bench-${w}`));
  const random = random32(20_261_207);
  const BATCH = 4_000;
  async function* csv(): AsyncGenerator<string> {
    let nextReport = 1_000_000;
    for (let lo = 0; lo < total; lo += BATCH) {
      const hi = Math.min(total, lo + BATCH);
      const perWriter: DecisionRecord[][] = chains.map(() => []);
      for (let i = lo; i < hi; i++) perWriter[i % WRITERS]?.push(recordAt(i, total, startMs, spanMs, random));
      const rows: DecisionRow[] = perWriter.flatMap((records, w) => (chains[w] as Chain).append(records));
      yield `${rows.map((row) => DECISION_COLUMNS.map((c) => csvField(row[c])).join(',')).join('\n')}\n`;
      if (hi >= nextReport || hi === total) {
        const elapsed = (Date.now() - loadStarted) / 1000;
        process.stdout.write(
          `seed: ${hi.toLocaleString('en')} rows chained (${Math.round(hi / elapsed).toLocaleString('en')}/s, ${elapsed.toFixed(0)} s)\n`,
        );
        while (nextReport <= hi) nextReport += 1_000_000;
      }
    }
  }
  await pipeline(
    Readable.from(csv()),
    client.query(copyFrom(`COPY decision_log (${DECISION_COLUMNS.join(',')}) FROM STDIN WITH (FORMAT csv)`)),
  );
  for (const chain of chains) {
    if (chain.last.seq === 0) continue;
    await client.query('INSERT INTO chain_heads (writer_id, seq, hash) VALUES ($1, $2, $3)', [
      chain.writerId,
      chain.last.seq,
      chain.last.hash,
    ]);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  await recreateDatabase();
  const client = new pg.Client({ connectionString: target.toString() });
  await client.connect();
  await client.query(`SET maintenance_work_mem = '1GB'`);
  await client.query('SET synchronous_commit = off');
  for (const script of migrationScripts()) await client.query(script);

  // Monthly partitions covering the seeded range (plus the current month), as the service keeps them.
  const { rows: bounds } = await client.query<{ start: string; seconds: number }>(
    `SELECT date_trunc('month', now() - make_interval(months => $1::int)) AS start,
            extract(epoch FROM now() - date_trunc('month', now() - make_interval(months => $1::int)))::float8 AS seconds`,
    [months],
  );
  const start = bounds[0]!.start;
  const seconds = bounds[0]!.seconds - 60;
  for (let m = 0; m <= months + 1; m++) {
    const { rows: names } = await client.query<{ name: string; lo: string; hi: string }>(
      `SELECT 'decision_log_p' || to_char(lo, 'YYYYMM') AS name, lo::text, (lo + interval '1 month')::text AS hi
         FROM (SELECT date_trunc('month', $1::timestamptz + make_interval(months => $2::int)) AS lo) x`,
      [start, m],
    );
    const { name, lo, hi } = names[0]!;
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF decision_log FOR VALUES FROM ('${lo}') TO ('${hi}')`,
    );
  }

  const { rows: indexes } = await client.query<{ name: string; definition: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE t.relname = 'decision_log' AND NOT x.indisprimary`,
  );
  for (const { name } of indexes) await client.query(`DROP INDEX ${name}`);
  process.stdout.write(
    `seed: ${rows} rows over ${months} months into ${dbName} (indexes dropped for the load${validChains ? '; valid hash chains, COPY' : ''})\n`,
  );

  let nextReport = validChains ? Number.POSITIVE_INFINITY : 1_000_000;
  if (validChains) await seedValidChains(client, rows, new Date(start).getTime(), seconds * 1000, Date.now());
  for (let lo = 0; !validChains && lo < rows; lo += chunk) {
    const hi = Math.min(rows, lo + chunk) - 1;
    await client.query(INSERT, [lo, hi, rows, start, seconds]);
    const done = hi + 1;
    if (done >= nextReport || done === rows) {
      const elapsed = (Date.now() - started) / 1000;
      process.stdout.write(
        `seed: ${done.toLocaleString('en')} rows (${Math.round(done / elapsed).toLocaleString('en')}/s, ${elapsed.toFixed(0)} s)\n`,
      );
      while (nextReport <= done) nextReport += 1_000_000;
    }
  }
  process.stdout.write(`seed: rebuilding ${indexes.length} indexes\n`);
  const indexStarted = Date.now();
  for (const { definition } of indexes) await client.query(definition.replace(/ ON ONLY /, ' ON '));
  process.stdout.write(
    `seed: indexes built in ${((Date.now() - indexStarted) / 1000).toFixed(0)} s; analyzing\n`,
  );
  // The KPI rollups are maintained by the writer's batch statement; a bulk load bypasses it, so they
  // are rebuilt from the log by the migration's function (the same definitions).
  const rollupStarted = Date.now();
  await client.query('SELECT verdict_rebuild_kpi_rollups()');
  process.stdout.write(
    `seed: KPI rollups rebuilt in ${((Date.now() - rollupStarted) / 1000).toFixed(0)} s\n`,
  );
  await client.query('ANALYZE decision_log');
  await client.query('ANALYZE decision_rollup_hourly');
  await client.query('ANALYZE release_gates');
  const { rows: size } = await client.query<{ size: string }>(
    'SELECT pg_size_pretty(pg_database_size(current_database())) AS size',
  );
  process.stdout.write(
    `seed: done in ${((Date.now() - started) / 1000).toFixed(0)} s; database size ${size[0]!.size}\n`,
  );
  await client.end();
}

main().catch((err) => {
  process.stderr.write(`seed: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
