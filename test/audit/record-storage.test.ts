/**
 * The decision log across migration 0014 (issue 27: leaner indexes, partial ones for denies and
 * non-empty arrays) on real Postgres: rows written before the migration and after it verify as one log, the
 * searches by control, waiver and subject find both, the partial indexes serve those searches, and
 * the KPI rollups kept by the batch statement still equal a rebuild from the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlIndexSql, type DecisionFilter, searchDecisionsSql } from '../../src/audit/decision-log.ts';
import { ensurePartitions } from '../../src/audit/partitions.ts';
import { DecisionLogReader } from '../../src/audit/queries.ts';
import { verifyChains } from '../../src/audit/verify.ts';
import { loadMigrations, migrate } from '../../src/store/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { decisionRecord, testWriter } from './records.support.ts';

let test: TestDatabase;
const before: string[] = [];
const after: string[] = [];

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

async function write(start: number, ids: string[]): Promise<void> {
  const writer = testWriter(test.db);
  await writer.start();
  const batch = records(start);
  await Promise.all(batch.map((record) => writer.record([record])));
  await writer.close();
  ids.push(...batch.map((record) => record.id));
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
  await write(0, before);
  expect(await migrate(test.db)).toContain('0014_decision_log_leaner_indexes.sql');
  await write(6, after);
});
afterAll(async () => test?.drop());

describe('the decision log across migration 0014', () => {
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
