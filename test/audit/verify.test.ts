import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chainHash, rowFromDatabase } from '../../src/audit/chain.ts';
import { verifyChains } from '../../src/audit/verify.ts';
import type { AuditWriter } from '../../src/audit/writer.ts';
import { runAuditVerify } from '../support/checkpoints.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { decisionRecord, decisionRecords, testWriter } from './records.support.ts';

let test: TestDatabase;
beforeAll(async () => {
  test = await createTestDatabase('verify');
});
afterAll(async () => test?.drop());

let writer: AuditWriter;
/** Writes 12 records in three batches through a real writer; returns its rows by seq. */
async function chainOf12(): Promise<Map<number, Record<string, unknown>>> {
  writer = testWriter(test.db);
  await writer.record(decisionRecords(5));
  await writer.record(decisionRecords(4, 5));
  await writer.record(decisionRecords(3, 9));
  await writer.close();
  const { rows } = await test.db.query<Record<string, unknown>>({
    text: 'SELECT * FROM decision_log WHERE writer_id = $1 ORDER BY seq',
    values: [writer.writerId],
  });
  return new Map(rows.map((row) => [Number(row.seq), row]));
}

beforeEach(async () => {
  await test.db.exec('DELETE FROM decision_log; DELETE FROM chain_heads; DELETE FROM decision_log_retention');
});

describe('verifyChains', () => {
  it('accepts intact chains of several writers, paging through them', async () => {
    await chainOf12();
    const other = testWriter(test.db);
    await other.record(decisionRecords(7));
    await other.close();
    const report = await verifyChains(test.db, { pageSize: 5 });
    expect(report).toEqual({ ok: true, checked: 19, writers: 2 });
  });

  it('reports an edited row', async () => {
    const rows = await chainOf12();
    await test.db.query({
      text: 'UPDATE decision_log SET allow = NOT allow WHERE id = $1',
      values: [rows.get(6)!.id],
    });
    const report = await verifyChains(test.db);
    expect(report.ok).toBe(false);
    expect(report.firstBroken).toEqual({
      decisionId: rows.get(6)!.id,
      writerId: writer.writerId,
      seq: 6,
      reason: 'edited',
    });
    expect(report.checked).toBe(5);
  });

  it('reports every break in the window, not only the first, with a count', async () => {
    const rows = await chainOf12();
    await test.db.query({
      text: 'UPDATE decision_log SET allow = NOT allow WHERE id = ANY($1)',
      values: [[rows.get(3)!.id, rows.get(10)!.id]],
    });
    await test.db.query({ text: 'DELETE FROM decision_log WHERE id = $1', values: [rows.get(7)!.id] });
    const report = await verifyChains(test.db);
    expect(report.ok).toBe(false);
    expect(report.firstBroken).toMatchObject({ seq: 3, reason: 'edited' });
    expect(report.breaks?.map((b) => `${b.seq}:${b.reason}`)).toEqual(['3:edited', '8:deleted', '10:edited']);
    expect(report.breakCount).toBe(3);
    expect(report.checked).toBe(2);
  });

  it('npm run audit:verify prints every break and their count (exit 1)', async () => {
    const rows = await chainOf12();
    await test.db.query({
      text: 'UPDATE decision_log SET allow = NOT allow WHERE id = ANY($1)',
      values: [[rows.get(3)!.id, rows.get(10)!.id]],
    });
    const { code, stdout } = await runAuditVerify({
      DATABASE_URL: test.url,
      JWT_SECRET: 'verify-breaks-test-secret-0123456789abcdef',
      VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-verify-breaks-')),
    });
    expect(code, stdout).toBe(1);
    expect(stdout).toMatch(/BROKEN — writer \S+ at seq 3 \(decision \S+\): edited/);
    expect(stdout).toMatch(/BROKEN — writer \S+ at seq 10 \(decision \S+\): edited/);
    expect(stdout).toContain('2 breaks in the decision log; 2 rows verified before the first');
  });

  it('reports an edited field inside the stored input', async () => {
    const rows = await chainOf12();
    await test.db.query({
      text: `UPDATE decision_log SET input = jsonb_set(input::jsonb, '{context,n}', '99')::json WHERE id = $1`,
      values: [rows.get(2)!.id],
    });
    expect((await verifyChains(test.db)).firstBroken).toMatchObject({ seq: 2, reason: 'edited' });
  });

  it('reports a deleted row', async () => {
    const rows = await chainOf12();
    await test.db.query({ text: 'DELETE FROM decision_log WHERE id = $1', values: [rows.get(4)!.id] });
    expect((await verifyChains(test.db)).firstBroken).toEqual({
      decisionId: rows.get(5)!.id,
      writerId: writer.writerId,
      seq: 5,
      reason: 'deleted',
    });
  });

  it('reports an inserted row at a position already taken', async () => {
    const rows = await chainOf12();
    const forged = rowFromDatabase(rows.get(7)!);
    const fake = { ...forged, id: decisionRecord(0).id, allow: true };
    fake.hash = chainHash(fake);
    await test.db.query({
      text: `INSERT INTO decision_log SELECT * FROM json_populate_recordset(NULL::decision_log, $1::json)`,
      values: [JSON.stringify([fake])],
    });
    expect((await verifyChains(test.db)).firstBroken).toMatchObject({
      writerId: writer.writerId,
      seq: 7,
      reason: 'inserted',
    });
  });

  it('reports a well-forged row appended past the recorded chain head', async () => {
    const rows = await chainOf12();
    const last = rowFromDatabase(rows.get(12)!);
    const fake = { ...last, id: decisionRecord(0).id, seq: 13, prev_hash: last.hash };
    fake.hash = chainHash(fake);
    await test.db.query({
      text: `INSERT INTO decision_log SELECT * FROM json_populate_recordset(NULL::decision_log, $1::json)`,
      values: [JSON.stringify([fake])],
    });
    expect((await verifyChains(test.db)).firstBroken).toEqual({
      decisionId: fake.id,
      writerId: writer.writerId,
      seq: 13,
      reason: 'inserted',
    });
  });

  it('reports rows swapped between positions with their hashes recomputed', async () => {
    const rows = await chainOf12();
    const a = rowFromDatabase(rows.get(3)!);
    const b = rowFromDatabase(rows.get(4)!);
    const movedA = { ...a, seq: 4 };
    const movedB = { ...b, seq: 3 };
    movedA.hash = chainHash(movedA);
    movedB.hash = chainHash(movedB);
    for (const moved of [movedA, movedB]) {
      await test.db.query({
        text: 'UPDATE decision_log SET seq = $2, hash = $3 WHERE id = $1',
        values: [moved.id, moved.seq, moved.hash],
      });
    }
    expect((await verifyChains(test.db)).firstBroken).toEqual({
      decisionId: b.id,
      writerId: writer.writerId,
      seq: 3,
      reason: 'reordered',
    });
  });

  it('reports a truncated tail (the last rows deleted) against chain_heads', async () => {
    const rows = await chainOf12();
    await test.db.query({
      text: 'DELETE FROM decision_log WHERE writer_id = $1 AND seq > 10',
      values: [writer.writerId],
    });
    expect((await verifyChains(test.db)).firstBroken).toEqual({
      decisionId: rows.get(10)!.id,
      writerId: writer.writerId,
      seq: 10,
      reason: 'tail_truncated',
    });
  });

  it('checks a time window from its first row, ignoring what lies before it', async () => {
    const rows = await chainOf12();
    await test.db.query({
      text: 'DELETE FROM decision_log WHERE writer_id = $1 AND seq <= 3',
      values: [writer.writerId],
    });
    expect((await verifyChains(test.db)).firstBroken).toMatchObject({ seq: 4, reason: 'deleted' });
    const from = new Date(rowFromDatabase(rows.get(4)!).decided_at);
    const windowed = await verifyChains(test.db, { from });
    expect(windowed.ok).toBe(true);
    expect(windowed.checked).toBeGreaterThanOrEqual(9);
  });
});
