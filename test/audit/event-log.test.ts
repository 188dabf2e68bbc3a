/**
 * The platform event log on real Postgres: events chain per writer (also under concurrent appends
 * of one writer), commit with their transaction or not at all, list newest first, and verification
 * finds an edited, deleted or appended event.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { appendEvent, listEvents, verifyEvents } from '../../src/audit/event-log.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase('event_log');
});
afterAll(async () => database.drop());
beforeEach(async () => {
  await database.db.exec('TRUNCATE platform_events; TRUNCATE platform_event_heads');
});

async function append(writer: string, n: number) {
  for (let i = 0; i < n; i++) {
    await database.db.transaction((tx) =>
      appendEvent(tx, writer, { kind: 'policy', action: 'upload', actor: 'alice', toDigest: `sha256:${i}` }),
    );
  }
}

describe('platform event log', () => {
  it('chains events per writer and verifies them', async () => {
    await append('w1', 3);
    await append('w2', 2);
    expect(await verifyEvents(database.db)).toEqual({ ok: true, checked: 5, writers: 2 });
    const events = await listEvents(database.db, { kind: 'policy' });
    expect(events.map((e) => e.to_digest)).toEqual([
      'sha256:1',
      'sha256:0',
      'sha256:2',
      'sha256:1',
      'sha256:0',
    ]);
    const page = await listEvents(database.db, { before: events[1]!.id, limit: 2 });
    expect(page.map((e) => e.id)).toEqual([events[2]!.id, events[3]!.id]);
  });

  it('keeps one chain under concurrent appends of the same writer', async () => {
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        database.db.transaction((tx) =>
          appendEvent(tx, 'busy', { kind: 'policy', action: 'activate', actor: `u${i}` }),
        ),
      ),
    );
    const report = await verifyEvents(database.db);
    expect(report).toEqual({ ok: true, checked: 8, writers: 1 });
  });

  it('leaves nothing behind when the transaction rolls back', async () => {
    await append('w1', 1);
    await expect(
      database.db.transaction(async (tx) => {
        await appendEvent(tx, 'w1', { kind: 'policy', action: 'activate', actor: 'bob' });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    await append('w1', 1);
    expect(await verifyEvents(database.db)).toEqual({ ok: true, checked: 2, writers: 1 });
  });

  it('detects an edited event', async () => {
    await append('w1', 3);
    const [second] = await listEvents(database.db, {
      limit: 1,
      before: (await listEvents(database.db, { limit: 1 }))[0]!.id,
    });
    await database.db.query({
      text: `UPDATE platform_events SET actor = 'mallory' WHERE id = $1`,
      values: [second!.id],
    });
    const report = await verifyEvents(database.db);
    expect(report.ok).toBe(false);
    expect(report.firstBroken).toMatchObject({ eventId: second!.id, reason: 'edited', seq: 2 });
  });

  it('reports every broken event, not only the first, with a count', async () => {
    await append('w1', 5);
    await database.db.exec(`UPDATE platform_events SET actor = 'mallory' WHERE seq IN (2, 4)`);
    const report = await verifyEvents(database.db);
    expect(report.breaks?.map((b) => `${b.seq}:${b.reason}`)).toEqual(['2:edited', '4:edited']);
    expect(report.breakCount).toBe(2);
    expect(report.checked).toBe(1);
  });

  it('detects a deleted event and a truncated tail', async () => {
    await append('w1', 3);
    await database.db.exec(`DELETE FROM platform_events WHERE seq = 2`);
    expect((await verifyEvents(database.db)).firstBroken).toMatchObject({ reason: 'deleted', seq: 3 });
    await database.db.exec(`DELETE FROM platform_events WHERE seq = 3`);
    expect((await verifyEvents(database.db)).firstBroken).toMatchObject({ reason: 'tail_truncated', seq: 1 });
  });
});
