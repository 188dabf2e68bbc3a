import { describe, expect, it } from 'vitest';
import { useContractApp } from '../support/contract-app.ts';

const fixture = useContractApp();

const subject = { type: 'user', id: 'alice' };
const resource = { type: 'doc', id: 'd1' };
const action = (name: string) => ({ name });
const post = (url: string, payload: unknown) =>
  fixture.inject({ method: 'POST', url, payload: payload as object });

describe('AuthZEN Authorization API 1.0', () => {
  it('evaluation: {decision} with our id and reasons in context', async () => {
    const allow = await post('/access/v1/evaluation', { subject, action: action('read'), resource });
    expect(allow.statusCode).toBe(200);
    expect(allow.json()).toMatchObject({ decision: true, context: { decision_id: expect.any(String) } });
    const deny = await post('/access/v1/evaluation', { subject, action: action('write'), resource });
    expect(deny.json().decision).toBe(false);
    expect(deny.json().context.reason_admin.violations).toEqual([
      expect.objectContaining({ control: 'FIX-001' }),
    ]);
    expect(fixture.recorder.records.map((r) => [r.surface, r.allow])).toEqual([
      ['authzen', true],
      ['authzen', false],
    ]);
  });

  it('evaluation: a missing subject → 400 problem, nothing recorded', async () => {
    const response = await post('/access/v1/evaluation', { action: action('read'), resource });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(fixture.recorder.records).toHaveLength(0);
  });

  const three = {
    subject,
    resource,
    evaluations: [{ action: action('read') }, { action: action('write') }, { action: action('read') }],
  };

  it('evaluations, execute_all (the default): every item decided, in order, top-level values as defaults', async () => {
    const response = await post('/access/v1/evaluations', three);
    expect(response.statusCode).toBe(200);
    expect(response.json().evaluations.map((e: { decision: boolean }) => e.decision)).toEqual([
      true,
      false,
      true,
    ]);
    expect(fixture.recorder.records.map((r) => [r.subjectId, r.actionName])).toEqual([
      ['alice', 'read'],
      ['alice', 'write'],
      ['alice', 'read'],
    ]);
    const explicit = await post('/access/v1/evaluations', {
      ...three,
      options: { evaluations_semantic: 'execute_all' },
    });
    expect(explicit.json().evaluations).toHaveLength(3);
  });

  it('evaluations, deny_on_first_deny: stops after the first deny', async () => {
    const response = await post('/access/v1/evaluations', {
      ...three,
      options: { evaluations_semantic: 'deny_on_first_deny' },
    });
    expect(response.json().evaluations.map((e: { decision: boolean }) => e.decision)).toEqual([true, false]);
    expect(fixture.recorder.records).toHaveLength(2);
  });

  it('evaluations, permit_on_first_permit: stops after the first permit', async () => {
    const response = await post('/access/v1/evaluations', {
      subject,
      resource,
      evaluations: [{ action: action('write') }, { action: action('read') }, { action: action('write') }],
      options: { evaluations_semantic: 'permit_on_first_permit' },
    });
    expect(response.json().evaluations.map((e: { decision: boolean }) => e.decision)).toEqual([false, true]);
    expect(fixture.recorder.records).toHaveLength(2);
  });

  it('evaluations without an evaluations array (or an empty one) is one evaluation, answered as one', async () => {
    for (const extra of [{}, { evaluations: [] }]) {
      const response = await post('/access/v1/evaluations', {
        subject,
        action: action('read'),
        resource,
        ...extra,
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ decision: true, context: { decision_id: expect.any(String) } });
      expect(response.json().evaluations).toBeUndefined();
    }
    expect(fixture.recorder.records).toHaveLength(2);
  });

  it('evaluations: an unknown semantic → 400; a fixture.recorder failure → 503 and no decision: true', async () => {
    const bad = await post('/access/v1/evaluations', { ...three, options: { evaluations_semantic: 'yolo' } });
    expect(bad.statusCode).toBe(400);
    fixture.recorder.failWith = new Error('down');
    const unrecorded = await post('/access/v1/evaluations', three);
    expect(unrecorded.statusCode).toBe(503);
    expect(unrecorded.json().code).toBe('audit_unavailable');
    expect(unrecorded.body).not.toContain('"decision":true');
    const single = await post('/access/v1/evaluation', { subject, action: action('read'), resource });
    expect(single.statusCode).toBe(503);
    expect(single.body).not.toContain('"decision":true');
  });

  it('/.well-known/authzen-configuration names the endpoints on this host', async () => {
    const response = await fixture.inject({
      method: 'GET',
      url: '/.well-known/authzen-configuration',
      headers: { host: 'pdp.example:8080' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      policy_decision_point: 'http://pdp.example:8080',
      access_evaluation_endpoint: 'http://pdp.example:8080/access/v1/evaluation',
      access_evaluations_endpoint: 'http://pdp.example:8080/access/v1/evaluations',
      search_subject_endpoint: 'http://pdp.example:8080/access/v1/search/subject',
    });
  });
});
