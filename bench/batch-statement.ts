/**
 * Where the audit batch statement's Postgres CPU goes, per batch and per row (issue 27): the
 * statement (storeBatchSql) against parts of itself, on one connection to a fresh database with
 * every migration, timed by the backend's own CPU (/proc/<pid>/schedstat, so nothing else on the
 * host is counted). Parts: a bare `SELECT 1` (the round trip), the INSERT alone, the INSERT with the
 * chain heads' upsert, and the whole statement (with the KPI rollups). Tool-call-sized rows.
 *
 *   node bench/batch-statement.ts [--sizes 1,16] [--batches 200] [--database-url postgres://…]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { Chain } from '../src/audit/chain.ts';
import { storeBatchSql } from '../src/audit/decision-log.ts';
import type { DecisionRecord } from '../src/decisions/types.ts';
import { migrate } from '../src/store/migrate.ts';
import { PostgresDatabase } from '../src/store/postgres.ts';
import type { Sql } from '../src/store/types.ts';
import { withDatabase } from './systems.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,16' },
    batches: { type: 'string', default: '200' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});

/** A tool-call record of about the size the bench's (~2 KB of JSON), every third one a deny. */
const record = (n: number): DecisionRecord => ({
  id: uuidv7(),
  decidedAt: new Date().toISOString(),
  surface: 'native',
  caller: { sub: 'bench', iss: null, clientId: null, scopes: ['decisions:evaluate'] },
  entrypoint: 'verdict/decision',
  bundle: { revision: 'rev-1', digest: `sha256:${'a'.repeat(64)}` },
  subjectType: 'agent',
  subjectId: `agent-${n % 7}`,
  actionName: 'tool.call',
  resourceType: 'tool',
  resourceId: 'read_file',
  allow: n % 3 !== 0,
  result: {
    allow: n % 3 !== 0,
    violations: n % 3 === 0 ? [{ control: 'TOOL-001', message: 'not allowed', severity: 'high' }] : [],
    obligations: [],
    exceptions: [],
  },
  input: { subject: { type: 'agent', id: `agent-${n % 7}` }, context: { n, note: 'x'.repeat(600) } },
  inputSha256: 'b'.repeat(64),
  exceptions: [],
  shadow: null,
  evalMicros: 30,
  traceId: null,
  error: null,
});

const INSERT = `INSERT INTO decision_log SELECT * FROM json_populate_recordset(NULL::decision_log, $1::json)
                ON CONFLICT DO NOTHING`;
const HEADS = `INSERT INTO chain_heads (writer_id, seq, hash)
               SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[])
               ON CONFLICT (writer_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()
               WHERE chain_heads.seq < EXCLUDED.seq`;
const parts: Record<string, (sql: Sql) => Sql> = {
  'SELECT 1': () => ({ name: 'bench_select_1', text: 'SELECT 1', values: [] }),
  'the INSERT alone': (sql) => ({ name: 'bench_insert', text: INSERT, values: [sql.values![0]] }),
  '+ the chain heads': (sql) => ({
    name: 'bench_insert_heads',
    text: `WITH inserted AS (${INSERT} RETURNING id), heads AS (${HEADS}) SELECT count(*) FROM inserted`,
    values: sql.values!,
  }),
  '+ the KPI rollups (the statement)': (sql) => sql,
};

await withDatabase(values['database-url'], 'verdict_bench_batch_statement', false, async (url) => {
  const db = new PostgresDatabase({ url, max: 1 });
  await migrate(db);
  await db.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const cpuMicros = () => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
    const chain = new Chain(uuidv7());
    let n = 0;
    for (const size of values.sizes.split(',').map(Number)) {
      for (const [label, part] of Object.entries(parts)) {
        const run = async (batches: number) => {
          for (let b = 0; b < batches; b++) {
            const { rows, json } = chain.appendJson(Array.from({ length: size }, () => record(n++)));
            await client.query(part(storeBatchSql(rows, json, true)) as pg.QueryConfig);
          }
        };
        await run(20);
        const before = cpuMicros();
        const batches = Number(values.batches);
        await run(batches);
        const perBatch = (cpuMicros() - before) / batches;
        console.log(
          `batches of ${size}, ${label}: Postgres backend CPU ${perBatch.toFixed(0)} µs per batch, ${(perBatch / size).toFixed(0)} µs per row`,
        );
      }
    }
  } finally {
    await client.end();
  }
});
