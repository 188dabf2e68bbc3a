import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

// The fuzzer found these: an id with a NUL reached Postgres (which refuses NUL in text) and answered
// 500. An id that cannot be one of Verdict's is a 400 before any handler runs.
let app: App;
let inject: Awaited<ReturnType<typeof buildTestApp>>['injectWithToken'];
beforeAll(async () => {
  ({ app, injectWithToken: inject } = await buildTestApp({
    bundlePath: contractFixtureBundle(),
    allRoutes: true,
  }));
});
afterAll(async () => app?.close());

describe('grant ids in paths', () => {
  const hostile = ['%00', 'a%00b', '%20', 'apr_%0A'];
  const routes = [
    ['GET', '/v1/exceptions/'],
    ['POST', '/v1/exceptions/', '/approve'],
    ['POST', '/v1/exceptions/', '/reject'],
    ['POST', '/v1/exceptions/', '/revoke'],
    ['POST', '/v1/approvals/', '/approve'],
    ['POST', '/v1/approvals/', '/deny'],
  ] as const;
  it('an id with control characters or spaces is a 400 problem, never a 500', async () => {
    for (const [method, prefix, suffix = ''] of routes) {
      for (const id of hostile) {
        const response = await inject({
          method,
          url: `${prefix}${id}${suffix}`,
          ...(method === 'POST' ? { payload: { reason: 'r' } } : {}),
        });
        expect(response.statusCode, `${method} ${prefix}${id}${suffix}`).toBe(400);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.json().code).toBe('invalid_request');
      }
      // Past Fastify's path-parameter limit the answer is 414, still a problem and never a 500.
      const long = await inject({ method, url: `${prefix}${'y'.repeat(200)}${suffix}` });
      expect(long.statusCode, `${method} ${prefix}<200 chars>${suffix}`).toBe(414);
    }
  });
});
