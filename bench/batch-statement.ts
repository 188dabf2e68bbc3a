/**
 * Where the audit batch statement's Postgres CPU goes, per batch and per row (issue 27): the
 * statement (storeBatchSql) against parts of itself, on one connection to a fresh database with
 * every migration, timed by the backend's own CPU (/proc/<pid>/schedstat, so nothing else on the
 * host is counted). Parts: a bare `SELECT 1` (the round trip), the INSERT alone, the INSERT with the
 * chain heads' upsert, and the whole statement (with the KPI rollups); beside them two levers: the
 * rollups as they were before session 12 (two scans of the inserted rows) and the INSERT straight
 * into this month's partition (no gain). Tool-call-sized rows.
 *
 *   node bench/batch-statement.ts [--sizes 1,16] [--batches 100] [--rounds 5] [--database-url postgres://…]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { Chain } from '../src/audit/chain.ts';
import { storeBatchSql } from '../src/audit/decision-log.ts';
import { ensurePartitions } from '../src/audit/partitions.ts';
import type { DecisionRecord } from '../src/decisions/types.ts';
import { migrate } from '../src/store/migrate.ts';
import { PostgresDatabase } from '../src/store/postgres.ts';
import type { Sql } from '../src/store/types.ts';
import { decisionRecord } from '../test/audit/records.support.ts';
import { withDatabase } from './systems.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1,16' },
    batches: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '5' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});

/**
 * A tool-call record (test/audit/records.support.ts: every other one a deny) with an input of about
 * the bench's size (~2 KB of JSON in the row).
 */
const record = (n: number): DecisionRecord =>
  decisionRecord(n, {
    input: { subject: { type: 'agent', id: `agent-${n}` }, context: { n, note: 'x'.repeat(600) } },
  });

const PARTITION = `decision_log_p${new Date().getUTCFullYear()}${String(new Date().getUTCMonth() + 1).padStart(2, '0')}`;
const INSERT = `INSERT INTO decision_log SELECT * FROM json_populate_recordset(NULL::decision_log, $1::json)
                ON CONFLICT DO NOTHING`;
const HEADS = `INSERT INTO chain_heads (writer_id, seq, hash)
               SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[])
               ON CONFLICT (writer_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()
               WHERE chain_heads.seq < EXCLUDED.seq`;
/** The statement with the KPI rollups' `keyed` as it was before session 12: two scans of `inserted`. */
function twoScans(text: string): string {
  const from = text.indexOf('keyed AS (');
  const to = text.indexOf('UNION ALL', from);
  return `${text.slice(0, from)}keyed AS (
           SELECT date_trunc('hour', i.decided_at, 'UTC') AS bucket, i.entrypoint,
                  COALESCE(i.action_name, '') AS action_name, i.writer_id, '' AS control, i.allow,
                  COALESCE(cardinality(i.exceptions), 0) > 0 AS waived, true AS counted, false AS shadowed,
                  false AS flipped
           FROM inserted i WHERE NOT i.undefined_path AND i.shadow IS NULL
           UNION ALL
           SELECT date_trunc('hour', v.decided_at, 'UTC'), v.entrypoint, COALESCE(v.action_name, ''), v.writer_id,
                  v.control, v.allow, COALESCE(cardinality(v.exceptions), 0) > 0, true, false, false
           FROM (SELECT DISTINCT i.id, i.decided_at, i.entrypoint, i.action_name, i.writer_id, i.allow, i.exceptions,
                                 c.control
                 FROM inserted i CROSS JOIN LATERAL unnest(i.violated_controls) AS c(control)
                 WHERE NOT i.undefined_path AND i.shadow IS NULL) v
           ${text.slice(to)}`;
}

const parts: Record<string, (sql: Sql) => Sql> = {
  'SELECT 1': () => ({ name: 'bench_select_1', text: 'SELECT 1', values: [] }),
  'the INSERT alone': (sql) => ({ name: 'bench_insert', text: INSERT, values: [sql.values![0]] }),
  '+ the chain heads': (sql) => ({
    name: 'bench_insert_heads',
    text: `WITH inserted AS (${INSERT} RETURNING id), heads AS (${HEADS}) SELECT count(*) FROM inserted`,
    values: sql.values!,
  }),
  '+ the KPI rollups (the statement)': (sql) => sql,
  'the statement, rollups in two scans (before)': (sql) => ({
    name: 'bench_two_scans',
    text: twoScans(sql.text),
    values: sql.values!,
  }),
  'the INSERT into the partition': (sql) => ({
    name: 'bench_insert_partition',
    text: INSERT.replace('INSERT INTO decision_log SELECT', `INSERT INTO ${PARTITION} SELECT`),
    values: [sql.values![0]],
  }),
};

await withDatabase(values['database-url'], 'verdict_bench_batch_statement', false, async (url) => {
  const db = new PostgresDatabase({ url, max: 1 });
  await migrate(db);
  await ensurePartitions(db); // as the service does at start: this month's partition and the next two
  await db.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const cpuMicros = () => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
    const chain = new Chain(uuidv7());
    let n = 0;
    for (const size of values.sizes.split(',').map(Number)) {
      const labels = Object.keys(parts);
      const perBatch: Record<string, number[]> = {};
      // Rounds of every part in a rotated order, so that the tables' growth and the host's moods
      // fall on each part alike; the medians are reported.
      for (let round = 0; round < Number(values.rounds); round++) {
        for (let k = 0; k < labels.length; k++) {
          const label = labels[(k + round) % labels.length]!;
          const run = async (batches: number) => {
            for (let b = 0; b < batches; b++) {
              const { rows, json } = chain.appendJson(Array.from({ length: size }, () => record(n++)));
              await client.query(parts[label]!(storeBatchSql(rows, json, true)) as pg.QueryConfig);
            }
          };
          await run(10);
          const before = cpuMicros();
          const batches = Number(values.batches);
          await run(batches);
          perBatch[label] ??= [];
          perBatch[label].push((cpuMicros() - before) / batches);
        }
      }
      for (const label of labels) {
        const sorted = [...perBatch[label]!].sort((a, b) => a - b);
        const median = sorted[Math.floor(sorted.length / 2)]!;
        console.log(
          `batches of ${size}, ${label}: Postgres backend CPU ${median.toFixed(0)} µs per batch, ${(median / size).toFixed(0)} µs per row (median of ${sorted.length} rounds)`,
        );
      }
    }
  } finally {
    await client.end();
  }
});
