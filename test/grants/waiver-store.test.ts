import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlCatalog, grantSettings } from '../../src/grants/control-catalog.ts';
import type { Grants } from '../../src/grants/create-grants.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type As, overBudget, type Replica, startReplicas, within } from './replicas.support.ts';

// Integration: a waiver changed through the store alone — no HTTP route, as the console or a CLI
// would — reaches this replica's cache before the call returns and the other replica over the bus.
// Polling is slowed to a minute, so what the other replica sees within a second came as a notice.

const agentRuntime: As = { sub: 'svc-agent-runtime', scopes: ['decisions:evaluate'] };

describe('a waiver changed through the store alone (real Postgres, real Redis)', () => {
  let tdb: TestDatabase;
  let a: Replica;
  let b: Replica;
  let close: () => Promise<void>;

  beforeAll(async () => {
    tdb = await createTestDatabase('grants_waiver_store');
    const started = await startReplicas(tdb.url, 2, { VERDICT_GRANTS_POLL_MS: '60000' });
    [a, b] = started.replicas as [Replica, Replica];
    close = started.close;
  });
  afterAll(async () => {
    await close?.();
    await tdb?.drop();
  });

  const grantsOf = (replica: Replica): Grants => {
    const grants = replica.verdict.grants;
    if (!grants) throw new Error('the replica has no grants (no database?)');
    return grants;
  };
  const waived = (replica: Replica, id: string) =>
    grantsOf(replica)
      .cache.relevant('code-agent', null)
      .some((waiver) => waiver.id === id);
  const decide = async (replica: Replica) => {
    const res = await replica.call('POST', '/v1/decisions', agentRuntime, overBudget);
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  it('is in the deciding replica at once and in the other one over the bus, approved and revoked', async () => {
    expect((await decide(b)).allow).toBe(false);
    const store = grantsOf(a).waivers;
    const engine = a.verdict.policy.current();
    const requested = await store.request(
      {
        control: 'TOOL-006',
        subject_id: 'code-agent',
        reason: 'long migration run',
        expires_at: new Date(Date.now() + 5 * 86_400_000).toISOString(),
      },
      { sub: 'dev-lead@example.com', admin: false },
      { catalog: controlCatalog(engine), settings: grantSettings(engine) },
    );
    expect(requested.state).toBe('pending');

    const approved = await store.approve(requested.id, { sub: 'ciso@example.com', admin: false }, null);
    expect(approved.state).toBe('active');
    // No wait: the store reloaded this replica's cache before approve() returned.
    expect(waived(a, approved.id)).toBe(true);
    const seenWithin = await within(1_000, async () => waived(b, approved.id));
    expect(seenWithin).toBeLessThan(1_000);
    expect(await decide(b)).toMatchObject({ allow: true, exceptions: [approved.id] });

    const revoked = await store.revoke(approved.id, { sub: 'ciso@example.com', admin: false }, 'done');
    expect(revoked.state).toBe('revoked');
    expect(waived(a, approved.id)).toBe(false);
    await within(1_000, async () => !waived(b, approved.id));
    expect((await decide(b)).allow).toBe(false);
  }, 30_000);
});
