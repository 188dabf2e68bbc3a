import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DecisionLogReader,
  decodeCursor,
  encodeCursor,
  parseFilter,
  searchDecisionsSql,
} from '../../src/audit/queries.ts';
import { loadBundleFile } from '../../src/bundles/active.ts';
import type { DecisionService } from '../../src/decisions/service.ts';
import type { Caller } from '../../src/decisions/types.ts';
import { buildFixtureBundle, contractFixtureBundle } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type AuditTestApp, buildAuditApp, steppingClock } from './queries.support.ts';

interface Made {
  id: string;
  decidedAt: string;
  caller: string;
  subjectType: string;
  subjectId: string;
  action: string;
  resourceType: string;
  resourceId: string;
  allow: boolean;
  entrypoint: string;
  revision: string;
  controls: string[];
}

const callers: Caller[] = ['alice', 'bob', 'carol'].map((sub) => ({
  sub,
  iss: null,
  clientId: null,
  scopes: ['decisions:evaluate'],
}));

let database: TestDatabase;
let audit: AuditTestApp;
let decisions: DecisionService;
let otherRevision: string;
const made: Made[] = [];

async function make(count: number, offset: number): Promise<void> {
  const queries = Array.from({ length: count }, (_, k) => {
    const i = offset + k;
    return {
      surface: 'native' as const,
      // Every 10th decision goes to an entrypoint that breaks the result contract: a fail-closed deny.
      entrypoint: i % 10 === 9 ? 'verdict/echo' : 'verdict/decision',
      input: {
        subject: { type: i % 2 ? 'agent' : 'user', id: `s${i % 5}` },
        action: { name: i % 4 === 0 ? 'write' : 'read' },
        resource: { type: i % 3 === 0 ? 'tool' : 'doc', id: `r${i % 7}` },
      },
      caller: callers[i % 3]!,
      traceId: null,
    };
  });
  const results = await decisions.decideMany(queries);
  results.forEach((d, k) => {
    const q = queries[k]!;
    made.push({
      id: d.id,
      decidedAt: d.decidedAt,
      caller: q.caller.sub,
      subjectType: q.input.subject.type,
      subjectId: q.input.subject.id,
      action: q.input.action.name,
      resourceType: q.input.resource.type,
      resourceId: q.input.resource.id,
      allow: d.allow,
      entrypoint: q.entrypoint,
      revision: d.revision.revision,
      controls: d.result.violations.map((v) => v.control),
    });
  });
}

async function all(query: string): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  for (;;) {
    const url = `/v1/decisions?${query}${cursor ? `&cursor=${cursor}` : ''}`;
    const response = await audit.inject({ method: 'GET', url });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    pages += 1;
    ids.push(...body.items.map((item: { id: string }) => item.id));
    if (!body.has_more) return { ids, pages };
    cursor = body.next_cursor;
  }
}

beforeAll(async () => {
  database = await createTestDatabase('audit_queries');
  audit = await buildAuditApp({
    db: database.db,
    bundlePath: contractFixtureBundle(),
    clock: steppingClock('2026-03-01T10:00:00.000Z'),
  });
  decisions = audit.decisions;
  const policy = audit.policy;
  await make(50, 0);
  // A second revision of the same policies: the last decisions are made on it.
  const other = await loadBundleFile(buildFixtureBundle('contract', ['verdict/decision', 'verdict/echo']));
  otherRevision = other.ref.revision;
  policy.activate(other);
  await make(10, 50);
}, 60_000);

afterAll(async () => {
  await audit?.close();
  await database?.drop();
});

const ordered = (list: Made[]) => list.map((m) => m.id);

describe('GET /v1/decisions', () => {
  it('returns every decision oldest first, in pages without gaps or repeats', async () => {
    const { ids, pages } = await all('limit=7');
    expect(ids).toEqual(ordered(made));
    expect(pages).toBe(Math.ceil(made.length / 7));
    expect(new Set(ids).size).toBe(made.length);
  });

  it('narrows by each filter exactly', async () => {
    const mid = made[20]!.decidedAt;
    const late = made[40]!.decidedAt;
    const cases: [string, (m: Made) => boolean][] = [
      [`from=${mid}`, (m) => m.decidedAt >= mid],
      [`to=${mid}`, (m) => m.decidedAt < mid],
      [`from=${mid}&to=${late}`, (m) => m.decidedAt >= mid && m.decidedAt < late],
      ['caller_sub=bob', (m) => m.caller === 'bob'],
      ['subject_type=agent', (m) => m.subjectType === 'agent'],
      ['subject_id=s3', (m) => m.subjectId === 's3'],
      ['subject_type=user&subject_id=s2', (m) => m.subjectType === 'user' && m.subjectId === 's2'],
      ['action=write', (m) => m.action === 'write'],
      ['resource_type=tool', (m) => m.resourceType === 'tool'],
      ['resource_id=r4', (m) => m.resourceId === 'r4'],
      ['allow=true', (m) => m.allow],
      ['allow=false', (m) => !m.allow],
      ['entrypoint=verdict/echo', (m) => m.entrypoint === 'verdict/echo'],
      [`revision=${otherRevision}`, (m) => m.revision === otherRevision],
      ['control=FIX-001', (m) => m.controls.includes('FIX-001')],
      ['control=EVAL-ERROR', (m) => m.controls.includes('EVAL-ERROR')],
      [
        'caller_sub=alice&allow=false&subject_type=user',
        (m) => m.caller === 'alice' && !m.allow && m.subjectType === 'user',
      ],
    ];
    for (const [query, keep] of cases) {
      const expected = ordered(made.filter(keep));
      expect(expected.length, query).toBeGreaterThan(0);
      expect(expected.length, query).toBeLessThan(made.length);
      const { ids } = await all(`${query}&limit=4`);
      expect(ids, query).toEqual(expected);
    }
  });

  it('returns full records with the chain columns and violated controls', async () => {
    const denied = made.find((m) => !m.allow && m.entrypoint === 'verdict/decision')!;
    const response = await audit.inject({
      method: 'GET',
      url: `/v1/decisions?limit=1&resource_id=${denied.resourceId}&allow=false`,
    });
    const item = response.json().items[0];
    expect(item).toMatchObject({
      id: made.find((m) => m.resourceId === denied.resourceId && !m.allow)!.id,
      allow: false,
      surface: 'native',
      violated_controls: expect.any(Array),
      writer_id: expect.any(String),
      seq: expect.any(Number),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(item.input.subject).toBeDefined();
    expect(item.result.allow).toBe(false);
    expect(item.decided_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it('has_more is false and next_cursor resumes after the last item', async () => {
    const response = await audit.inject({ method: 'GET', url: `/v1/decisions?limit=1000` });
    const body = response.json();
    expect(body.items).toHaveLength(made.length);
    expect(body.has_more).toBe(false);
    expect(decodeCursor(body.next_cursor)).toEqual({
      decidedAt: made.at(-1)!.decidedAt,
      id: made.at(-1)!.id,
    });
    const after = await audit.inject({ method: 'GET', url: `/v1/decisions?cursor=${body.next_cursor}` });
    expect(after.json()).toEqual({ items: [], next_cursor: null, has_more: false });
  });

  it('refuses bad parameters with stable problem codes', async () => {
    const bad: [string, string][] = [
      ['from=yesterday', 'invalid_timestamp'],
      ['to=2026-13-45T00:00:00Z', 'invalid_timestamp'],
      ['from=2026-03-02&to=2026-03-01', 'invalid_time_range'],
      ['allow=yes', 'invalid_request'],
      ['limit=0', 'invalid_limit'],
      ['limit=1001', 'invalid_limit'],
      ['limit=ten', 'invalid_request'],
      ['cursor=not-a-cursor!', 'invalid_cursor'],
      [`cursor=${Buffer.from('["x","y"]').toString('base64url')}`, 'invalid_cursor'],
      ['subject=agent', 'invalid_request'],
      ['caller_sub=', 'invalid_filter'],
    ];
    for (const [query, code] of bad) {
      const response = await audit.inject({ method: 'GET', url: `/v1/decisions?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.headers['content-type'], query).toContain('application/problem+json');
      expect(response.json().code, query).toBe(code);
    }
  });

  it('names an unknown query parameter in the 400, not at path /', async () => {
    for (const url of ['/v1/decisions?limt=5', '/v1/audit/export?format=ndjson&limt=5']) {
      const response = await audit.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(400);
      expect(response.json(), url).toMatchObject({
        code: 'invalid_request',
        errors: [{ path: '/limt', message: "unknown query parameter 'limt'" }],
      });
    }
    const long = 'x'.repeat(500);
    const cut = await audit.inject({ method: 'GET', url: `/v1/decisions?${long}=1` });
    expect(cut.statusCode).toBe(400);
    expect(cut.json().errors[0].path).toBe(`/${'x'.repeat(64)}…`);
    expect(cut.body).not.toContain('x'.repeat(65));
  });

  it('cursors round-trip and carry microseconds', () => {
    const cursor = { decidedAt: '2026-03-01T10:00:00.123456Z', id: '0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
  });
});

describe('GET /v1/decisions/{id}', () => {
  it('returns the one record', async () => {
    const target = made[33]!;
    const response = await audit.inject({ method: 'GET', url: `/v1/decisions/${target.id}` });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      id: target.id,
      decided_at: target.decidedAt,
      caller_sub: target.caller,
      allow: target.allow,
      bundle_revision: target.revision,
    });
  });

  it('404s an unknown id and 400s a malformed one', async () => {
    const missing = await audit.inject({
      method: 'GET',
      url: '/v1/decisions/0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('decision_not_found');
    const malformed = await audit.inject({ method: 'GET', url: '/v1/decisions/12345' });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().code).toBe('invalid_decision_id');
  });
});

describe('OpenAPI', () => {
  it('documents the auditor routes with their schemas and scope', async () => {
    const spec = (await audit.inject({ method: 'GET', url: '/openapi.json' })).json();
    const search = spec.paths['/v1/decisions'].get;
    const names = search.parameters.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['from', 'to', 'caller_sub', 'control', 'limit', 'cursor']));
    expect(search.responses['200']).toBeDefined();
    expect(spec.paths['/v1/decisions/{id}'].get).toBeDefined();
    expect(spec.paths['/v1/decisions/{id}/replay'].post).toBeDefined();
    expect(spec.paths['/v1/audit/export'].get.responses['200'].content['text/csv']).toBeDefined();
    expect(spec.paths['/v1/audit/verify'].get).toBeDefined();
  });
});

describe('authorization', () => {
  it('needs a token with audit:read', async () => {
    const anonymous = await audit.app.inject({ method: 'GET', url: '/v1/decisions' });
    expect(anonymous.statusCode).toBe(401);
    const wrongScope = await audit.inject({ method: 'GET', url: '/v1/decisions' }, ['decisions:evaluate']);
    expect(wrongScope.statusCode).toBe(403);
  });
});

describe('GET /v1/audit/verify', () => {
  it('reports the intact chain, over a window too, and refuses a bad window', async () => {
    const all = await audit.inject({ method: 'GET', url: '/v1/audit/verify' });
    expect(all.statusCode).toBe(200);
    expect(all.json()).toMatchObject({ ok: true, checked: made.length });
    const window = await audit.inject({ method: 'GET', url: `/v1/audit/verify?from=${made[10]!.decidedAt}` });
    expect(window.json()).toMatchObject({ ok: true, checked: made.length - 10 });
    const bad = await audit.inject({ method: 'GET', url: '/v1/audit/verify?to=tomorrow' });
    expect(bad.json().code).toBe('invalid_timestamp');
  });
});

describe('time filters', () => {
  it('reads a bare date as midnight UTC whatever the session time zone', async () => {
    // Every decision is on 2026-03-01 from 10:00 UTC. Midnight of 03-02 in UTC+14 is 03-01T10:00Z,
    // so a date read in the session's zone would exclude them all.
    const rows = await database.db.transaction(async (tx) => {
      await tx.query({ text: `SET LOCAL TIME ZONE 'Pacific/Kiritimati'` });
      return (await tx.query(searchDecisionsSql(parseFilter({ to: '2026-03-02' }), null, 1000))).rows;
    });
    expect(rows).toHaveLength(made.length);
  });
});

describe('search by control', () => {
  it('finds matches beyond the bounded walk through the index, in order, without repeats', async () => {
    // A walk of 3 records: almost every page needs the index step.
    const reader = new DecisionLogReader(database.db, { controlWalkRows: 3 });
    for (const [control, keep] of [
      ['FIX-001', (m: Made) => m.controls.includes('FIX-001')],
      ['EVAL-ERROR', (m: Made) => m.controls.includes('EVAL-ERROR')],
      ['NEVER-001', () => false],
    ] as const) {
      const ids: string[] = [];
      let after = null;
      for (;;) {
        const page = await reader.search({ control, callerSub: 'bob' }, { limit: 2, after });
        ids.push(...page.items.map((item) => item.id));
        if (!page.hasMore) break;
        const last = page.items.at(-1)!;
        after = { decidedAt: last.decided_at, id: last.id };
      }
      expect(ids, control).toEqual(ordered(made.filter((m) => keep(m) && m.caller === 'bob')));
    }
  });
});
