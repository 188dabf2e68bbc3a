import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import type { App } from '../../src/http/app.ts';
import { loggerOptions } from '../../src/observability/logging.ts';
import { buildTestApp, type TestToken } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { withForgedSignature } from '../support/tokens.ts';

const body = { subject: { type: 'a', id: 'b' }, action: { name: 'read' }, resource: { type: 'd', id: 'e' } };
const apps: App[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
});

/** A route that fails with an internal error carrying secrets in its message and stack. */
async function exploding(app: FastifyInstance) {
  app.get('/v1/explode', { config: { scope: 'decisions:evaluate' } }, async () => {
    throw new Error('connect ECONNREFUSED postgres://admin:hunter2@db.internal:5432');
  });
}

describe('security headers, CORS, no internals in responses', () => {
  let app: App;
  let token: TestToken;
  beforeAll(async () => {
    ({ app, token } = await buildTestApp({ bundlePath: contractFixtureBundle() }));
    apps.push(app);
  });

  it('every response carries helmet headers; the API CSP allows nothing', async () => {
    const responses = [
      await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        payload: body,
        headers: { authorization: `Bearer ${token()}` },
      }),
      await app.inject({ method: 'POST', url: '/v1/decisions', payload: body }),
      await app.inject({ method: 'GET', url: '/health/live' }),
    ];
    for (const response of responses) {
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBeDefined();
      expect(response.headers['strict-transport-security']).toContain('max-age=');
      expect(response.headers['referrer-policy']).toBe('no-referrer');
      expect(response.headers['content-security-policy']).toContain("default-src 'none'");
      expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(response.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('the /docs UI still works: its page and assets load, with a CSP that allows same-origin scripts', async () => {
    const page = await app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain("default-src 'none'");
    for (const src of page.body.matchAll(/(?:src|href)="\.\/([^"]+)"/g)) {
      const asset = await app.inject({ method: 'GET', url: `/docs/${src[1]}` });
      expect(asset.statusCode, String(src[1])).toBe(200);
    }
    const init = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
    const spec = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(spec.statusCode).toBe(200);
  });

  it('CORS is off by default: no Access-Control headers, preflights are not answered', async () => {
    const simple = await app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { origin: 'https://evil.example' },
    });
    expect(simple.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/v1/decisions',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expect(preflight.statusCode).toBeGreaterThanOrEqual(400);
  });

  it('CORS on for the configured origins only; preflights work without a token', async () => {
    const built = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      env: { VERDICT_CORS_ORIGINS: 'https://console.example.com' },
    });
    apps.push(built.app);
    const preflight = await built.app.inject({
      method: 'OPTIONS',
      url: '/v1/decisions',
      headers: {
        origin: 'https://console.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://console.example.com');
    expect(String(preflight.headers['access-control-allow-headers'])).toContain('authorization');
    const other = await built.app.inject({
      method: 'POST',
      url: '/v1/decisions',
      payload: body,
      headers: { origin: 'https://evil.example', authorization: `Bearer ${built.token()}` },
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('a 5xx shows no stack trace and no internal message', async () => {
    const { app: exploder } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      keys: { kind: 'secret', secret: 's'.repeat(40), algorithms: ['HS256'] },
      plugins: [exploding],
    });
    apps.push(exploder);
    const { mintToken } = await import('../../src/auth/dev-token.ts');
    const response = await exploder.inject({
      method: 'GET',
      url: '/v1/explode',
      headers: { authorization: `Bearer ${mintToken('s'.repeat(40))}` },
    });
    expect(response.statusCode).toBe(500);
    expect(response.json().code).toBe('internal_error');
    expect(response.body).not.toMatch(/hunter2|ECONNREFUSED|postgres|\.ts:\d+|at /);
  });
});

describe('logs never carry tokens', () => {
  it('with debug logging, a request with a valid and one with a bad token leave no token in the log', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const config = resolveConfig({ VERDICT_DATA_DIR: '/tmp/verdict-test-data', LOG_LEVEL: 'trace' });
    const secret = 'l'.repeat(40);
    // A plugin that logs the whole request the careless way: headers included.
    const careless = fp(async (app: FastifyInstance) => {
      app.addHook('onRequest', async (request) => {
        request.log.info({ req: { headers: request.headers }, headers: request.headers }, 'incoming');
      });
    });
    const { app } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      env: { LOG_LEVEL: 'trace' },
      keys: { kind: 'secret', secret, algorithms: ['HS256'] },
      logger: { ...loggerOptions(config, false), level: 'trace', stream: sink } as never,
      plugins: [careless],
    });
    apps.push(app);
    const { mintToken } = await import('../../src/auth/dev-token.ts');
    const good = mintToken(secret, { sub: 'log-test' });
    const bad = withForgedSignature(good);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/v1/decisions',
          payload: body,
          headers: { authorization: `Bearer ${good}` },
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await app.inject({
          method: 'POST',
          url: '/v1/decisions',
          payload: body,
          headers: { authorization: `Bearer ${bad}` },
        })
      ).statusCode,
    ).toBe(401);
    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(2);
    expect(log).toContain('incoming');
    expect(log).toContain('[redacted]');
    expect(log).toContain('authentication refused');
    for (const secretPart of [good, bad, good.split('.')[2] as string, secret])
      expect(log).not.toContain(secretPart);
  });
});
