import { describe, expect, it } from 'vitest';
import { useContractApp } from '../support/contract-app.ts';

const fixture = useContractApp();

const post = (path: string, payload: unknown) =>
  fixture.inject({
    method: 'POST',
    url: `/v1/data/${path}`,
    payload: JSON.stringify(payload),
    headers: { 'content-type': 'application/json' },
  });
const get = (path: string, query = '') => fixture.inject({ method: 'GET', url: `/v1/data/${path}${query}` });

const envelope = (action: string) => ({
  subject: { type: 'user', id: 'u1' },
  action: { name: action },
  resource: { type: 'doc', id: 'd1' },
});

describe('OPA data API: /v1/data/*', () => {
  it('{input} → {result, decision_id}, the input reaching the policy verbatim (no caller/now added)', async () => {
    const response = await post('verdict/decision', { input: envelope('read') });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(Object.keys(body).sort()).toEqual(['decision_id', 'result']);
    expect(body.result).toEqual({ allow: true, violations: [], obligations: [], exceptions: [] });
    expect(fixture.recorder.records).toHaveLength(1);
    expect(fixture.recorder.records[0]).toMatchObject({ id: body.decision_id, surface: 'data', allow: true });
    const echoed = (await post('verdict/echo', { input: { a: 1 } })).json();
    expect(echoed.result).toEqual({ a: 1 });
  });

  it('an undefined result → {decision_id} only, recorded as a non-allow', async () => {
    const response = await post('verdict/never', { input: envelope('read') });
    expect(response.statusCode).toBe(200);
    expect(Object.keys(response.json())).toEqual(['decision_id']);
    expect(fixture.recorder.records[0]).toMatchObject({ allow: false, result: null });
  });

  it('a body without input → a decision on undefined input plus OPA api_usage_warning', async () => {
    const response = await post('verdict/decision', {});
    expect(response.statusCode).toBe(200);
    expect(response.json().warning).toEqual({
      code: 'api_usage_warning',
      message: "'input' key missing from the request",
    });
    expect(response.json().result.allow).toBe(false);
    const withInput = await post('verdict/decision', { input: {} });
    expect(withInput.json().warning).toBeUndefined();
  });

  it.each([false, 0, '', null, [], {}])('a falsy or empty input (%j) reaches the policy', async (input) => {
    const response = await post('verdict/echo', { input });
    expect(response.statusCode).toBe(200);
    expect(response.json().result).toEqual(input);
    expect(response.json().warning).toBeUndefined();
  });

  it('a path below an entrypoint walks into its value (verdict/echo/a/b)', async () => {
    const response = await post('verdict/echo/a/b', { input: { a: { b: { c: 42 } } } });
    expect(response.statusCode).toBe(200);
    expect(response.json().result).toEqual({ c: 42 });
    const array = await post('verdict/echo/list/1', { input: { list: ['x', 'y'] } });
    expect(array.json().result).toBe('y');
    const missing = await post('verdict/echo/a/zzz', { input: { a: {} } });
    expect(Object.keys(missing.json())).toEqual(['decision_id']);
    const allowPath = await post('verdict/decision/allow', { input: envelope('read') });
    expect(allowPath.json().result).toBe(true);
    expect(fixture.recorder.records.at(-1)).toMatchObject({
      entrypoint: 'verdict/decision/allow',
      allow: true,
    });
  });

  it('GET with ?input=<json> decides like POST; without it, warns', async () => {
    const input = encodeURIComponent(JSON.stringify(envelope('read')));
    const response = await get('verdict/decision', `?input=${input}`);
    expect(response.statusCode).toBe(200);
    expect(response.json().result.allow).toBe(true);
    expect((await get('verdict/echo', '?input=false')).json().result).toBe(false);
    expect((await get('verdict/echo', '?input=0')).json().result).toBe(0);
    expect((await get('verdict/echo', '?input=null')).json().result).toBeNull();
    const bare = await get('verdict/echo');
    expect(bare.json().warning.code).toBe('api_usage_warning');
  });

  it("errors keep OPA's {code, message} next to the problem fields", async () => {
    const badPath = await post('verdict/a%20b', { input: 1 });
    expect(badPath.statusCode).toBe(400);
    expect(badPath.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(badPath.json()).toMatchObject({
      code: 'invalid_parameter',
      message: expect.any(String),
      status: 400,
    });
    const badJson = await fixture.inject({
      method: 'POST',
      url: '/v1/data/verdict/echo',
      payload: '{"input":',
      headers: { 'content-type': 'application/json' },
    });
    expect(badJson.json()).toMatchObject({
      code: 'invalid_parameter',
      verdict_code: 'malformed_json',
      message: expect.any(String),
    });
    const twice = await get('verdict/echo', '?input=1&input=2');
    expect(twice.json()).toMatchObject({ code: 'invalid_parameter', verdict_code: 'invalid_request' });
    fixture.recorder.failWith = new Error('down');
    const unrecorded = await post('verdict/decision', { input: envelope('read') });
    expect(unrecorded.statusCode).toBe(503);
    expect(unrecorded.json()).toMatchObject({ code: 'internal_error', verdict_code: 'audit_unavailable' });
    expect(unrecorded.body).not.toContain('result');
  });

  it('an evaluation error is a 500 internal_error as in OPA (not "undefined"), recorded as a deny', async () => {
    // ADR 0007: a client must tell "no such rule" (200 without result) from "the policy failed".
    const response = await post('verdict/conflict', { input: {} });
    expect(response.statusCode).toBe(500);
    const body = response.json();
    const [record] = fixture.recorder.records;
    expect(body).toMatchObject({
      code: 'internal_error',
      verdict_code: 'evaluation_error',
      message: expect.any(String),
      decision_id: record!.id,
      errors: [{ code: 'evaluation_error', message: expect.any(String) }],
    });
    expect(body.result).toBeUndefined();
    // Nothing of the policy's internals (the wasm abort message) reaches the client.
    expect(response.body).not.toContain(record!.error!.message);
    expect(record).toMatchObject({ allow: false, error: { code: 'evaluation_error' } });
    const get500 = await get('verdict/conflict', '?input={}');
    expect(get500.statusCode).toBe(500);
    // An unknown path stays "undefined": 200 without result.
    const unknown = await post('no/such/rule', { input: {} });
    expect(unknown.statusCode).toBe(200);
    expect(unknown.json().result).toBeUndefined();
  });
});
