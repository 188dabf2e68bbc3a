/**
 * The decision log across migrations 0014 and 0015 (issue 27: leaner indexes, partial ones for denies
 * and non-empty arrays; caller, result and input as json beside the old jsonb columns) on real
 * Postgres: rows written before the migrations — by the batch statement of that schema — and after
 * them verify as one log, read back the same (search, by id, impact's pages), the searches by
 * control, waiver and subject find both, the partial indexes serve those searches, and the KPI
 * rollups kept by the batch statement still equal a rebuild from the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  controlIndexSql,
  type DecisionFilter,
  impactPageSql,
  searchDecisionsSql,
} from '../../src/audit/decision-log.ts';
import { ensurePartitions } from '../../src/audit/partitions.ts';
import { DecisionLogReader } from '../../src/audit/queries.ts';
import { verifyChains } from '../../src/audit/verify.ts';
import type { DecisionRecord } from '../../src/decisions/types.ts';
import { loadMigrations, migrate } from '../../src/store/migrate.ts';
import type { Database, Sql } from '../../src/store/types.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { decisionRecord, testWriter } from './records.support.ts';

let test: TestDatabase;
const before: string[] = [];
const after: string[] = [];
const written = new Map<string, DecisionRecord>();

/** Six records: odd ones violate TOOL-002 (records.support.ts), every third applies waiver exc_1. */
function records(start: number) {
  return Array.from({ length: 6 }, (_, k) => {
    const n = start + k;
    return decisionRecord(n, {
      decidedAt: new Date(Date.UTC(2026, 11, 1, 12, 0, n)).toISOString(),
      exceptions: n % 3 === 0 ? ['exc_1'] : [],
    });
  });
}

/**
 * The database as the writer before migration 0015 saw it: its batch statement expanded the rows
 * with jsonb_populate_recordset into jsonb columns (the statement of that schema, otherwise the same).
 */
function before0015(db: Database): Database {
  const legacy = (sql: Sql): Sql =>
    sql.name?.startsWith('verdict_store_batch')
      ? {
          ...sql,
          name: 'verdict_store_batch_v3',
          text: sql.text
            .replace(
              'json_populate_recordset(NULL::decision_log, $1::json)',
              'jsonb_populate_recordset(NULL::decision_log, $1::jsonb)',
            )
            .replace("json_typeof(result) = 'null'", "result = 'null'::jsonb"),
        }
      : sql;
  return { ...db, query: (sql) => db.query(legacy(sql)) };
}

async function write(db: Database, start: number, ids: string[]): Promise<void> {
  const writer = testWriter(db);
  await writer.start();
  const batch = records(start);
  await Promise.all(batch.map((record) => writer.record([record])));
  await writer.close();
  ids.push(...batch.map((record) => record.id));
  for (const record of batch) written.set(record.id, record);
}

async function searchIds(filter: DecisionFilter): Promise<string[]> {
  const page = await new DecisionLogReader(test.db, { controlWalkRows: 1 }).search(filter, {
    limit: 100,
    after: null,
  });
  return page.items.map((item) => item.id);
}

beforeAll(async () => {
  test = await createTestDatabase('record_storage', { migrate: false });
  await migrate(
    test.db,
    loadMigrations().filter((m) => m.name < '0014'),
  );
  await ensurePartitions(test.db, new Date(Date.UTC(2026, 11, 1)));
  await write(before0015(test.db), 0, before);
  expect(await migrate(test.db)).toEqual(
    expect.arrayContaining(['0014_decision_log_leaner_indexes.sql', '0015_decision_log_json_columns.sql']),
  );
  await write(test.db, 6, after);
});
afterAll(async () => test?.drop());

describe('the decision log across migrations 0014 and 0015', () => {
  it('keeps the old rows in the jsonb columns and writes the new ones as json, lz4-compressed', async () => {
    const { rows } = await test.db.query<{ id: string; old: boolean; fresh: boolean }>({
      text: `SELECT id::text AS id, (input_jsonb IS NOT NULL AND result_jsonb IS NOT NULL AND caller_jsonb IS NOT NULL
                                     AND input IS NULL AND result IS NULL AND caller IS NULL) AS old,
                    (input IS NOT NULL AND result IS NOT NULL AND caller IS NOT NULL
                     AND input_jsonb IS NULL AND result_jsonb IS NULL AND caller_jsonb IS NULL) AS fresh
               FROM decision_log ORDER BY decided_at, id`,
    });
    expect(rows.filter((row) => row.old).map((row) => row.id)).toEqual(before);
    expect(rows.filter((row) => row.fresh).map((row) => row.id)).toEqual(after);
    const { rows: columns } = await test.db.query<{
      relname: string;
      attname: string;
      attcompression: string;
    }>({
      text: `SELECT c.relname, a.attname, a.attcompression::text AS attcompression
               FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
              WHERE c.relname LIKE 'decision_log%' AND c.relkind IN ('r', 'p')
                AND a.attname IN ('caller', 'result', 'input') ORDER BY 1, 2`,
    });
    // The parent, the default partition and December's: three columns each, all lz4.
    expect(columns.length).toBeGreaterThanOrEqual(9);
    expect(columns.every((column) => column.attcompression === 'l')).toBe(true);
  });

  it('refuses a row without a caller in either column', async () => {
    await expect(
      test.db.query({
        text: `UPDATE decision_log SET caller = NULL, caller_jsonb = NULL WHERE id = $1`,
        values: [after[0]],
      }),
    ).rejects.toThrow(/decision_log_caller_present/);
  });

  it('reads a record the same whichever column holds it', async () => {
    const reader = new DecisionLogReader(test.db);
    for (const id of [...before, ...after]) {
      const stored = await reader.get(id);
      const record = written.get(id)!;
      expect(stored).toMatchObject({ id, input: record.input, result: record.result, caller: record.caller });
    }
    const page = await test.db.query<{ count: number; records: string }>(
      impactPageSql({}, null, 100, 1 << 20),
    );
    const inputs = JSON.parse(page.rows[0]!.records) as {
      id: string;
      input: unknown;
      input_text: string | null;
    }[];
    expect(inputs.map((row) => row.id)).toEqual([...before, ...after]);
    // Impact analysis gets the old rows' input as a value, the new rows' as the stored text.
    for (const row of inputs.slice(0, before.length)) {
      expect(row.input_text).toBeNull();
      expect(row.input).toEqual(written.get(row.id)!.input);
    }
    for (const row of inputs.slice(before.length)) {
      expect(row.input).toBeNull();
      expect(JSON.parse(row.input_text!)).toEqual(written.get(row.id)!.input);
    }
  });

  it('verifies rows written before and after it as one log', async () => {
    expect(await verifyChains(test.db)).toEqual({ ok: true, checked: 12, writers: 2 });
  });

  it('finds rows from both sides by control, waiver, subject and resource', async () => {
    const all = [...before, ...after];
    const pick = (keep: (n: number) => boolean) => all.filter((_, n) => keep(n));
    expect(await searchIds({ control: 'TOOL-002' })).toEqual(pick((n) => n % 2 === 1));
    expect(await searchIds({ exception: 'exc_1' })).toEqual(pick((n) => n % 3 === 0));
    expect(await searchIds({ subjectType: 'agent', subjectId: 'agent-3' })).toEqual([before[3]]);
    expect(await searchIds({ subjectType: 'agent', subjectId: 'agent-9' })).toEqual([after[3]]);
    expect(await searchIds({ resourceType: 'tool', resourceId: 'send_email' })).toEqual(all);
    expect(await searchIds({ allow: false })).toEqual(pick((n) => n % 2 === 1));
    expect(await searchIds({ allow: true, subjectId: 'agent-8' })).toEqual([after[2]]);
  });

  it('serves the deny, control and waiver searches from the partial indexes', async () => {
    const plans: string[] = [];
    for (const sql of [
      controlIndexSql({ control: 'TOOL-002' }, null, 10),
      searchDecisionsSql({ exception: 'exc_1' }, null, 10),
      searchDecisionsSql({ allow: false }, null, 10),
    ]) {
      const plan = await test.db.transaction(async (tx) => {
        // The table is tiny: without this the planner reads it whole, index or not.
        await tx.query({ text: 'SET LOCAL enable_seqscan = off' });
        const { rows } = await tx.query<{ 'QUERY PLAN': string }>({
          text: `EXPLAIN ${sql.text}`,
          values: sql.values,
        });
        return rows.map((row) => row['QUERY PLAN']).join('\n');
      });
      plans.push(plan);
    }
    const { rows } = await test.db.query<{ indexname: string; indexdef: string }>({
      text: `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'decision_log_p202612'
               AND indexdef LIKE '%USING gin%'`,
    });
    // Both GIN indexes of the partition are the partial ones, and each search scans one of them.
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row.indexdef).toMatch(/WHERE \(\w+ <> '\{\}'::text\[\]\)/);
    const [control, waiver, denies] = plans as [string, string, string];
    const controlIndex = rows.find((row) => row.indexdef.includes('(violated_controls)'))!.indexname;
    const waiverIndex = rows.find((row) => row.indexdef.includes('(exceptions)'))!.indexname;
    expect(control).toContain(`Bitmap Index Scan on ${controlIndex}`);
    expect(waiver).toContain(`Bitmap Index Scan on ${waiverIndex}`);
    const { rows: partial } = await test.db.query<{ indexname: string }>({
      text: `SELECT indexname FROM pg_indexes WHERE tablename = 'decision_log_p202612'
               AND indexdef LIKE '%(decided_at, id) WHERE (NOT allow)'`,
    });
    expect(partial).toHaveLength(1);
    expect(denies).toContain(`Index Scan using ${partial[0]!.indexname} `);
  });

  it('drops the indexes no search needs', async () => {
    const { rows } = await test.db.query<{ indexdef: string }>({
      text: `SELECT indexdef FROM pg_indexes WHERE tablename = 'decision_log'`,
    });
    const defs = rows.map((row) => row.indexdef);
    expect(defs.some((d) => d.includes('(subject_type, subject_id'))).toBe(false);
    expect(defs.some((d) => d.includes('(resource_type, resource_id'))).toBe(false);
    expect(defs.some((d) => d.includes('(allow, decided_at'))).toBe(false);
    expect(defs.some((d) => d.includes('(subject_id, decided_at, id)'))).toBe(true);
    expect(defs.some((d) => d.includes('(resource_id, decided_at, id)'))).toBe(true);
  });

  it('keeps the KPI rollups equal to a rebuild from the log', async () => {
    const rollups = async () =>
      (
        await test.db.query({
          text: `SELECT * FROM decision_rollup_hourly ORDER BY bucket, entrypoint, action_name, control, writer_id`,
        })
      ).rows;
    const incremental = await rollups();
    expect(incremental.length).toBeGreaterThan(0);
    await test.db.query({ text: 'SELECT verdict_rebuild_kpi_rollups()' });
    expect(await rollups()).toEqual(incremental);
  });
});
