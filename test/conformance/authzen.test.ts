/**
 * AuthZEN Authorization API 1.0 conformance, written from the specification (openid/authzen
 * api/authorization-api-1_0.md) and its public certification scenario
 * (certification/authorization-api-1_0-scenario.md): every certification level — Basic, Batch,
 * Search (Core and Properties) and Discovery — plus the transport rules that apply to all of them.
 * Test names carry the scenario's section ids (C-2-2-1 …).
 *
 * The app is the real one, loaded with the scenario's fixture bundle (test/fixtures/policies/
 * authzen-scenario: its subjects, resources and rules as Rego and data, built by the OPA CLI)
 * through the configured bundle path, exactly as `VERDICT_BUNDLE` serves a bundle.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { buildTestApp } from '../support/app.ts';
import { buildFixtureBundle } from '../support/bundle.ts';

const PUBLIC_URL = 'https://pdp.example.com';
let built: Awaited<ReturnType<typeof buildTestApp>>;
let recorder: MemoryRecorder;

beforeAll(async () => {
  const bundle = buildFixtureBundle('authzen-scenario', ['verdict/decision']);
  built = await buildTestApp({
    bundlePath: bundle,
    env: { VERDICT_BUNDLE: bundle, VERDICT_PUBLIC_URL: PUBLIC_URL },
  });
  recorder = built.recorder as MemoryRecorder;
});
afterAll(async () => built?.app.close());
beforeEach(() => {
  recorder.records.length = 0;
});

const inject = (request: InjectOptions) => built.injectWithToken(request);
const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
  inject({ method: 'POST', url, payload: payload as object, headers });

const alice = { type: 'user', id: 'alice' };
const bob = { type: 'user', id: 'bob' };
const admin = { type: 'user', id: 'bob', properties: { role: 'admin' } };
const record1 = { type: 'record', id: 'record-1' };
const record2 = { type: 'record', id: 'record-2' };
const archived2 = { ...record2, properties: { status: 'archived' } };
const read = { name: 'read' };
const write = { name: 'write' };

/** The scenario's transport rule: 200 with application/json and a boolean decision. */
async function decisionOf(url: string, body: unknown): Promise<boolean> {
  const response = await post(url, body);
  expect(response.statusCode, response.body).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const json = response.json();
  expect(typeof json.decision).toBe('boolean');
  if (json.context !== undefined) expect(typeof json.context).toBe('object');
  return json.decision;
}

async function batchOf(body: unknown): Promise<{ decision: boolean; context?: Record<string, unknown> }[]> {
  const response = await post('/access/v1/evaluations', body);
  expect(response.statusCode, response.body).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const { evaluations } = response.json();
  expect(Array.isArray(evaluations)).toBe(true);
  for (const item of evaluations) expect(typeof item.decision).toBe('boolean');
  return evaluations;
}

async function searchOf(kind: string, body: unknown) {
  const response = await post(`/access/v1/search/${kind}`, body);
  expect(response.statusCode, response.body).toBe(200);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const json = response.json();
  expect(Array.isArray(json.results)).toBe(true);
  if (json.page !== undefined) expect(typeof json.page.next_token).toBe('string');
  return json as { results: Record<string, string>[]; page: { next_token: string; count?: number } };
}

describe('Basic Core (C-2): access evaluation with identifier fields', () => {
  const url = '/access/v1/evaluation';
  it('C-2-2-1 / C-2-2-2: rule 1 permits, rule 4 denies', async () => {
    expect(await decisionOf(url, { subject: alice, action: read, resource: record1 })).toBe(true);
    expect(await decisionOf(url, { subject: bob, action: write, resource: record1 })).toBe(false);
  });

  it('C-1-4 rules 2 and 3 hold', async () => {
    expect(await decisionOf(url, { subject: alice, action: write, resource: record1 })).toBe(true);
    expect(await decisionOf(url, { subject: bob, action: read, resource: record1 })).toBe(true);
  });

  it('C-2-2-3: an optional context does not change the decision', async () => {
    const context = { time: '2025-06-27T18:03-07:00', ip: '192.168.1.1' };
    expect(await decisionOf(url, { subject: alice, action: read, resource: record1, context })).toBe(true);
  });

  it('C-2-2-8: additional properties are accepted', async () => {
    const body = {
      subject: { ...alice, properties: { department: 'Sales', role: 'manager' } },
      action: { name: 'read', properties: { method: 'GET' } },
      resource: { ...record1, properties: { status: 'active', owner: 'bob' } },
    };
    expect(await decisionOf(url, body)).toBe(true);
  });

  it('C-2-2-9: unknown top-level fields are ignored', async () => {
    const body = {
      subject: alice,
      action: read,
      resource: record1,
      foo: 'bar',
      futureField: { nested: true },
    };
    expect(await decisionOf(url, body)).toBe(true);
  });

  it('C-2-3: the decision is a boolean; the context, when present, an object', async () => {
    const response = await post(url, { subject: alice, action: read, resource: record1 });
    expect(response.json()).toMatchObject({ decision: true, context: { decision_id: expect.any(String) } });
  });

  it('C-2-4-1 / C-2-4-2 / C-2-4-6: missing or mistyped fields are 400 problems, nothing decided', async () => {
    const bad = [
      { action: read, resource: record1 },
      { subject: alice, resource: record1 },
      { subject: alice, action: read },
      { subject: { id: 'alice' }, action: read, resource: record1 },
      { subject: { type: 'user' }, action: read, resource: record1 },
      { subject: alice, action: {}, resource: record1 },
      { subject: alice, action: read, resource: { id: 'record-1' } },
      { subject: alice, action: read, resource: { type: 'record' } },
      { subject: 'alice', action: read, resource: record1 },
      { subject: alice, action: { name: 123 }, resource: record1 },
    ];
    for (const body of bad) {
      const response = await post(url, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    expect(recorder.records).toHaveLength(0);
  });

  it('C-2-4-3 / C-2-4-4 / C-2-4-5: a non-JSON content type, malformed JSON or an empty body is 400', async () => {
    const body = JSON.stringify({ subject: alice, action: read, resource: record1 });
    for (const target of ['/access/v1/evaluation', '/access/v1/evaluations', '/access/v1/search/action']) {
      const cases: InjectOptions[] = [
        { payload: body, headers: { 'content-type': 'text/plain' } },
        { payload: body, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        { payload: body, headers: { 'content-type': 'application/json; charset=iso-8859-1' } },
        { payload: '{"subject": {', headers: { 'content-type': 'application/json' } },
        { payload: '', headers: { 'content-type': 'application/json' } },
        { payload: '' },
      ];
      for (const request of cases) {
        const response = await inject({ method: 'POST', url: target, ...request });
        expect(response.statusCode, `${target} ${JSON.stringify(request)}`).toBe(400);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(typeof response.json().code).toBe('string');
      }
    }
    expect(recorder.records).toHaveLength(0);
  });

  it('C-2-5: X-Request-ID is echoed on answers and errors; its absence is fine', async () => {
    const id = 'bfe9eb29-ab87-4ca3-be83-a1d5d8305716';
    const ok = await post(url, { subject: alice, action: read, resource: record1 }, { 'x-request-id': id });
    expect(ok.headers['x-request-id']).toBe(id);
    const refused = await post(url, { subject: alice }, { 'x-request-id': id });
    expect(refused.statusCode).toBe(400);
    expect(refused.headers['x-request-id']).toBe(id);
    const batch = await post(
      '/access/v1/evaluations',
      { subject: alice, action: read, resource: record1 },
      {
        'x-request-id': id,
      },
    );
    expect(batch.headers['x-request-id']).toBe(id);
    const search = await post(
      '/access/v1/search/action',
      { subject: alice, resource: record1 },
      {
        'x-request-id': id,
      },
    );
    expect(search.headers['x-request-id']).toBe(id);
    const unauthenticated = await built.app.inject({
      method: 'POST',
      url: '/access/v1/evaluation',
      payload: { subject: alice, action: read, resource: record1 },
      headers: { 'x-request-id': id },
    });
    expect(unauthenticated.statusCode).toBe(401);
    expect(unauthenticated.headers['x-request-id']).toBe(id);
    expect(await decisionOf(url, { subject: alice, action: read, resource: record1 })).toBe(true);
  });

  it('C-2-6: the same request gives the same decision every time', async () => {
    for (let i = 0; i < 5; i++) {
      expect(await decisionOf(url, { subject: bob, action: write, resource: record1 })).toBe(false);
    }
  });
});

describe('Basic Properties (C-2-2-4 … C-2-2-7): properties decide', () => {
  const url = '/access/v1/evaluation';
  it('C-2-2-4: rule 5, an archived resource denies a write', async () => {
    expect(await decisionOf(url, { subject: alice, action: write, resource: archived2 })).toBe(false);
  });
  it('C-2-2-5: rule 6, an admin subject writes an archived resource', async () => {
    expect(await decisionOf(url, { subject: admin, action: write, resource: archived2 })).toBe(true);
  });
  it('C-2-2-6 / C-2-2-7: rules 7 and 8, soft delete permitted, hard delete denied', async () => {
    const del = (soft: boolean) => ({ name: 'delete', properties: { soft } });
    expect(await decisionOf(url, { subject: alice, action: del(true), resource: record1 })).toBe(true);
    expect(await decisionOf(url, { subject: alice, action: del(false), resource: record1 })).toBe(false);
  });
});

describe('Batch Core (C-3): access evaluations', () => {
  it('C-3-2-1: an evaluations array gives one decision per item', async () => {
    const items = await batchOf({
      subject: alice,
      action: read,
      evaluations: [{ resource: record1 }, { resource: record2 }],
    });
    expect(items).toHaveLength(2);
  });

  it('C-3-2-2 / C-3-3: rules 3 and 4, in request order', async () => {
    const items = await batchOf({
      subject: bob,
      resource: record1,
      evaluations: [{ action: read }, { action: write }],
    });
    expect(items.map((e) => e.decision)).toEqual([true, false]);
  });

  it('C-3-2-5: fully specified items without defaults', async () => {
    const items = await batchOf({
      evaluations: [
        { subject: alice, action: read, resource: record1 },
        { subject: bob, action: write, resource: record1 },
      ],
    });
    expect(items.map((e) => e.decision)).toEqual([true, false]);
  });

  it('C-3-2-6: a top-level context is inherited, an item context overrides it', async () => {
    const items = await batchOf({
      subject: alice,
      action: read,
      context: { time: '2025-06-27T18:03-07:00' },
      evaluations: [
        { resource: record1 },
        { resource: record2, context: { time: '2025-06-27T19:00-07:00', source: 'batch-override' } },
      ],
    });
    expect(items).toHaveLength(2);
    const contexts = recorder.records.map((r) => (r.input as { context?: unknown }).context);
    expect(contexts).toEqual([
      { time: '2025-06-27T18:03-07:00' },
      { time: '2025-06-27T19:00-07:00', source: 'batch-override' },
    ]);
  });

  it('C-3-3-4: no top-level decision next to the evaluations array', async () => {
    const response = await post('/access/v1/evaluations', {
      subject: alice,
      action: read,
      evaluations: [{ resource: record1 }],
    });
    expect(response.json().decision).toBeUndefined();
  });

  it('C-3-4-1: an invalid item is a decision:false item with its error in context, never a failed batch', async () => {
    const items = await batchOf({
      subject: alice,
      action: read,
      evaluations: [{ resource: record1 }, {}, 'not an object', { resource: { type: 'record' } }],
    });
    expect(items.map((e) => e.decision)).toEqual([true, false, false, false]);
    for (const invalid of items.slice(1)) {
      expect(invalid.context).toMatchObject({ error: { status: 400, code: 'invalid_request' } });
    }
    expect(recorder.records).toHaveLength(1);
  });

  it('C-3-4-2 / C-3-4-3: a missing or empty evaluations array answers as a single evaluation', async () => {
    for (const extra of [{}, { evaluations: [] }]) {
      const response = await post('/access/v1/evaluations', {
        subject: alice,
        action: read,
        resource: record1,
        ...extra,
      });
      expect(response.statusCode).toBe(200);
      expect(response.json().decision).toBe(true);
      expect(response.json().evaluations).toBeUndefined();
    }
  });

  it('C-3-4 whole-payload errors stay HTTP errors (malformed JSON, a single evaluation missing fields)', async () => {
    const malformed = await inject({
      method: 'POST',
      url: '/access/v1/evaluations',
      payload: '{"evaluations": [',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.statusCode).toBe(400);
    const noSubject = await post('/access/v1/evaluations', { action: read, resource: record1 });
    expect(noSubject.statusCode).toBe(400);
    // A default that is not an object is a malformed payload, not a bad item.
    const badDefault = await post('/access/v1/evaluations', {
      subject: 'alice',
      evaluations: [{ action: read }],
    });
    expect(badDefault.statusCode).toBe(400);
    expect(recorder.records).toHaveLength(0);
  });
});

describe('Batch Properties (C-3-2-3, C-3-2-4, C-3-2-7)', () => {
  it('C-3-2-3: resource properties per item', async () => {
    const items = await batchOf({
      subject: alice,
      action: write,
      evaluations: [{ resource: { ...record1, properties: { status: 'active' } } }, { resource: archived2 }],
    });
    expect(items.map((e) => e.decision)).toEqual([true, false]);
  });

  it('C-3-2-4: subject properties per item', async () => {
    const items = await batchOf({
      action: write,
      resource: archived2,
      evaluations: [{ subject: alice }, { subject: admin }],
    });
    expect(items.map((e) => e.decision)).toEqual([false, true]);
  });

  it('C-3-2-7: entity-level default merging, falling back to the default type/id', async () => {
    const items = await batchOf({
      subject: alice,
      action: write,
      resource: { type: 'record' },
      evaluations: [
        { resource: { id: 'record-1', properties: { status: 'active' } } },
        { resource: archived2 },
      ],
    });
    expect(items.map((e) => e.decision)).toEqual([true, false]);
    expect(recorder.records[0]!.input).toMatchObject({
      resource: { type: 'record', id: 'record-1', properties: { status: 'active' } },
    });
  });

  it('an item entity replaces the default whole: the default properties are not merged into it', async () => {
    await batchOf({
      subject: admin,
      action: write,
      resource: archived2,
      evaluations: [{ subject: { id: 'alice' } }],
    });
    const input = recorder.records[0]!.input as { subject: Record<string, unknown> };
    expect(input.subject).toEqual({ type: 'user', id: 'alice' });
    expect(recorder.records[0]!.allow).toBe(false);
  });
});

describe('Batch semantics: evaluations_semantic short-circuits', () => {
  const three = (first: object, second: object, third: object) => ({
    subject: alice,
    resource: record1,
    evaluations: [{ action: first }, { action: second }, { action: third }],
  });
  const hardDelete = { name: 'delete', properties: { soft: false } };

  it('execute_all (the default) evaluates and records every item', async () => {
    const items = await batchOf({
      ...three(read, hardDelete, read),
      options: { evaluations_semantic: 'execute_all' },
    });
    expect(items.map((e) => e.decision)).toEqual([true, false, true]);
    expect(recorder.records).toHaveLength(3);
  });

  it('deny_on_first_deny stops at the first deny: later items neither evaluated, recorded nor answered', async () => {
    const items = await batchOf({
      ...three(read, hardDelete, read),
      options: { evaluations_semantic: 'deny_on_first_deny' },
    });
    expect(items.map((e) => e.decision)).toEqual([true, false]);
    expect(recorder.records.map((r) => r.actionName)).toEqual(['read', 'delete']);
  });

  it('deny_on_first_deny: an invalid item counts as the first deny', async () => {
    const items = await batchOf({
      subject: alice,
      resource: record1,
      evaluations: [{ action: read }, { action: {} }, { action: read }],
      options: { evaluations_semantic: 'deny_on_first_deny' },
    });
    expect(items.map((e) => e.decision)).toEqual([true, false]);
    expect(items[1]!.context).toMatchObject({ error: { status: 400 } });
    expect(recorder.records).toHaveLength(1);
  });

  it('permit_on_first_permit stops at the first permit; invalid items before it stay denies', async () => {
    const items = await batchOf({
      subject: alice,
      resource: record1,
      evaluations: [{ action: hardDelete }, {}, { action: read }, { action: write }],
      options: { evaluations_semantic: 'permit_on_first_permit' },
    });
    expect(items.map((e) => e.decision)).toEqual([false, false, true]);
    expect(recorder.records.map((r) => r.actionName)).toEqual(['delete', 'read']);
  });

  it('an unknown semantic is a 400 for the whole payload', async () => {
    const response = await post('/access/v1/evaluations', {
      ...three(read, read, read),
      options: { evaluations_semantic: 'all' },
    });
    expect(response.statusCode).toBe(400);
    expect(recorder.records).toHaveLength(0);
  });
});

describe('Search Core (C-4)', () => {
  it('C-4-2-1: subject search includes alice and bob, all of the requested type', async () => {
    const { results } = await searchOf('subject', {
      subject: { type: 'user' },
      action: read,
      resource: record1,
    });
    expect(results.map((r) => r.id)).toEqual(expect.arrayContaining(['alice', 'bob']));
    for (const r of results) expect(r).toMatchObject({ type: 'user', id: expect.any(String) });
  });

  it('C-4-2-2 / C-4-4-2: search accepts a context', async () => {
    const context = { time: '2024-10-26T01:22-07:00' };
    const subjects = await searchOf('subject', {
      subject: { type: 'user' },
      action: read,
      resource: record1,
      context,
    });
    expect(subjects.results.length).toBeGreaterThan(0);
    const actions = await searchOf('action', { subject: alice, resource: record1, context });
    expect(actions.results.length).toBeGreaterThan(0);
  });

  it('C-4-2-3 / C-4-3-2: an id on the searched entity is ignored', async () => {
    const { results } = await searchOf('subject', {
      subject: { type: 'user', id: 'nobody' },
      action: read,
      resource: record1,
    });
    expect(results.map((r) => r.id)).toEqual(expect.arrayContaining(['alice', 'bob']));
    const resources = await searchOf('resource', {
      subject: alice,
      action: read,
      resource: { type: 'record', id: 'x' },
    });
    expect(resources.results.map((r) => r.id)).toContain('record-1');
  });

  it('C-4-3-1: resource search includes record-1, all of the requested type', async () => {
    const { results } = await searchOf('resource', {
      subject: alice,
      action: read,
      resource: { type: 'record' },
    });
    expect(results.map((r) => r.id)).toContain('record-1');
    for (const r of results) expect(r).toMatchObject({ type: 'record', id: expect.any(String) });
  });

  it('C-4-4-1: action search (no action key) includes read and write', async () => {
    const { results } = await searchOf('action', { subject: alice, resource: record1 });
    expect(results.map((r) => r.name)).toEqual(expect.arrayContaining(['read', 'write']));
    for (const r of results) expect(typeof r.name).toBe('string');
  });

  it('C-4-5: page.limit and page.token are accepted; next_token is "" on the last page', async () => {
    const body = { subject: { type: 'user' }, action: read, resource: record1 };
    const first = await searchOf('subject', { ...body, page: { limit: 1 } });
    expect(first.results).toHaveLength(1);
    expect(first.page.next_token).not.toBe('');
    const second = await searchOf('subject', { ...body, page: { token: first.page.next_token } });
    expect(second.page.next_token).toBe('');
    expect([...first.results, ...second.results].map((r) => r.id)).toEqual(['alice', 'bob']);
  });

  it('C-4-6: unknown ids and unknown types give empty results, not errors', async () => {
    const unknownId = await searchOf('action', {
      subject: { type: 'user', id: 'nonexistent-user' },
      resource: record1,
    });
    expect(unknownId.results).toEqual([]);
    const unknownType = await searchOf('subject', {
      subject: { type: 'spaceship' },
      action: read,
      resource: record1,
    });
    expect(unknownType.results).toEqual([]);
    expect(unknownType.page.next_token).toBe('');
  });

  it('C-4-7: missing required fields and sub-fields are 400', async () => {
    const cases: [string, unknown][] = [
      ['subject', { subject: { type: 'user' }, resource: record1 }],
      ['resource', { action: read, resource: { type: 'record' } }],
      ['action', { subject: alice }],
      ['subject', { subject: { type: 'user' }, action: read, resource: { type: 'record' } }],
      ['resource', { subject: { type: 'user' }, action: read, resource: { type: 'record' } }],
      ['subject', { subject: {}, action: read, resource: record1 }],
    ];
    for (const [kind, body] of cases) {
      const response = await post(`/access/v1/search/${kind}`, body);
      expect(response.statusCode, `${kind} ${JSON.stringify(body)}`).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    expect(recorder.records).toHaveLength(0);
  });
});

describe('Search Properties (C-4-2-4, C-4-3-3, C-4-4-3)', () => {
  it('C-4-2-4: subjects who may write an archived record include bob', async () => {
    const { results } = await searchOf('subject', {
      subject: { type: 'user' },
      action: write,
      resource: archived2,
    });
    expect(results.map((r) => r.id)).toContain('bob');
  });
  it('C-4-3-3: records an admin may write include record-2', async () => {
    const { results } = await searchOf('resource', {
      subject: admin,
      action: write,
      resource: { type: 'record' },
    });
    expect(results.map((r) => r.id)).toContain('record-2');
  });
  it('C-4-4-3: actions an admin may take on an archived record include write', async () => {
    const { results } = await searchOf('action', { subject: admin, resource: archived2 });
    expect(results.map((r) => r.name)).toContain('write');
  });
});

describe('Discovery (C-6)', () => {
  it('C-6-2 … C-6-5: metadata names the configured base URL, every endpoint and capabilities', async () => {
    // Public: a PEP reads it before it holds a token.
    const response = await built.app.inject({ method: 'GET', url: '/.well-known/authzen-configuration' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const metadata = response.json();
    expect(metadata).toEqual({
      policy_decision_point: PUBLIC_URL,
      access_evaluation_endpoint: `${PUBLIC_URL}/access/v1/evaluation`,
      access_evaluations_endpoint: `${PUBLIC_URL}/access/v1/evaluations`,
      search_subject_endpoint: `${PUBLIC_URL}/access/v1/search/subject`,
      search_resource_endpoint: `${PUBLIC_URL}/access/v1/search/resource`,
      search_action_endpoint: `${PUBLIC_URL}/access/v1/search/action`,
      capabilities: expect.any(Array),
    });
    for (const capability of metadata.capabilities) expect(capability).toMatch(/^urn:/);
    // Every endpoint named is served here (a POST without a token is 401, not 404).
    for (const [key, value] of Object.entries(metadata)) {
      if (!key.endsWith('_endpoint')) continue;
      const path = new URL(value as string).pathname;
      const probe = await built.app.inject({ method: 'POST', url: path, payload: {} });
      expect(probe.statusCode, path).toBe(401);
    }
  });
});
