import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../src/decisions/types.ts';
import { SessionStore } from '../../src/sessions/session-store.ts';
import { migrate } from '../../src/store/migrate.ts';
import { PGliteDatabase } from '../../src/store/pglite.ts';
import type { Database } from '../../src/store/types.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// The console's sessions on real Postgres and on embedded PGlite: idle and absolute limits, the
// sign-in token's expiry as a cap, revocation, one-time links; only hashes are stored.

const alice: Caller = {
  sub: 'alice@example.com',
  iss: 'https://idp.example.com',
  clientId: null,
  scopes: ['approvals:grant'],
  principalType: 'human',
};
const MINUTE = 60_000;

describe.each(['postgres', 'pglite'] as const)('console sessions on %s', (kind) => {
  let tdb: TestDatabase | undefined;
  let db: Database;
  let now = Date.parse('2026-12-01T10:00:00Z');
  const store = () =>
    new SessionStore({
      db,
      clock: () => new Date(now),
      limits: { idleMs: 30 * MINUTE, absoluteMs: 8 * 60 * MINUTE },
    });

  beforeAll(async () => {
    if (kind === 'postgres') {
      tdb = await createTestDatabase('sessions');
      db = tdb.db;
    } else {
      db = await PGliteDatabase.open(undefined);
      await migrate(db);
    }
  });
  afterAll(async () => {
    if (tdb) await tdb.drop();
    else await db?.close();
  });

  it('resumes a live session (as the same caller) and stores only the id hash', async () => {
    const sessions = store();
    const { id, session } = await sessions.open(alice, 'token');
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await sessions.resume(id)).toMatchObject({
      caller: alice,
      method: 'token',
      idHash: session.idHash,
    });
    const { rows } = await db.query<{ id_hash: string }>({
      text: 'SELECT id_hash FROM console_sessions',
      values: [],
    });
    expect(rows.map((r) => r.id_hash)).toContain(session.idHash);
    expect(JSON.stringify(rows)).not.toContain(id);
    expect(await sessions.resume(`${id}x`)).toBeNull();
  });

  it('ends after the idle limit, and activity keeps it alive until then', async () => {
    const sessions = store();
    const { id } = await sessions.open(alice, 'token');
    now += 29 * MINUTE;
    expect(await sessions.resume(id)).not.toBeNull();
    now += 29 * MINUTE;
    expect(await sessions.resume(id)).not.toBeNull();
    now += 31 * MINUTE;
    expect(await sessions.resume(id)).toBeNull();
  });

  it('ends at the absolute limit however active, and never outlives the sign-in token', async () => {
    const sessions = store();
    const { id } = await sessions.open(alice, 'token');
    for (let i = 0; i < 16; i++) {
      now += 29 * MINUTE;
      expect(await sessions.resume(id)).not.toBeNull();
    }
    now += 29 * MINUTE; // 8 h 3 min after sign-in
    expect(await sessions.resume(id)).toBeNull();

    const capped = await sessions.open(alice, 'token', now + 10 * MINUTE);
    expect(capped.session.expiresAt).toBe(new Date(now + 10 * MINUTE).toISOString());
    now += 11 * MINUTE;
    expect(await sessions.resume(capped.id)).toBeNull();
  });

  it('revocation ends a session at once; revokeAllOf ends every session of one person', async () => {
    const sessions = store();
    const a = await sessions.open(alice, 'token');
    const b = await sessions.open(alice, 'token');
    const other = await sessions.open({ ...alice, sub: 'bob@example.com' }, 'token');
    await sessions.revoke(a.id);
    expect(await sessions.resume(a.id)).toBeNull();
    expect(await sessions.resume(b.id)).not.toBeNull();
    await sessions.revokeAllOf(alice.sub, alice.iss);
    expect(await sessions.resume(b.id)).toBeNull();
    expect(await sessions.resume(other.id)).not.toBeNull();
  });

  it('a sign-in link signs in once, before it expires', async () => {
    const sessions = store();
    const code = await sessions.createLink(alice, 15 * MINUTE);
    expect(await sessions.useLink(code)).toMatchObject({ sub: alice.sub, principalType: 'human' });
    expect(await sessions.useLink(code)).toBeNull();
    const late = await sessions.createLink(alice, 15 * MINUTE);
    now += 16 * MINUTE;
    expect(await sessions.useLink(late)).toBeNull();
    await sessions.prune();
  });

  it('a pending sign-in (OIDC) is taken once, before it expires, and is never a link', async () => {
    const sessions = store();
    const item = {
      state: 's',
      codeVerifier: 'v',
      nonce: 'n',
      redirectUri: 'https://v/console/callback',
      next: '/console',
    };
    const id = await sessions.keepPending(item, 10 * MINUTE);
    // Another hash domain: a pending id used as a link's code signs nobody in.
    expect(await sessions.useLink(id)).toBeNull();
    expect(await sessions.takePending(id)).toEqual(item);
    expect(await sessions.takePending(id)).toBeNull();
    const code = await sessions.createLink(alice, 15 * MINUTE);
    expect(await sessions.takePending(code)).toBeNull();
    const late = await sessions.keepPending(item, 10 * MINUTE);
    now += 11 * MINUTE;
    expect(await sessions.takePending(late)).toBeNull();
  });
});
