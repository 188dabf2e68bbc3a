import { describe, expect, it } from 'vitest';
import { useContractApp } from '../support/contract-app.ts';

const BATCH_LIMIT = 5;
const fixture = useContractApp({ env: { VERDICT_BATCH_LIMIT: String(BATCH_LIMIT) } });

const envelope = (action: string, extra: Record<string, unknown> = {}) => ({
  subject: { type: 'user', id: 'u1' },
  action: { name: action },
  resource: { type: 'doc', id: 'd1' },
  ...extra,
});
const decide = (payload: unknown) =>
  fixture.inject({ method: 'POST', url: '/v1/decisions', payload: payload as object });
const batch = (payload: unknown) =>
  fixture.inject({ method: 'POST', url: '/v1/decisions/batch', payload: payload as object });

describe('POST /v1/decisions', () => {
  it('allows what the policy allows and denies the rest, each with its record', async () => {
    const allow = await decide(envelope('read'));
    expect(allow.statusCode).toBe(200);
    expect(allow.json()).toMatchObject({ allow: true, violations: [], obligations: [], exceptions: [] });
    expect(allow.json().policy.entrypoint).toBe('verdict/decision');
    const deny = await decide(envelope('write'));
    expect(deny.statusCode).toBe(200);
    expect(deny.json()).toMatchObject({ allow: false, violations: [{ control: 'FIX-001' }] });
    expect(fixture.recorder.records.map((r) => [r.id, r.allow, r.actionName])).toEqual([
      [allow.json().decision_id, true, 'read'],
      [deny.json().decision_id, false, 'write'],
    ]);
  });

  it.each([
    ['verdict/malformed', 'malformed_result'],
    ['verdict/contradictory', 'malformed_result'],
    ['verdict/never', 'undefined_result'],
    ['verdict/conflict', undefined],
    ['verdict/echo', 'malformed_result'],
  ])('%s breaks the result contract → deny with the error recorded (fail closed)', async (policy, code) => {
    // action read: the normal entrypoint would allow it, so an allow here could only be a fail-open.
    const response = await decide(envelope('read', { policy }));
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.allow).toBe(false);
    expect(body.violations).toEqual([expect.objectContaining({ control: 'EVAL-ERROR', severity: 'high' })]);
    expect(fixture.recorder.records).toHaveLength(1);
    const record = fixture.recorder.records[0]!;
    expect(record.allow).toBe(false);
    expect(record.entrypoint).toBe(policy);
    expect(record.error).toEqual({ code: code ?? expect.any(String), message: expect.any(String) });
  });

  it('an unknown entrypoint → 404 problem unknown_entrypoint, nothing recorded', async () => {
    const response = await decide(envelope('read', { policy: 'verdict/nope' }));
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json().code).toBe('unknown_entrypoint');
    expect(fixture.recorder.records).toHaveLength(0);
  });

  it('an envelope with a missing or mistyped field → 400 invalid_request', async () => {
    for (const bad of [
      { action: { name: 'read' }, resource: { type: 'doc', id: 'd1' } },
      envelope('read', { subject: { type: 'user', id: 7 } }),
      envelope('read', { context: [] }),
      envelope('read', { policy: '../etc' }),
      { ...envelope('read'), action: { name: '' } },
    ]) {
      const response = await decide(bad);
      expect(response.statusCode, JSON.stringify(bad)).toBe(400);
      expect(response.json().code).toBe('invalid_request');
    }
    expect(fixture.recorder.records).toHaveLength(0);
  });

  it('a schema error lists every missing field, each at its own path', async () => {
    const response = await decide({ context: {} });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual(
      expect.arrayContaining(
        ['subject', 'action', 'resource'].map((field) => ({
          path: `/${field}`,
          message: `missing required property '${field}'`,
        })),
      ),
    );
  });

  it('a fixture.recorder that rejects → 503 audit_unavailable, and the allow is never answered', async () => {
    fixture.recorder.failWith = new Error('disk on fire at /var/lib/secret');
    const response = await decide(envelope('read'));
    expect(response.statusCode).toBe(503);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.headers['retry-after']).toBe('1');
    expect(response.json().code).toBe('audit_unavailable');
    expect(response.body).not.toContain('allow":true');
    expect(response.body).not.toContain('disk on fire');
  });

  it('ignores a client-sent caller and now: the policy sees the server clock and the verified caller', async () => {
    const before = Date.now();
    const response = await decide(
      envelope('read', {
        policy: 'verdict/echo',
        caller: { sub: 'attacker', scopes: ['admin'] },
        now: '1999-01-01T00:00:00Z',
      }),
    );
    expect(response.statusCode).toBe(200);
    const record = fixture.recorder.records[0]!;
    // verdict/echo returns its input: the record keeps it (as the policy saw it).
    const seen = record.input as { caller: { sub: string }; now: string; now_ns: number };
    expect(seen.caller.sub).not.toBe('attacker');
    expect(seen.caller).toEqual(record.caller);
    expect(seen.now).toBe(record.decidedAt);
    expect(Date.parse(seen.now)).toBeGreaterThanOrEqual(before - 1000);
    // The same instant in nanoseconds (issue 27: the policies compare it instead of parsing `now`).
    expect(BigInt(JSON.stringify(seen.now_ns))).toBe(BigInt(Date.parse(seen.now)) * 1_000_000n);
    expect(Object.keys(seen).sort()).toEqual(['action', 'caller', 'now', 'now_ns', 'resource', 'subject']);
  });
});

describe('POST /v1/decisions/batch', () => {
  it('answers in request order with one record per item', async () => {
    const actions = ['read', 'write', 'read', 'delete'];
    const response = await batch({ items: actions.map((a) => envelope(a)) });
    expect(response.statusCode).toBe(200);
    const results = response.json().results as { decision_id: string; allow: boolean }[];
    expect(results.map((r) => r.allow)).toEqual([true, false, true, false]);
    expect(fixture.recorder.records.map((r) => r.actionName)).toEqual(actions);
    expect(fixture.recorder.records.map((r) => r.id)).toEqual(results.map((r) => r.decision_id));
    expect(new Set(results.map((r) => r.decision_id)).size).toBe(4);
  });

  it('merges defaults into each item (an item key replaces the default key)', async () => {
    const response = await batch({
      defaults: {
        subject: { type: 'user', id: 'u9' },
        resource: { type: 'doc', id: 'd9' },
        action: { name: 'read' },
      },
      items: [{}, { action: { name: 'write' } }, { resource: { type: 'file', id: 'f1' } }],
    });
    expect(response.statusCode).toBe(200);
    expect(response.json().results.map((r: { allow: boolean }) => r.allow)).toEqual([true, false, true]);
    expect(fixture.recorder.records.map((r) => [r.subjectId, r.actionName, r.resourceType])).toEqual([
      ['u9', 'read', 'doc'],
      ['u9', 'write', 'doc'],
      ['u9', 'read', 'file'],
    ]);
  });

  it('an item may pick its own entrypoint; a broken one is a deny, the rest unaffected', async () => {
    const response = await batch({
      items: [envelope('read'), envelope('read', { policy: 'verdict/malformed' })],
    });
    expect(response.json().results.map((r: { allow: boolean }) => r.allow)).toEqual([true, false]);
    expect(fixture.recorder.records[1]!.error?.code).toBe('malformed_result');
  });

  it('more items than the limit → 400 batch_too_large; an invalid item → 400 naming it', async () => {
    const tooMany = await batch({ items: Array.from({ length: BATCH_LIMIT + 1 }, () => envelope('read')) });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().code).toBe('batch_too_large');
    const bad = await batch({ items: [envelope('read'), { subject: { type: 'user', id: 'u1' } }] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('invalid_request');
    expect(bad.json().errors[0].path).toBe('/items/1/action');
    const empty = await batch({ items: [] });
    expect(empty.statusCode).toBe(400);
    expect(fixture.recorder.records).toHaveLength(0);
  });

  it('a fixture.recorder that rejects → 503 audit_unavailable for the whole batch, no allow answered', async () => {
    fixture.recorder.failWith = new Error('nope');
    const response = await batch({ items: [envelope('read'), envelope('read')] });
    expect(response.statusCode).toBe(503);
    expect(response.json().code).toBe('audit_unavailable');
    expect(response.body).not.toContain('"allow"');
  });
});
