import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundleFile } from '../../src/bundles/active.ts';
import { type SearchRequest, searchPage } from '../../src/decisions/search.ts';
import type { Caller } from '../../src/decisions/types.ts';
import { buildFixtureBundle, contractFixtureBundle } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type AuditTestApp, buildAuditApp } from './queries.support.ts';

// An AuthZEN search is recorded as ONE decision (src/decisions/search.ts); replaying it must replay
// the page it answered, not evaluate the search request as if it were one decision.
let database: TestDatabase;
let audit: AuditTestApp;
const caller: Caller = { sub: 'svc-portal', iss: null, clientId: null, scopes: ['decisions:evaluate'] };

beforeAll(async () => {
  database = await createTestDatabase('audit_replay_search');
  audit = await buildAuditApp({
    db: database.db,
    bundlePath: buildFixtureBundle('authzen-scenario', ['verdict/decision']),
  });
}, 60_000);

afterAll(async () => {
  await audit?.close();
  await database?.drop();
});

async function search(request: SearchRequest): Promise<string> {
  const { page: _p, kind: _k, ...recorded } = request;
  const { decision } = await audit.decisions.decideSearch(
    {
      surface: 'authzen',
      entrypoint: 'verdict/decision',
      input: { ...recorded, search: request.kind, page: request.page },
      caller,
      traceId: null,
    },
    (evaluator) => searchPage(request, evaluator),
  );
  return decision.id;
}

const replay = async (id: string) => {
  const response = await audit.inject({ method: 'POST', url: `/v1/decisions/${id}/replay` });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
};

describe('replaying a recorded AuthZEN search', () => {
  it('replays the page on the stored revision (same ids), and reports a change on another revision', async () => {
    const id = await search({
      kind: 'subject',
      subject: { type: 'user' },
      action: { name: 'read' },
      resource: { type: 'record', id: 'record-1' },
      page: { limit: 1 },
    });
    const report = await replay(id);
    expect(report.recorded.result).toMatchObject({ search: 'subject', results: ['alice'] });
    expect(report.stored).toMatchObject({
      available: true,
      allow: true,
      error: null,
      matches: true,
      result: { search: 'subject', results: ['alice'] },
    });
    expect(report.active.matches).toBe(true);

    const scenario = audit.policy.current();
    audit.policy.activate(await loadBundleFile(contractFixtureBundle()));
    try {
      const changed = await replay(id);
      expect(changed.stored.matches).toBe(true);
      // The contract bundle has no catalog: nothing found, which differs from what was answered.
      expect(changed.active).toMatchObject({ allow: false, matches: false, result: { results: [] } });
    } finally {
      audit.policy.activate(scenario);
    }
  });

  it('a second page replays with its token on the stored revision; elsewhere the token is stale', async () => {
    const first = searchPage(
      {
        kind: 'action',
        subject: { type: 'user', id: 'alice' },
        resource: { type: 'record', id: 'record-1' },
        page: { limit: 1 },
      },
      {
        revision: audit.policy.current().ref,
        data: audit.policy.current().bundle.data,
        allows: () => true,
      },
    );
    expect(first.outcome.nextToken).not.toBe('');
    const id = await search({
      kind: 'action',
      subject: { type: 'user', id: 'alice' },
      resource: { type: 'record', id: 'record-1' },
      page: { limit: 1, token: first.outcome.nextToken },
    });
    const report = await replay(id);
    expect(report.stored).toMatchObject({ matches: true, error: null });
    const scenario = audit.policy.current();
    audit.policy.activate(await loadBundleFile(contractFixtureBundle()));
    try {
      expect((await replay(id)).active).toMatchObject({ matches: null, error: { code: 'stale_page_token' } });
    } finally {
      audit.policy.activate(scenario);
    }
  });
});
