import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../src/decisions/types.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type AuditTestApp, buildAuditApp } from './queries.support.ts';

const caller: Caller = { sub: 'writer', iss: null, clientId: null, scopes: [] };
let database: TestDatabase;
let audit: AuditTestApp;

const decide = (n: number, tag: string) =>
  audit.decisions.decideMany(
    Array.from({ length: n }, (_, i) => ({
      surface: 'native' as const,
      entrypoint: 'verdict/decision',
      input: {
        subject: { type: 'agent', id: `${tag}-${i}` },
        action: { name: i % 2 ? 'read' : 'write' },
        resource: { type: 'doc', id: 'd' },
      },
      caller,
      traceId: null,
    })),
  );

beforeAll(async () => {
  database = await createTestDatabase('audit_paging');
  audit = await buildAuditApp({ db: database.db, bundlePath: contractFixtureBundle() });
}, 60_000);

afterAll(async () => {
  await audit?.close();
  await database?.drop();
});

describe('keyset pagination while decisions keep arriving', () => {
  /*
   * What is guaranteed, oldest-first by (decided_at, id):
   * - no record is returned twice, and the order is strictly increasing: each page starts strictly
   *   after the previous page's last key, whatever is inserted meanwhile;
   * - every record committed before the walk started is returned: its key is fixed, and the walk
   *   visits every key range from the start up to the end;
   * - records committed during the walk are returned when their key is after the cursor at the time
   *   they become visible (the normal case: they are newer). A record committed late with an older
   *   time (a slow group commit, a replayed spool) can fall behind the cursor: walks that must see
   *   everything re-read a closed window later (`to` in the past), where nothing new can appear
   *   short of a spool replay.
   */
  it('returns every record committed before the walk exactly once, in order, and never repeats', async () => {
    const before = await decide(300, 'before');
    const beforeIds = before.map((d) => d.id);

    let writing = true;
    const during: string[] = [];
    const writer = (async () => {
      while (writing) {
        const made = await decide(7, 'during');
        during.push(...made.map((d) => d.id));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();

    const seen: { id: string; decided_at: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    for (;;) {
      const url = `/v1/decisions?limit=9${cursor ? `&cursor=${cursor}` : ''}`;
      const response = await audit.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      seen.push(...body.items);
      pages += 1;
      // Make sure decisions really arrive mid-walk, however busy the machine is.
      while (pages === 10 && during.length < 14) await new Promise((resolve) => setTimeout(resolve, 5));
      // Stop writing part-way through so that the walk can reach the end, and let the write in
      // flight commit first: its record must then be found by the rest of the walk.
      if (pages === 25) {
        writing = false;
        await writer;
      }
      if (!body.has_more) break;
      cursor = body.next_cursor;
    }
    writing = false;
    await writer;

    const ids = seen.map((item) => item.id);
    expect(during.length).toBeGreaterThanOrEqual(14);
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1]!, seen[i]!];
      expect(a.decided_at < b.decided_at || (a.decided_at === b.decided_at && a.id < b.id)).toBe(true);
    }
    expect(ids.slice(0, beforeIds.length)).toEqual(beforeIds);
    // Decisions made during the walk all got newer times than the cursor, so none was lost either.
    expect(new Set(ids)).toEqual(new Set([...beforeIds, ...during]));
  }, 60_000);
});
