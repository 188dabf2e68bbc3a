import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditQueryError } from '../../src/audit/queries.ts';
import { ActivationConflictError, RevisionNotFoundError } from '../../src/bundles/lifecycle.ts';
import { DecisionUnrecordedError } from '../../src/decisions/service.ts';
import { BundleError } from '../../src/engine/bundle.ts';
import { GrantError } from '../../src/grants/grant-error.ts';
import type { App } from '../../src/http/app.ts';
import { isDomainRefusal, STATUS_OF_KIND, toProblem } from '../../src/http/errors.ts';
import { ProblemError } from '../../src/http/problem.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

const SECRET = 'postgres://verdict:hunter2@db.internal:5432/verdict';

/** A domain error as a domain folder declares one: a code and a kind, no HTTP. */
class PlantedRefusal extends Error {
  readonly code = 'planted_conflict';
  readonly kind = 'conflict';
  readonly problemExtensions = { holder: 'someone else' };
}

describe('toProblem: the one mapping from an error to a problem', () => {
  it('a domain error answers with its code, the status of its kind and its message as the detail', () => {
    const { problem, headers } = toProblem(new PlantedRefusal('someone else holds it'));
    expect(problem).toEqual({
      type: 'https://verdict.dev/problems/planted_conflict',
      title: 'Conflict',
      status: 409,
      code: 'planted_conflict',
      detail: 'someone else holds it',
      holder: 'someone else',
    });
    expect(headers).toEqual({});
  });

  it('each domain error of Verdict declares the code and status docs/api.md lists', () => {
    const cases: [Error, number, string][] = [
      [new BundleError('not a bundle', 'bundle_not_wasm'), 400, 'bundle_not_wasm'],
      [new RevisionNotFoundError('sha256:00'), 404, 'bundle_not_found'],
      [new ActivationConflictError('sha256:aa', 'sha256:bb'), 409, 'activation_conflict'],
      [new AuditQueryError('invalid_time', 'from', 'from is not a time'), 400, 'invalid_time'],
      [new GrantError('forbidden', 'not_an_approver', 'no'), 403, 'not_an_approver'],
      [new GrantError('conflict', 'exception_not_pending', 'no'), 409, 'exception_not_pending'],
      [new DecisionUnrecordedError({ cause: new Error(SECRET) }), 503, 'audit_unavailable'],
    ];
    for (const [error, status, code] of cases) {
      expect(isDomainRefusal(error), error.name).toBe(true);
      const { problem } = toProblem(error);
      expect({ status: problem.status, code: problem.code }, error.name).toEqual({ status, code });
    }
  });

  it('a conflict names both revisions; a refused parameter is named in errors[]; unavailable says when to retry', () => {
    expect(toProblem(new ActivationConflictError('sha256:aa', null)).problem).toMatchObject({
      expected_active: 'sha256:aa',
      active: null,
    });
    expect(
      toProblem(new AuditQueryError('invalid_time', 'from', 'from is not a time')).problem.errors,
    ).toEqual([{ path: '/from', message: 'from is not a time' }]);
    const unrecorded = toProblem(new DecisionUnrecordedError({ cause: new Error(SECRET) }));
    expect(unrecorded.headers).toEqual({ 'retry-after': '1' });
    expect(JSON.stringify(unrecorded.problem)).not.toContain('hunter2');
  });

  it('an unknown error is a 500 internal_error that says nothing of it', () => {
    for (const error of [
      new Error(SECRET),
      new TypeError(SECRET),
      SECRET,
      null,
      { code: 'x', kind: 'conflict' },
    ]) {
      const { problem } = toProblem(error);
      expect(problem).toEqual({
        type: 'https://verdict.dev/problems/internal_error',
        title: 'Internal Server Error',
        status: 500,
        code: 'internal_error',
        detail: 'an internal error occurred; it was logged',
      });
    }
  });

  it('an error with a code but a kind it does not know is not a refusal (Node errors carry codes too)', () => {
    const node = Object.assign(new Error(SECRET), { code: 'ECONNREFUSED' });
    const odd = Object.assign(new Error(SECRET), { code: 'x', kind: 'teapot' });
    expect(isDomainRefusal(node)).toBe(false);
    expect(isDomainRefusal(odd)).toBe(false);
    expect(toProblem(odd).problem.status).toBe(500);
  });

  it('every kind maps to a client error or 503, never to another 5xx', () => {
    for (const status of Object.values(STATUS_OF_KIND)) {
      expect(status === 503 || (status >= 400 && status < 500)).toBe(true);
    }
  });

  it("the HTTP layer's own ProblemError keeps its status, code, extras and headers", () => {
    const mapped = toProblem(
      new ProblemError(429, 'rate_limited', 'slow down', { limit: 5 }, { 'retry-after': '3' }),
    );
    expect(mapped.problem).toMatchObject({
      status: 429,
      code: 'rate_limited',
      detail: 'slow down',
      limit: 5,
    });
    expect(mapped.headers).toEqual({ 'retry-after': '3' });
  });
});

describe('every route answers errors through the mapper', () => {
  let app: App;
  let inject: Awaited<ReturnType<typeof buildTestApp>>['injectWithToken'];
  async function planted(scope: FastifyInstance) {
    const config = { scope: 'decisions:evaluate' as const };
    scope.get('/v1/planted/refusal', { config }, async () => {
      throw new PlantedRefusal('someone else holds it');
    });
    scope.get('/v1/planted/bug', { config }, async () => {
      throw new Error(SECRET);
    });
  }
  beforeAll(async () => {
    ({ app, injectWithToken: inject } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      plugins: [planted],
    }));
  });
  afterAll(async () => app?.close());

  it('a domain error thrown by a handler is application/problem+json with its code and status', async () => {
    const response = await inject({ method: 'GET', url: '/v1/planted/refusal' });
    expect(response.statusCode).toBe(409);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(response.json()).toMatchObject({ code: 'planted_conflict', holder: 'someone else' });
  });

  it('an unknown error is a 500 problem with no internal message', async () => {
    const response = await inject({ method: 'GET', url: '/v1/planted/bug' });
    expect(response.statusCode).toBe(500);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(response.json().code).toBe('internal_error');
    expect(response.body).not.toContain('hunter2');
  });
});
