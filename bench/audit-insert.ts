/**
 * Which single statement writes a group-commit batch fastest on local Postgres: a multi-row
 * INSERT … VALUES, an INSERT … SELECT FROM jsonb_populate_recordset($1) (one parameter), or COPY
 * FROM STDIN (pg-copy-streams). Prints rows/s and ms per batch for batches of 1, 50 and 500.
 *
 *   bash scripts/run.sh node bench/audit-insert.ts   (TEST_DATABASE_URL to use another server)
 */

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { v7 as uuidv7 } from 'uuid';
import { Chain, DECISION_COLUMNS, type DecisionRow } from '../src/audit/chain.ts';
import { ensurePartitions } from '../src/audit/partitions.ts';
import { storeBatch } from '../src/audit/writer.ts';
import { migrate } from '../src/store/migrate.ts';
import { PostgresDatabase } from '../src/store/postgres.ts';
import { decisionRecord } from '../test/audit/records.support.ts';

const base = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const name = `verdict_bench_${process.pid}`;
const admin = new pg.Client({ connectionString: base });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(base);
url.pathname = `/${name}`;
const db = new PostgresDatabase({ url: url.toString(), max: 2 });
await migrate(db);
await ensurePartitions(db);

const chain = new Chain(uuidv7());
const rows = (n: number) => chain.append(Array.from({ length: n }, (_, i) => decisionRecord(i)));

async function values(batch: DecisionRow[]): Promise<void> {
  const params: unknown[] = [];
  const tuples = batch.map((row) => {
    const slots = DECISION_COLUMNS.map((column) => {
      const v = row[column];
      params.push(typeof v === 'object' && v !== null && !Array.isArray(v) ? JSON.stringify(v) : v);
      return `$${params.length}`;
    });
    return `(${slots.join(',')})`;
  });
  await db.query({
    text: `INSERT INTO decision_log (${DECISION_COLUMNS.join(',')}) VALUES ${tuples.join(',')} ON CONFLICT DO NOTHING`,
    values: params,
  });
}

async function populate(batch: DecisionRow[]): Promise<void> {
  await storeBatch(db, batch);
}

const copyClient = new pg.Client({ connectionString: url.toString() });
await copyClient.connect();
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s: string;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string'))
    s = `{${v.map((x) => `"${x.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
  else if (typeof v === 'object') s = JSON.stringify(v);
  else s = String(v);
  return `"${s.replaceAll('"', '""')}"`;
}
async function copy(batch: DecisionRow[]): Promise<void> {
  // COPY has no ON CONFLICT: a replayed row would fail the whole batch (a point against it).
  const text = batch.map((row) => DECISION_COLUMNS.map((c) => csvField(row[c])).join(',')).join('\n') + '\n';
  const stream = copyClient.query(
    copyFrom(`COPY decision_log (${DECISION_COLUMNS.join(',')}) FROM STDIN WITH (FORMAT csv)`),
  );
  await pipeline(Readable.from([text]), stream);
}

const methods = {
  'INSERT VALUES': values,
  'INSERT jsonb_populate_recordset (storeBatch)': populate,
  'COPY csv': copy,
};
const totalRows = 20_000;
process.stdout.write(`batch  method                              ms/batch   rows/s\n`);
for (const size of [1, 50, 500]) {
  const batches = Math.max(20, Math.floor((size === 1 ? 2_000 : totalRows) / size));
  for (const [label, write] of Object.entries(methods)) {
    for (let i = 0; i < 5; i++) await write(rows(size)); // warm-up
    const prepared = Array.from({ length: batches }, () => rows(size));
    const started = performance.now();
    for (const batch of prepared) await write(batch);
    const ms = performance.now() - started;
    process.stdout.write(
      `${String(size).padStart(5)}  ${label.padEnd(34)}  ${(ms / batches).toFixed(3).padStart(8)}  ${Math.round(
        (batches * size) / (ms / 1000),
      )
        .toString()
        .padStart(7)}\n`,
    );
  }
}
await copyClient.end();
await db.close();
await admin.query(`DROP DATABASE ${name}`);
await admin.end();
