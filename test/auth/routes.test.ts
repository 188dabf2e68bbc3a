import { createDecoder, createSigner } from 'fast-jwt';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { callerFromClaims, ROUTE_SCOPES, scopesOf } from '../../src/auth/caller.ts';
import { devTokenBanner, mintToken } from '../../src/auth/dev-token.ts';
import type { KeySource } from '../../src/auth/keys.ts';
import { PUBLIC_ROUTES } from '../../src/auth/routes.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import type { App } from '../../src/http/app.ts';
import { buildTestApp, type TestToken } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

const body = {
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'read' },
  resource: { type: 'doc', id: 'd1' },
};

/** A route a careless plugin registers without a scope: must not be open. */
async function forgottenScope(app: FastifyInstance) {
  app.get('/v1/internal/forgotten', async () => ({ secret: 'should-not-leak' }));
}

let app: App;
let recorder: MemoryRecorder;
let token: TestToken;
let keys: KeySource;
beforeAll(async () => {
  keys = { kind: 'secret', secret: 'routes-test-secret-0123456789abcdef', algorithms: ['HS256'] };
  // With an extra unscoped route, the way a later plugin would add one; the auditor, bundle, waiver
  // and approval routes are registered so that their scopes count (no test here calls them).
  const built = await buildTestApp({
    bundlePath: contractFixtureBundle(),
    keys,
    plugins: [forgottenScope],
    allRoutes: true,
  });
  ({ app, token } = built);
  recorder = built.recorder as MemoryRecorder;
});
afterAll(async () => app.close());

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('route protection', () => {
  it('every route of the real app is public-listed or declares a scope (none falls back to admin-only)', () => {
    const routes = app.routeProtection().filter((r) => r.url !== '/v1/internal/forgotten');
    expect(routes.length).toBeGreaterThan(10);
    const unguarded = routes.filter((r) => r.protection.kind === 'unscoped');
    expect(unguarded).toEqual([]);
    const decisions = routes.find((r) => r.url === '/v1/decisions' && r.method === 'POST');
    expect(decisions?.protection).toEqual({ kind: 'scope', scope: 'decisions:evaluate' });
    for (const url of ['/openapi.json', '/docs', '/.well-known/authzen-configuration']) {
      expect(routes.find((r) => r.url === url)?.protection.kind).toBe('public');
    }
  });

  it('the scopes routes declare are exactly ROUTE_SCOPES, and the development token carries only those (and admin)', () => {
    const declared = new Set(
      app
        .routeProtection()
        .flatMap((r) => (r.protection.kind === 'scope' ? [r.protection.scope].flat() : [])),
    );
    expect([...declared].sort()).toEqual([...ROUTE_SCOPES].sort());
    expect(declared).toContain('audit:read');
    const decode = createDecoder();
    const secret = 'dev-token-scopes-secret-0123456789abcdef';
    const minted = String(decode(mintToken(secret)).scope).split(' ');
    expect(minted.filter((s) => s !== 'admin').sort()).toEqual([...declared].sort());
    const config = resolveConfig({ VERDICT_DATA_DIR: '/tmp/verdict-test-data' });
    const banner = devTokenBanner(config, {
      keys: { kind: 'secret', secret, algorithms: ['HS256'] },
      devSecretFile: '/tmp/verdict-test-data/dev-jwt-secret',
    });
    const bannerToken = /export TOKEN=(\S+)/.exec(banner)?.[1] as string;
    const bannerScopes = String(decode(bannerToken).scope).split(' ');
    expect(bannerScopes.filter((s) => s !== 'admin').sort()).toEqual([...declared].sort());
    for (const scope of ['bundles:write', 'exceptions:request', 'exceptions:approve', 'approvals:grant']) {
      expect(declared).toContain(scope);
    }
  });

  it('GET / points to the API description, without a token', async () => {
    const response = await app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ docs: '/docs', openapi: '/openapi.json' });
  });

  it('public routes answer without a token', async () => {
    for (const url of [
      '/',
      '/health/live',
      '/health/ready',
      '/metrics',
      '/openapi.json',
      '/.well-known/authzen-configuration',
    ]) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(200);
    }
    expect(PUBLIC_ROUTES).toContain('/metrics');
  });

  it('a route registered without a scope fails closed: 401 without a token, 403 without admin, 200 with admin', async () => {
    const url = '/v1/internal/forgotten';
    expect(app.routeProtection().find((r) => r.url === url)?.protection.kind).toBe('unscoped');
    const anonymous = await app.inject({ method: 'GET', url });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.body).not.toContain('should-not-leak');
    const evaluator = await app.inject({
      method: 'GET',
      url,
      headers: bearer(token(['decisions:evaluate'])),
    });
    expect(evaluator.statusCode).toBe(403);
    expect(evaluator.json()).toMatchObject({ code: 'insufficient_scope', required_scope: 'admin' });
    const admin = await app.inject({ method: 'GET', url, headers: bearer(token(['admin'])) });
    expect(admin.statusCode).toBe(200);
  });

  it('unknown routes answer 404 with or without a token (the route table is public anyway)', async () => {
    const anonymous = await app.inject({ method: 'GET', url: '/v1/secret-admin-console' });
    expect(anonymous.statusCode).toBe(404);
    expect(anonymous.json().code).toBe('not_found');
    const known = await app.inject({
      method: 'GET',
      url: '/v1/secret-admin-console',
      headers: bearer(token()),
    });
    expect(known.statusCode).toBe(404);
  });

  it('path tricks do not reach a protected handler through a public prefix', async () => {
    for (const url of ['/health/../v1/decisions', '/health/%2e%2e/v1/decisions', '/docs/../v1/decisions']) {
      const response = await app.inject({ method: 'POST', url, payload: body });
      expect([401, 404], url).toContain(response.statusCode);
      expect(recorder.records).toHaveLength(0);
    }
  });
});

describe('scopes', () => {
  it('scope (space-separated) and scp (array) both grant; admin implies every scope; unknown names grant nothing', async () => {
    expect(scopesOf({ scope: 'decisions:evaluate audit:read  bogus' })).toEqual([
      'decisions:evaluate',
      'audit:read',
    ]);
    // A name that is no scope of Verdict's (policies:write) grants nothing either.
    expect(scopesOf({ scp: ['audit:read', 42, 'root', 'policies:write'] })).toEqual(['audit:read']);
    const secret = keys.kind === 'secret' ? keys.secret : '';
    const scpToken = createSigner({ key: secret, algorithm: 'HS256', expiresIn: 60_000, sub: 'okta-app' })({
      scp: ['decisions:evaluate'],
    });
    const decideAs = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/v1/decisions', payload: body, headers });
    const viaScp = await decideAs(bearer(scpToken));
    expect(viaScp.statusCode).toBe(200);

    const viaScope = await decideAs(bearer(token(['decisions:evaluate'])));
    expect(viaScope.statusCode).toBe(200);
    const viaAdmin = await decideAs(bearer(token(['admin'])));
    expect(viaAdmin.statusCode).toBe(200);
    const wrong = await decideAs(bearer(token(['audit:read'])));
    expect(wrong.statusCode).toBe(403);
    const none = await decideAs(bearer(token([])));
    expect(none.statusCode).toBe(403);
  });

  it('the caller is built from verified claims: sub, iss, client_id or azp, known scopes', () => {
    expect(
      callerFromClaims({ sub: 's', iss: 'i', azp: 'app', scp: ['audit:read'], scope: 'decisions:evaluate' }),
    ).toEqual({ sub: 's', iss: 'i', clientId: 'app', scopes: ['decisions:evaluate', 'audit:read'] });
    expect(callerFromClaims({ sub: 's', client_id: 'c', azp: 'app' }).clientId).toBe('c');
  });
});

describe('caller spoofing', () => {
  it('a caller in the body never reaches the policy input or the record: the token does', async () => {
    recorder.records.length = 0;
    const spoof = { sub: 'root', iss: 'https://evil.example', clientId: 'evil', scopes: ['admin'] };
    const agentToken = token(['decisions:evaluate'], { sub: 'svc-agent-runtime', clientId: 'runtime-7' });
    const native = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      payload: { ...body, caller: spoof, now: '1999-01-01T00:00:00Z' },
      headers: bearer(agentToken),
    });
    expect(native.statusCode).toBe(200);
    const authzen = await app.inject({
      method: 'POST',
      url: '/access/v1/evaluation',
      payload: { ...body, caller: spoof },
      headers: bearer(agentToken),
    });
    expect(authzen.statusCode).toBe(200);
    expect(recorder.records).toHaveLength(2);
    for (const record of recorder.records) {
      const expected = {
        sub: 'svc-agent-runtime',
        iss: null,
        clientId: 'runtime-7',
        scopes: ['decisions:evaluate'],
      };
      expect(record.caller).toEqual(expected);
      // What the policy saw (the stored input is the policy input after masking).
      expect((record.input as { caller: unknown }).caller).toEqual(expected);
      expect((record.input as { now: string }).now).not.toBe('1999-01-01T00:00:00Z');
      expect(JSON.stringify(record)).not.toContain('evil');
    }
  });
});
