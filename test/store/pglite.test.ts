import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensurePartitions } from '../../src/audit/partitions.ts';
import { verifyChains } from '../../src/audit/verify.ts';
import { migrate } from '../../src/store/migrate.ts';
import { PGliteDatabase } from '../../src/store/pglite.ts';
import { decisionRecords, testWriter } from '../audit/records.support.ts';

let db: PGliteDatabase;
beforeAll(async () => {
  db = await PGliteDatabase.open(undefined);
});
afterAll(async () => db?.close());

describe('embedded PGlite', () => {
  it('runs the same migrations, partitions, writer and verification as Postgres', async () => {
    expect(await migrate(db)).toContain('0001_decision_log.sql');
    expect(await migrate(db)).toEqual([]);
    expect((await ensurePartitions(db)).length).toBe(3);
    const writer = testWriter(db);
    await writer.start();
    await Promise.all([writer.record(decisionRecords(20)), writer.record(decisionRecords(5, 20))]);
    await writer.close();
    expect(await verifyChains(db, { pageSize: 7 })).toEqual({ ok: true, checked: 25, writers: 1 });
    await db.query({ text: `UPDATE decision_log SET caller_sub = 'someone-else' WHERE seq = 9` });
    expect((await verifyChains(db)).firstBroken).toMatchObject({ seq: 9, reason: 'edited' });
    expect(await db.ping()).toBe(true);
  });
});
