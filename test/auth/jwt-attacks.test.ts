import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicKeySource } from '../../src/auth/keys.ts';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

const ISSUER = 'https://idp.example.test/';
const AUDIENCE = 'verdict';
const env = { JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_CLOCK_SKEW_SECONDS: '30' };
const body = {
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'read' },
  resource: { type: 'doc', id: 'd1' },
};
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
async function sign(
  key: Key,
  alg: string,
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({ scope: 'decisions:evaluate', ...claims })
    .setProtectedHeader({ alg, ...header })
    .setSubject((claims.sub as string) ?? 'svc-agent-runtime')
    .setIssuer((claims.iss as string) ?? ISSUER)
    .setAudience((claims.aud as string) ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime((claims.exp as number) ?? now() + 300)
    .sign(key);
}

async function decide(app: App, token?: string) {
  return app.inject({
    method: 'POST',
    url: '/v1/decisions',
    payload: body,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
}

/** Expects a refusal: status, problem+json, stable code, RFC 6750 challenge, nothing internal. */
function expectRefused(
  response: Awaited<ReturnType<typeof decide>>,
  status: number,
  code: string,
  reason?: string,
) {
  expect(response.statusCode).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json();
  expect(problem.code).toBe(code);
  if (reason) expect(problem.reason).toBe(reason);
  expect(JSON.stringify(problem)).not.toMatch(/at .*\.(ts|js):\d+|FAST_JWT|FST_JWT/);
  if (status === 401) {
    expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="verdict"/);
    if (code !== 'missing_token')
      expect(response.headers['www-authenticate']).toContain('error="invalid_token"');
  }
}

describe('JWT attacks against a PEM public key (RS256 pinned)', () => {
  let app: App;
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let pem: string;
  beforeAll(async () => {
    rsa = await generateKeyPair('RS256', { modulusLength: 2048 });
    pem = await exportSPKI(rsa.publicKey);
    ({ app } = await buildTestApp({ bundlePath: contractFixtureBundle(), env, keys: publicKeySource(pem) }));
  });
  afterAll(async () => app.close());

  it('a valid RS256 token is accepted (control)', async () => {
    const response = await decide(app, await sign(rsa.privateKey, 'RS256'));
    expect(response.statusCode).toBe(200);
    expect(response.json().allow).toBe(true);
  });

  it('no token → 401 missing_token with a bare Bearer challenge', async () => {
    const response = await decide(app);
    expectRefused(response, 401, 'missing_token');
    expect(response.headers['www-authenticate']).toBe('Bearer realm="verdict"');
  });

  it('a malformed Bearer Authorization header → 400 invalid_authorization_header', async () => {
    for (const authorization of ['Bearer a b', 'Bearer', 'Bearer ', 'Bearer  token', 'Bearer\ttoken']) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        payload: body,
        headers: { authorization },
      });
      expect(response.statusCode, authorization).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json().code).toBe('invalid_authorization_header');
      expect(response.headers['www-authenticate']).toContain('error="invalid_request"');
    }
  });

  it('a non-Bearer Authorization header (Basic, Token, …) → 400 invalid_authorization_header', async () => {
    const valid = await sign(rsa.privateKey, 'RS256');
    for (const authorization of [
      'Basic dXNlcjpwYXNz',
      `Token ${valid}`,
      `JWT ${valid}`,
      valid,
      'Digest x=1',
    ]) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        payload: body,
        headers: { authorization },
      });
      expect(response.statusCode, authorization.slice(0, 12)).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json().code).toBe('invalid_authorization_header');
      expect(response.headers['www-authenticate']).toContain('error="invalid_request"');
    }
    // The scheme is case-insensitive (RFC 7235): a valid token under "bearer" is accepted.
    const lower = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      payload: body,
      headers: { authorization: `bearer ${valid}` },
    });
    expect(lower.statusCode).toBe(200);
  });

  it("on the OPA data API a non-Bearer header is a 400 in OPA's shape, with Verdict's code alongside", async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/data/verdict/decision',
      payload: { input: body },
      headers: { authorization: 'Basic dXNlcjpwYXNz' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({
      code: 'invalid_parameter',
      verdict_code: 'invalid_authorization_header',
    });
    expect(typeof response.json().message).toBe('string');
  });

  it('alg none (unsigned) → 401 invalid_token', async () => {
    const payload = { sub: 'attacker', iss: ISSUER, aud: AUDIENCE, exp: now() + 300, scope: 'admin' };
    for (const alg of ['none', 'None', 'NONE']) {
      expectRefused(await decide(app, `${b64({ alg, typ: 'JWT' })}.${b64(payload)}.`), 401, 'invalid_token');
    }
  });

  it('HS256 signed with the RSA public key as the HMAC secret (alg confusion) → 401 invalid_token', async () => {
    const payload = { sub: 'attacker', iss: ISSUER, aud: AUDIENCE, exp: now() + 300, scope: 'admin' };
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
    for (const secret of [pem, pem.trim(), Buffer.from(pem)]) {
      const signature = createHmac('sha256', secret).update(input).digest('base64url');
      expectRefused(
        await decide(app, `${input}.${signature}`),
        401,
        'invalid_token',
        'algorithm_not_allowed',
      );
    }
  });

  it('another asymmetric algorithm (ES256) on an RS256-pinned key → 401', async () => {
    const ec = await generateKeyPair('ES256');
    expectRefused(
      await decide(app, await sign(ec.privateKey, 'ES256')),
      401,
      'invalid_token',
      'algorithm_not_allowed',
    );
  });

  it('expired beyond the clock skew → 401 token_expired; within the skew → accepted', async () => {
    const expired = await sign(rsa.privateKey, 'RS256', { exp: now() - 120 });
    expectRefused(await decide(app, expired), 401, 'token_expired');
    const justExpired = await sign(rsa.privateKey, 'RS256', { exp: now() - 5 });
    expect((await decide(app, justExpired)).statusCode).toBe(200);
  });

  it('not yet valid (nbf in the future) → 401 invalid_token', async () => {
    const early = await sign(rsa.privateKey, 'RS256', { nbf: now() + 600 });
    expectRefused(await decide(app, early), 401, 'invalid_token', 'token_not_yet_valid');
  });

  it('wrong issuer → 401; wrong audience → 401', async () => {
    const iss = await sign(rsa.privateKey, 'RS256', { iss: 'https://evil.example.test/' });
    expectRefused(await decide(app, iss), 401, 'invalid_token', 'wrong_issuer');
    const aud = await sign(rsa.privateKey, 'RS256', { aud: 'some-other-api' });
    expectRefused(await decide(app, aud), 401, 'invalid_token', 'wrong_audience');
  });

  it('a tampered payload (scope raised to admin, signature kept) → 401', async () => {
    const [header, payload, signature] = (await sign(rsa.privateKey, 'RS256')).split('.');
    const claims = JSON.parse(Buffer.from(payload as string, 'base64url').toString());
    const tampered = `${header}.${b64({ ...claims, scope: 'admin', sub: 'root' })}.${signature}`;
    expectRefused(await decide(app, tampered), 401, 'invalid_token', 'bad_signature');
  });

  it('signed by another RSA key → 401; a token without exp or sub → 401', async () => {
    const other = await generateKeyPair('RS256');
    expectRefused(
      await decide(app, await sign(other.privateKey, 'RS256')),
      401,
      'invalid_token',
      'bad_signature',
    );
    const noExp = await new SignJWT({ scope: 'decisions:evaluate' })
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject('svc')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .sign(rsa.privateKey);
    expectRefused(await decide(app, noExp), 401, 'invalid_token');
    const noSub = await new SignJWT({ scope: 'decisions:evaluate' })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(rsa.privateKey);
    expectRefused(await decide(app, noSub), 401, 'invalid_token');
  });

  it('garbage tokens → 401 invalid_token, never a 500', async () => {
    for (const token of ['x', 'a.b.c', '....', `${b64({ alg: 'RS256' })}.${b64('str')}.AAAA`, 'é.é.é']) {
      expectRefused(await decide(app, token), 401, 'invalid_token');
    }
  });

  it('a valid token without the route scope → 403 insufficient_scope', async () => {
    const token = await sign(rsa.privateKey, 'RS256', { scope: 'audit:read bundles:read' });
    const response = await decide(app, token);
    expect(response.statusCode).toBe(403);
    expect(response.json()).toMatchObject({
      code: 'insufficient_scope',
      required_scope: 'decisions:evaluate',
    });
    expect(response.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(response.headers['www-authenticate']).toContain('scope="decisions:evaluate"');
  });
});

/** A local JWKS endpoint on 127.0.0.1 whose key set and availability a test changes at will. */
async function startJwks() {
  const state = { keys: [] as JWK[], hits: 0, down: false };
  const server: Server = createServer((_req, res) => {
    state.hits += 1;
    if (state.down) {
      res.writeHead(503).end('{}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tenant/keys.json`;
  return { state, url, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('JWKS: kid lookup, pinned algorithms, rotation, refetch budget', () => {
  const keys: Record<string, Awaited<ReturnType<typeof generateKeyPair>>> = {};
  const jwk = async (kid: string, alg: string): Promise<JWK> => ({
    ...(await exportJWK(keys[kid]!.publicKey)),
    kid,
    alg,
    use: 'sig',
  });
  const jwksApps: { app: App; close: () => Promise<unknown> }[] = [];
  async function jwksApp(initial: JWK[], cacheTtlMs = 300) {
    const jwks = await startJwks();
    jwks.state.keys = initial;
    const { app } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      env: { ...env, JWT_JWKS_URL: jwks.url },
      authOverrides: { jwks: { cacheTtlMs, refetchBurst: 3, refetchIntervalMs: 60_000 } },
    });
    jwksApps.push({ app, close: jwks.close });
    return { app, jwks };
  }
  beforeAll(async () => {
    keys.a = await generateKeyPair('RS256');
    keys.b = await generateKeyPair('RS256');
    keys.ec = await generateKeyPair('ES256');
    keys.ed = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  });
  afterAll(async () => {
    for (const { app, close } of jwksApps) {
      await app.close();
      await close();
    }
  });

  it('RS256, ES256 and EdDSA keys are found by kid and accepted; a kid is fetched once, then cached', async () => {
    const { app, jwks } = await jwksApp(
      [await jwk('a', 'RS256'), await jwk('ec', 'ES256'), await jwk('ed', 'EdDSA')],
      60_000,
    );
    expect((await decide(app, await sign(keys.a!.privateKey, 'RS256', {}, { kid: 'a' }))).statusCode).toBe(
      200,
    );
    expect((await decide(app, await sign(keys.ec!.privateKey, 'ES256', {}, { kid: 'ec' }))).statusCode).toBe(
      200,
    );
    expect((await decide(app, await sign(keys.ed!.privateKey, 'EdDSA', {}, { kid: 'ed' }))).statusCode).toBe(
      200,
    );
    const before = jwks.state.hits;
    for (let i = 0; i < 5; i++) {
      expect((await decide(app, await sign(keys.a!.privateKey, 'RS256', {}, { kid: 'a' }))).statusCode).toBe(
        200,
      );
    }
    expect(jwks.state.hits).toBe(before);
  });

  it('HS256 naming a real kid, or an alg that does not match the key type → 401 algorithm_not_allowed', async () => {
    // No `alg` in the JWK: the key's type alone must pin the algorithm.
    const { alg: _alg, ...bare } = await jwk('a', 'RS256');
    const { app } = await jwksApp([bare], 60_000);
    const payload = { sub: 'x', iss: ISSUER, aud: AUDIENCE, exp: now() + 300, scope: 'admin' };
    const input = `${b64({ alg: 'HS256', kid: 'a' })}.${b64(payload)}`;
    const publicJwk = JSON.stringify(await jwk('a', 'RS256'));
    const forged = `${input}.${createHmac('sha256', publicJwk).update(input).digest('base64url')}`;
    expectRefused(await decide(app, forged), 401, 'invalid_token', 'algorithm_not_allowed');
    const mismatched = await sign(keys.ec!.privateKey, 'ES256', {}, { kid: 'a' });
    expectRefused(await decide(app, mismatched), 401, 'invalid_token', 'algorithm_not_allowed');
    const noKid = await sign(keys.a!.privateKey, 'RS256');
    expectRefused(await decide(app, noKid), 401, 'invalid_token', 'unknown_key');
  });

  it('unknown kids → 401 unknown_key; a flood of random kids costs the JWKS at most the refetch burst', async () => {
    const { app, jwks } = await jwksApp([await jwk('a', 'RS256')]);
    const attacker = await generateKeyPair('RS256');
    for (let i = 0; i < 25; i++) {
      const token = await sign(attacker.privateKey, 'RS256', {}, { kid: `random-${randomUUID()}` });
      expectRefused(await decide(app, token), 401, 'invalid_token', 'unknown_key');
    }
    expect(jwks.state.hits).toBeLessThanOrEqual(3);
    expect(jwks.state.hits).toBeGreaterThan(0);
  });

  it('rotation: the new key is accepted at once; the old key is refused once its cache entry expires', async () => {
    const { app, jwks } = await jwksApp([await jwk('a', 'RS256')]);
    const oldToken = await sign(keys.a!.privateKey, 'RS256', {}, { kid: 'a' });
    expect((await decide(app, oldToken)).statusCode).toBe(200);
    jwks.state.keys = [await jwk('b', 'RS256')];
    const newToken = await sign(keys.b!.privateKey, 'RS256', {}, { kid: 'b' });
    expect((await decide(app, newToken)).statusCode).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expectRefused(await decide(app, oldToken), 401, 'invalid_token', 'unknown_key');
    expect((await decide(app, newToken)).statusCode).toBe(200);
  });

  it('JWKS down: a cached key keeps working; a never-seen kid → 503 auth_unavailable (not an allow)', async () => {
    const { app, jwks } = await jwksApp([await jwk('a', 'RS256')]);
    const token = await sign(keys.a!.privateKey, 'RS256', {}, { kid: 'a' });
    expect((await decide(app, token)).statusCode).toBe(200);
    jwks.state.down = true;
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await decide(app, token)).statusCode).toBe(200);
    const unseen = await sign(keys.b!.privateKey, 'RS256', {}, { kid: 'b' });
    const response = await decide(app, unseen);
    expect(response.statusCode).toBe(503);
    expect(response.json().code).toBe('auth_unavailable');
    expect(response.headers['retry-after']).toBeDefined();
  });
});
