import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { useContractApp } from '../support/contract-app.ts';

// OPA's REST API beyond /v1/data: the default decision, the batch API and the health API.
const echo = useContractApp({ env: { VERDICT_DEFAULT_DECISION: '/verdict/echo', VERDICT_BATCH_LIMIT: '3' } });
const never = useContractApp({ env: { VERDICT_DEFAULT_DECISION: 'verdict/never' } });

describe('POST / (default decision)', () => {
  it('evaluates the configured default decision on the body as input and answers the bare value', async () => {
    const response = await echo.inject({ method: 'POST', url: '/', payload: { user: 'alice' } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ user: 'alice' });
    const [record] = echo.recorder.records;
    expect(record).toMatchObject({ surface: 'data', entrypoint: 'verdict/echo', input: { user: 'alice' } });
    expect(response.headers['x-verdict-decision-id']).toBe(record!.id);
  });

  it('undefined → 404 undefined_document, as OPA; still recorded (as a deny)', async () => {
    const response = await never.inject({ method: 'POST', url: '/', payload: {} });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      code: 'undefined_document',
      message: 'document undefined: data.verdict.never',
    });
    expect(never.recorder.records).toHaveLength(1);
    expect(never.recorder.records[0]!.allow).toBe(false);
  });

  it('needs decisions:evaluate; malformed JSON is a 400 in OPA shape', async () => {
    const anonymous = await echo.app.inject({ method: 'POST', url: '/', payload: {} });
    expect(anonymous.statusCode).toBe(401);
    const bad = await echo.inject({
      method: 'POST',
      url: '/',
      payload: '{"a":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'invalid_parameter', verdict_code: 'malformed_json' });
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
    // An OPA client asks for application/json and reads errors only as that type.
    const asked = await echo.inject({
      method: 'POST',
      url: '/',
      payload: '{"a":',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
    });
    expect(asked.statusCode).toBe(400);
    expect(asked.headers['content-type']).toMatch(/^application\/json/);
    expect(asked.json()).toMatchObject({ code: 'invalid_parameter', verdict_code: 'malformed_json' });
    expect(echo.recorder.records).toHaveLength(0);
  });
});

describe('POST /v1/batch/data/{path}', () => {
  it('inputs keyed by id → responses keyed by id, each its own recorded decision, 200 when all succeed', async () => {
    const response = await echo.inject({
      method: 'POST',
      url: '/v1/batch/data/verdict/decision',
      payload: {
        inputs: {
          a: { subject: { type: 'u', id: '1' }, action: { name: 'read' }, resource: { type: 'd', id: '1' } },
          b: { action: { name: 'write' } },
        },
      },
    });
    expect(response.statusCode).toBe(200);
    const { responses } = response.json();
    expect(Object.keys(responses).sort()).toEqual(['a', 'b']);
    expect(responses.a.result.allow).toBe(true);
    expect(responses.b.result.allow).toBe(false);
    expect(responses.a.http_status_code).toBeUndefined();
    const ids = echo.recorder.records.map((r) => r.id);
    expect(ids).toEqual([responses.a.decision_id, responses.b.decision_id]);
  });

  it('undefined items have no result; mixed success and errors → 207 with http_status_code per item', async () => {
    const mixed = await echo.inject({
      method: 'POST',
      url: '/v1/batch/data/verdict/conflict',
      payload: { inputs: { ok: { impossible: 1 }, broken: {} } },
    });
    // The contract fixture's conflict rule fails on every input: all failed → 500.
    expect(mixed.statusCode).toBe(500);
    expect(mixed.json().responses.broken).toMatchObject({
      code: 'internal_error',
      decision_id: expect.any(String),
    });
    const undefinedItem = await echo.inject({
      method: 'POST',
      url: '/v1/batch/data/verdict/never',
      payload: { inputs: { x: {} } },
    });
    expect(undefinedItem.statusCode).toBe(200);
    expect(undefinedItem.json().responses.x).toEqual({ decision_id: expect.any(String) });
  });

  it('refuses a body without inputs, too many inputs, or a bad path (400, nothing recorded)', async () => {
    const cases = [
      { url: '/v1/batch/data/verdict/echo', payload: { input: {} } },
      { url: '/v1/batch/data/verdict/echo', payload: { inputs: [] } },
      { url: '/v1/batch/data/verdict/echo', payload: { inputs: { a: 1, b: 2, c: 3, d: 4 } } },
      { url: '/v1/batch/data/verdict/ech-o', payload: { inputs: {} } },
    ];
    for (const c of cases) {
      const response = await echo.inject({ method: 'POST', ...c });
      expect(response.statusCode, JSON.stringify(c)).toBe(400);
      expect(response.json().code).toBe('invalid_parameter');
    }
    expect(echo.recorder.records).toHaveLength(0);
  });
});

describe('GET /health (OPA)', () => {
  it('200 {} without a token, with or without ?bundles / ?plugins', async () => {
    for (const url of ['/health', '/health?bundles', '/health?plugins', '/health?bundles&plugins']) {
      const response = await echo.app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(200);
      expect(response.json()).toEqual({});
    }
  });
});

describe('GET /health (OPA) when not ready', () => {
  it('500 {error} while the replica is not ready, 200 {} once it is', async () => {
    let ready = false;
    const built = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      readiness: async () => ({ ready, checks: { bundle: true, database: ready } }),
    });
    try {
      const down = await built.app.inject({ method: 'GET', url: '/health?bundles' });
      expect(down.statusCode).toBe(500);
      expect(down.json()).toEqual({ error: expect.any(String) });
      ready = true;
      const up = await built.app.inject({ method: 'GET', url: '/health?bundles' });
      expect(up.statusCode).toBe(200);
      expect(up.json()).toEqual({});
    } finally {
      await built.app.close();
    }
  });
});
