import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { buildTestApp, type TestToken } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

// The verified-token cache must never outlive a token: once `exp` passes (no clock-skew allowance
// here), the same header is refused even though it was accepted a moment before.
let app: App;
let token: TestToken;
beforeAll(async () => {
  ({ app, token } = await buildTestApp({
    bundlePath: contractFixtureBundle(),
    env: { JWT_CLOCK_SKEW_SECONDS: '0' },
  }));
});
afterAll(async () => app?.close());

const decide = (bearer: string) =>
  app.inject({
    method: 'POST',
    url: '/v1/decisions',
    headers: { authorization: `Bearer ${bearer}` },
    payload: {
      subject: { type: 'user', id: 'u' },
      action: { name: 'read' },
      resource: { type: 'doc', id: 'd' },
    },
  });

describe('verified-token cache', () => {
  it('serves a token again from the cache, and refuses it once it has expired', async () => {
    // exp is whole seconds: a 4 s token lives 3-4 s, time enough for the first two requests.
    const shortLived = token(['decisions:evaluate'], { ttlSeconds: 4 });
    expect((await decide(shortLived)).statusCode).toBe(200);
    expect((await decide(shortLived)).statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 5_100));
    const late = await decide(shortLived);
    expect(late.statusCode).toBe(401);
    expect(late.json().code).toBe('token_expired');
  });

  it('does not let a tampered copy of a cached token through', async () => {
    const good = token(['decisions:evaluate']);
    expect((await decide(good)).statusCode).toBe(200);
    const [header, payload, signature] = good.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${signature}`;
    expect((await decide(forged)).statusCode).toBe(401);
  });

  it('keeps the scopes of the token it caches', async () => {
    const auditOnly = token(['audit:read']);
    expect((await decide(auditOnly)).statusCode).toBe(403);
    expect((await decide(auditOnly)).statusCode).toBe(403);
  });
});
