import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundleFile } from '../../src/bundles/active.ts';
import type { Caller } from '../../src/decisions/types.ts';
import { contractFixtureBundle, DEFAULT_BUNDLE } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { generateEnvelopes } from '../support/envelopes.ts';
import { type AuditTestApp, buildAuditApp } from './queries.support.ts';

let database: TestDatabase;
let audit: AuditTestApp;
let ids: string[];
const caller: Caller = {
  sub: 'svc-agent-runtime',
  iss: null,
  clientId: null,
  scopes: ['decisions:evaluate'],
};

const rowCount = async () =>
  Number(
    (await database.db.query<{ n: string }>({ text: 'SELECT count(*) AS n FROM decision_log' })).rows[0]!.n,
  );

const replay = async (id: string) => {
  const response = await audit.inject({ method: 'POST', url: `/v1/decisions/${id}/replay` });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
};

beforeAll(async () => {
  database = await createTestDatabase('audit_replay');
  // The real default bundle: the policy library in policies/.
  audit = await buildAuditApp({ db: database.db, bundlePath: DEFAULT_BUNDLE });
  const envelopes = generateEnvelopes(60, 11).map(({ caller: _c, now: _n, ...envelope }) => envelope);
  const made = await audit.decisions.decideMany(
    envelopes.map((input) => ({
      surface: 'native' as const,
      entrypoint: 'verdict/decision',
      input,
      caller,
      traceId: null,
    })),
  );
  ids = made.map((d) => d.id);
}, 60_000);

afterAll(async () => {
  await audit?.close();
  await database?.drop();
});

describe('POST /v1/decisions/{id}/replay', () => {
  it('reproduces decisions made on the default bundle, on the stored and the active revision, recording nothing', async () => {
    const before = await rowCount();
    const reports = [];
    for (const id of ids) reports.push(await replay(id));
    expect(await rowCount()).toBe(before);
    const digest = audit.policy.current().ref.digest;
    const unmasked = reports.filter((r) => !r.masked);
    // Most generated envelopes carry nothing the mask removes; the masked ones are flagged.
    expect(unmasked.length).toBeGreaterThan(30);
    for (const report of unmasked) {
      expect(report.stored).toMatchObject({ available: true, digest, matches: true, error: null });
      expect(report.active).toMatchObject({ digest, matches: true });
      expect(report.stored.allow).toBe(report.recorded.allow);
    }
    // Both outcomes occur, so "matches" is not trivially about allows.
    expect(new Set(unmasked.map((r) => r.recorded.allow))).toEqual(new Set([true, false]));
  });

  it('reports a mismatch when the stored result was altered', async () => {
    const id = ids[3]!;
    await database.db.query({
      text: `UPDATE decision_log SET allow = NOT allow,
               result = jsonb_set(result::jsonb, '{allow}', to_jsonb(NOT allow), false)::json WHERE id = $1`,
      values: [id],
    });
    const report = await replay(id);
    expect(report.stored.matches).toBe(false);
    expect(report.active.matches).toBe(false);
    expect(report.stored.allow).toBe(!report.recorded.allow);
    // The same edit breaks the hash chain: verify reports it (a report, so 200).
    const verify = await audit.inject({ method: 'GET', url: '/v1/audit/verify' });
    expect(verify.statusCode).toBe(200);
    expect(verify.json()).toMatchObject({ ok: false, firstBroken: { decisionId: id, reason: 'edited' } });
  });

  it('reports a mismatch when the violations were altered', async () => {
    const denied = [];
    for (const id of ids) {
      const record = (await audit.inject({ method: 'GET', url: `/v1/decisions/${id}` })).json();
      if (!record.allow && !(await replay(id)).masked) denied.push(id);
    }
    expect(denied.length).toBeGreaterThan(0);
    await database.db.query({
      text: `UPDATE decision_log SET result = jsonb_set(result::jsonb, '{violations}', '[]'::jsonb)::json WHERE id = $1`,
      values: [denied[0]],
    });
    expect((await replay(denied[0]!)).stored.matches).toBe(false);
  });

  it('replays on the stored revision after another one is activated, and says when it is missing', async () => {
    const stored = audit.policy.current().ref;
    const other = await loadBundleFile(contractFixtureBundle());
    audit.policy.activate(other);
    const id = ids[10]!;
    const report = await replay(id);
    expect(report.stored).toMatchObject({
      digest: stored.digest,
      revision: stored.revision,
      available: true,
    });
    expect(report.active).toMatchObject({ digest: other.ref.digest, revision: other.ref.revision });
    if (!report.masked) expect(report.stored.matches).toBe(true);

    await database.db.query({
      text: 'DELETE FROM policy_revisions WHERE digest = $1',
      values: [stored.digest],
    });
    // A fresh app: the replayer caches engines it has loaded.
    const fresh = await buildAuditApp({ db: database.db, bundlePath: contractFixtureBundle() });
    try {
      const response = await fresh.inject({ method: 'POST', url: `/v1/decisions/${ids[11]}/replay` });
      expect(response.json().stored).toMatchObject({
        available: false,
        matches: null,
        error: { code: 'revision_unavailable' },
      });
    } finally {
      await fresh.close();
    }
  });

  it('404s an unknown decision and 400s a malformed id', async () => {
    const missing = await audit.inject({
      method: 'POST',
      url: '/v1/decisions/0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/replay',
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('decision_not_found');
    const malformed = await audit.inject({ method: 'POST', url: '/v1/decisions/nope/replay' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('invalid_decision_id');
  });
});

describe('replay of masked inputs and of the data surface', () => {
  let fixture: AuditTestApp;
  let fixtureDb: TestDatabase;
  beforeAll(async () => {
    fixtureDb = await createTestDatabase('audit_replay_mask');
    fixture = await buildAuditApp({ db: fixtureDb.db, bundlePath: contractFixtureBundle() });
  }, 60_000);
  afterAll(async () => {
    await fixture?.close();
    await fixtureDb?.drop();
  });

  it('flags a replay whose stored input was masked', async () => {
    const envelope = (context: Record<string, unknown>) => ({
      subject: { type: 'user', id: 'u' },
      action: { name: 'read' },
      resource: { type: 'doc', id: 'd' },
      context,
    });
    const [plain, secret] = await fixture.decisions.decideMany([
      { surface: 'native', entrypoint: 'verdict/decision', input: envelope({}), caller, traceId: null },
      {
        surface: 'native',
        entrypoint: 'verdict/decision',
        input: envelope({ secret: 's3cr3t' }),
        caller,
        traceId: null,
      },
    ]);
    const replayOn = async (id: string) =>
      (await fixture.inject({ method: 'POST', url: `/v1/decisions/${id}/replay` })).json();
    expect((await replayOn(plain!.id)).masked).toBe(false);
    const masked = await replayOn(secret!.id);
    expect(masked.masked).toBe(true);
    // This policy never reads the secret, so the masked replay still matches.
    expect(masked.stored.matches).toBe(true);
  });

  it('replays data-surface decisions, including a path below an entrypoint, by raw value', async () => {
    const input = {
      subject: { type: 'user', id: 'u' },
      action: { name: 'write' },
      resource: { type: 'doc', id: 'd' },
    };
    const [whole, below, none] = await fixture.decisions.decideMany([
      { surface: 'data', entrypoint: 'verdict/echo', input, caller, traceId: null },
      { surface: 'data', entrypoint: 'verdict/decision/allow', input, caller, traceId: null },
      { surface: 'data', entrypoint: 'verdict/echo', input: undefined, caller, traceId: null },
    ]);
    for (const decision of [whole!, below!, none!]) {
      const report = (
        await fixture.inject({ method: 'POST', url: `/v1/decisions/${decision.id}/replay` })
      ).json();
      expect(report.surface).toBe('data');
      expect(report.masked).toBe(false);
      expect(report.stored.matches).toBe(true);
    }
    const below2 = (
      await fixture.inject({ method: 'POST', url: `/v1/decisions/${below!.id}/replay` })
    ).json();
    expect(below2.stored.result).toBe(false);
  });
});
