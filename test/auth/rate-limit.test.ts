import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import type { Metrics } from '../../src/observability/metrics.ts';
import { buildTestApp, type TestToken } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { testServiceUrls } from '../support/services.ts';

// The run's Redis: TEST_REDIS_URL, a container, or the local one (test/support/services.ts).
const REDIS_URL = testServiceUrls().redisUrl;
const body = { subject: { type: 'a', id: 'b' }, action: { name: 'read' }, resource: { type: 'd', id: 'e' } };
// Closed with what the composition root opened for them (the Redis client).
const apps: { close(): Promise<unknown> }[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
});

async function limitedApp(max: number, redis?: { nameSpace: string }) {
  const built = await buildTestApp({
    bundlePath: contractFixtureBundle(),
    env: {
      VERDICT_RATE_LIMIT_MAX: String(max),
      VERDICT_RATE_LIMIT_WINDOW_MS: '60000',
      ...(redis ? { REDIS_URL } : {}),
    },
    authOverrides: redis ? { rateLimit: { max, windowMs: 60_000, nameSpace: redis.nameSpace } } : {},
  });
  apps.push(built);
  return built;
}

const decide = (app: App, token?: string, ip = '10.0.0.1') =>
  app.inject({
    method: 'POST',
    url: '/v1/decisions',
    payload: body,
    remoteAddress: ip,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });

async function expectLimitedPerCaller(app: App, token: TestToken, metrics: Metrics, max: number) {
  const alice = token(['decisions:evaluate'], { sub: 'alice' });
  const bob = token(['decisions:evaluate'], { sub: 'bob' });
  for (let i = 0; i < max; i++) expect((await decide(app, alice, `10.0.0.${i + 1}`)).statusCode).toBe(200);
  // Alice is over her budget from any address; Bob, from the same address, is not.
  const limited = await decide(app, alice, '10.9.9.9');
  expect(limited.statusCode).toBe(429);
  expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(limited.json().code).toBe('rate_limited');
  expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  expect((await decide(app, bob, '10.0.0.1')).statusCode).toBe(200);
  const counted = await metrics.registry.getSingleMetricAsString('verdict_rate_limit_rejections_total');
  expect(counted).toMatch(/route="\/v1\/decisions"\} 1/);
}

describe('rate limiting per caller', () => {
  it('in-process: per sub, 429 problem+json with Retry-After, counted in metrics', async () => {
    const { app, token, metrics } = await limitedApp(3);
    await expectLimitedPerCaller(app, token, metrics, 3);
  });

  it('before auth, per IP: a flood of missing or bad tokens is limited too', async () => {
    const { app, metrics } = await limitedApp(3);
    for (let i = 0; i < 3; i++) expect((await decide(app, `garbage-${i}`, '10.1.1.1')).statusCode).toBe(401);
    expect((await decide(app, undefined, '10.1.1.1')).statusCode).toBe(429);
    expect((await decide(app, undefined, '10.1.1.2')).statusCode).toBe(401);
    const failures = await metrics.registry.getSingleMetricAsString('verdict_auth_failures_total');
    expect(failures).toMatch(/reason="malformed_token"\} 3/);
    expect(failures).toMatch(/reason="missing_token"\} 1/);
  });

  it('probes are never throttled', async () => {
    const { app } = await limitedApp(1);
    for (let i = 0; i < 5; i++) {
      expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    }
  });

  it("OPA's GET /health is a probe too: never throttled, from one address", async () => {
    const { app, metrics } = await limitedApp(1);
    for (let i = 0; i < 5; i++) {
      const response = await app.inject({ method: 'GET', url: '/health', remoteAddress: '10.2.2.2' });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({});
    }
    const rejected = await metrics.registry.getSingleMetricAsString('verdict_rate_limit_rejections_total');
    expect(rejected).not.toMatch(/route="\/health"/);
  });

  it('Redis: the budget is shared between replicas (two apps, one store)', async () => {
    const nameSpace = `verdict-test-rl-${randomUUID()}:`;
    const probe = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await probe.connect();
      expect(await probe.ping()).toBe('PONG');
    } catch (err) {
      throw new Error(`Redis is required at ${REDIS_URL} for this test: ${(err as Error).message}`);
    }
    try {
      const one = await limitedApp(4, { nameSpace });
      // A second replica trusting the same tokens (same secret) on the same Redis prefix.
      const two = await buildTestApp({
        bundlePath: contractFixtureBundle(),
        env: { REDIS_URL },
        keys: { kind: 'secret', secret: 'x'.repeat(40), algorithms: ['HS256'] },
        authOverrides: { rateLimit: { max: 4, windowMs: 60_000, nameSpace } },
      });
      apps.push(two);
      const t1 = one.token(['decisions:evaluate'], { sub: 'carol' });
      const t2 = two.token(['decisions:evaluate'], { sub: 'carol' });
      // Wait until each replica's limiter counts in Redis (while disconnected it lets requests
      // through uncounted): a request of a warm-up caller until that caller's key appears.
      const counting = async (replica: typeof one, sub: string) => {
        const token = replica.token(['decisions:evaluate'], { sub });
        const deadline = Date.now() + 10_000;
        while ((await probe.keys(`${nameSpace}*sub:${sub}*`)).length === 0) {
          if (Date.now() > deadline) throw new Error(`the limiter of ${sub} never reached Redis`);
          await decide(replica.app, token);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      await counting(one, 'warm-up-one');
      await counting(two, 'warm-up-two');
      expect((await decide(one.app, t1)).statusCode).toBe(200);
      expect((await decide(two.app, t2)).statusCode).toBe(200);
      expect((await decide(one.app, t1)).statusCode).toBe(200);
      expect((await decide(two.app, t2)).statusCode).toBe(200);
      const limited = await decide(one.app, t1);
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['retry-after']).toBeDefined();
      expect((await decide(two.app, t2)).statusCode).toBe(429);
      const keys = await probe.keys(`${nameSpace}*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.some((k) => k.includes('sub:carol'))).toBe(true);
    } finally {
      const keys = await probe.keys(`${nameSpace}*`);
      if (keys.length > 0) await probe.del(...keys);
      probe.disconnect();
    }
  });
});

describe('the default rate limit (off, ADR 0006)', () => {
  it('does not throttle one caller making 7,000 quick decisions (the old default allowed 6,000 a minute)', async () => {
    // '' is "unset" for resolveConfig: the test app's lifted limit is replaced by the real default.
    const { app, token } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      env: { VERDICT_RATE_LIMIT_MAX: '' },
    });
    apps.push(app);
    const runtime = token(['decisions:evaluate'], { sub: 'svc-agent-runtime' });
    const statuses = new Map<number, number>();
    for (let i = 0; i < 7_000; i++) {
      const { statusCode } = await decide(app, runtime);
      statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 200: 7_000 });
  }, 60_000);

  it('an explicit VERDICT_RATE_LIMIT_MAX still limits', async () => {
    const { app, token } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      env: { VERDICT_RATE_LIMIT_MAX: '5', VERDICT_RATE_LIMIT_WINDOW_MS: '60000' },
    });
    apps.push(app);
    const runtime = token(['decisions:evaluate'], { sub: 'svc-agent-runtime' });
    for (let i = 0; i < 5; i++) expect((await decide(app, runtime)).statusCode).toBe(200);
    const limited = await decide(app, runtime);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().code).toBe('rate_limited');
  });
});
