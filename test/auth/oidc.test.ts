/**
 * OIDC sign-in (src/auth/oidc.ts) against a real OpenID provider run in the test: `oidc-provider` on
 * 127.0.0.1 with its development interactions (a login form that takes any name, then a consent
 * form), driven with plain HTTP — fetch and a cookie jar, the way a browser would follow it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  callerOfIdentity,
  OidcSignIn,
  type OidcSignInError,
  type PendingSignIn,
} from '../../src/auth/oidc.ts';
import { parseScopeMap, resolveOidc } from '../../src/config/oidc.ts';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.ts';

const CLIENT_ID = 'verdict-console';
const CLIENT_SECRET = 'a-client-secret-for-the-oidc-suite';
const REDIRECT_URI = 'http://127.0.0.1:9/console/callback';
const GROUPS: Record<string, string[]> = {
  alice: ['verdict-approvers', 'engineering'],
  bob: ['verdict-auditors'],
  mallory: ['contractors'],
};

/** A provider that puts groups in the ID token (Okta, Entra ID, Keycloak can be set up so). */
let issuer: string;
/** One that follows OIDC Core 5.4 strictly: scope-requested claims only at userinfo. */
let strictIssuer: string;
const providers: TestOidcProvider[] = [];

const startProvider = async (groupsInIdToken: boolean) => {
  const provider = await startOidcProvider({
    client: { id: CLIENT_ID, secret: CLIENT_SECRET, redirectUri: REDIRECT_URI },
    groups: GROUPS,
    groupsInIdToken,
    name: (id) => `${id[0]!.toUpperCase()}${id.slice(1)} Example`,
  });
  providers.push(provider);
  return provider.issuer;
};

beforeAll(async () => {
  issuer = await startProvider(true);
  strictIssuer = await startProvider(false);
});
afterAll(async () => {
  await Promise.all(providers.map((provider) => provider.close()));
});

const SCOPE_MAP = 'verdict-approvers=approvals:grant,audit:read;verdict-auditors=audit:read';

function signIn(extra: Record<string, string> = {}): OidcSignIn {
  const config = resolveOidc({
    VERDICT_OIDC_ISSUER: issuer,
    VERDICT_OIDC_CLIENT_ID: CLIENT_ID,
    VERDICT_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    VERDICT_OIDC_SCOPES: 'openid profile groups',
    VERDICT_OIDC_SCOPE_MAP: SCOPE_MAP,
    ...extra,
  });
  return new OidcSignIn(config!);
}

/**
 * Follows the authorization URL as a browser would: redirects, the login form (as `login`), the
 * consent form; returns the query the provider redirects back to REDIRECT_URI with.
 */
async function browse(url: string, login: string): Promise<URLSearchParams> {
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  let next: { url: string; method: 'GET' | 'POST'; body?: URLSearchParams } = { url, method: 'GET' };
  for (let step = 0; step < 20; step++) {
    const response = await fetch(next.url, {
      method: next.method,
      redirect: 'manual',
      headers: {
        cookie: cookieHeader(),
        ...(next.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(next.body ? { body: next.body.toString() } : {}),
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair!.indexOf('=');
      jar.set(pair!.slice(0, at), pair!.slice(at + 1));
    }
    const location = response.headers.get('location');
    if (location) {
      const target = new URL(location, next.url);
      if (target.href.startsWith(REDIRECT_URI)) return target.searchParams;
      next = { url: target.href, method: 'GET' };
      continue;
    }
    const html = await response.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    if (!response.ok || !action || !prompt)
      throw new Error(`unexpected page (${response.status}): ${html.slice(0, 300)}`);
    const body = new URLSearchParams({ prompt });
    if (prompt === 'login') {
      body.set('login', login);
      body.set('password', 'any');
    }
    next = { url: new URL(action.replaceAll('&amp;', '&'), next.url).href, method: 'POST', body };
  }
  throw new Error('too many steps');
}

async function failure(promise: Promise<unknown>): Promise<OidcSignInError> {
  try {
    await promise;
  } catch (err) {
    return err as OidcSignInError;
  }
  throw new Error('the sign-in succeeded');
}

describe('OIDC sign-in (authorization code + PKCE) against oidc-provider', () => {
  it('signs a person in as a human, with the scopes their groups map to', async () => {
    const oidc = signIn();
    const started = await oidc.startSignIn(REDIRECT_URI);
    const url = new URL(started.url);
    expect(url.origin).toBe(issuer);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('state')).toBe(started.state);
    expect(url.searchParams.get('nonce')).toBe(started.nonce);
    expect(url.href).not.toContain(started.codeVerifier);

    const identity = await oidc.finishSignIn(await browse(started.url, 'alice'), started);
    expect(identity).toMatchObject({
      sub: 'alice',
      iss: issuer,
      scopes: ['audit:read', 'approvals:grant'],
      principal_type: 'human',
      name: 'Alice Example',
      claimValues: ['verdict-approvers', 'engineering'],
    });
    expect(Date.parse(identity.expiresAt!)).toBeGreaterThan(Date.now());
    expect(callerOfIdentity(identity)).toEqual({
      sub: 'alice',
      iss: issuer,
      clientId: null,
      scopes: ['audit:read', 'approvals:grant'],
      principalType: 'human',
    });

    const bob = await oidc.startSignIn(REDIRECT_URI);
    expect((await oidc.finishSignIn(await browse(bob.url, 'bob'), bob)).scopes).toEqual(['audit:read']);
  });

  it('reads the claim from userinfo when the ID token does not carry it', async () => {
    const oidc = signIn({ VERDICT_OIDC_ISSUER: strictIssuer });
    const started = await oidc.startSignIn(REDIRECT_URI);
    const identity = await oidc.finishSignIn(await browse(started.url, 'alice'), started);
    expect(identity).toMatchObject({
      sub: 'alice',
      iss: strictIssuer,
      scopes: ['audit:read', 'approvals:grant'],
    });
  });

  it('gives no scopes to a person whose groups map to none', async () => {
    const oidc = signIn();
    const started = await oidc.startSignIn(REDIRECT_URI);
    const identity = await oidc.finishSignIn(await browse(started.url, 'mallory'), started);
    expect(identity.sub).toBe('mallory');
    expect(identity.claimValues).toEqual(['contractors']);
    expect(identity.scopes).toEqual([]);
  });

  it('refuses a callback whose state is not the sign-in’s, before the code is spent', async () => {
    const oidc = signIn();
    const started = await oidc.startSignIn(REDIRECT_URI);
    const params = await browse(started.url, 'alice');
    const err = await failure(oidc.finishSignIn(params, { ...started, state: 'another-browsers-state' }));
    expect(err.reason).toBe('state_mismatch');
    expect(err.message).toMatch(/state/);
    // The code was not exchanged: the right state still signs in.
    expect((await oidc.finishSignIn(params, started)).sub).toBe('alice');
  });

  it('refuses an ID token whose nonce is not the sign-in’s', async () => {
    const oidc = signIn();
    const started = await oidc.startSignIn(REDIRECT_URI);
    const params = await browse(started.url, 'alice');
    const err = await failure(oidc.finishSignIn(params, { ...started, nonce: 'another-nonce' }));
    expect(err.reason).toBe('nonce_mismatch');
    expect(err.message).toMatch(/nonce/);
  });

  it('refuses a code spent twice, a wrong PKCE verifier and a provider error, each by name', async () => {
    const oidc = signIn();
    const started: PendingSignIn = await oidc.startSignIn(REDIRECT_URI);
    const params = await browse(started.url, 'bob');
    await oidc.finishSignIn(params, started);
    const reused = await failure(oidc.finishSignIn(params, started));
    expect(reused.reason).toBe('token_exchange_failed');
    expect(reused.message).toMatch(/invalid_grant/);

    const other = await oidc.startSignIn(REDIRECT_URI);
    const otherParams = await browse(other.url, 'bob');
    const verifier = await failure(
      oidc.finishSignIn(otherParams, { ...other, codeVerifier: 'x'.repeat(43) }),
    );
    expect(verifier.reason).toBe('token_exchange_failed');

    const refused = await failure(
      oidc.finishSignIn({ error: 'access_denied', error_description: 'no', state: other.state }, other),
    );
    expect(refused.reason).toBe('provider_error');
    expect(refused.message).toContain('access_denied');
  });

  it('names an unreachable issuer', async () => {
    const oidc = signIn({ VERDICT_OIDC_ISSUER: 'http://127.0.0.1:9' });
    const err = await failure(oidc.startSignIn(REDIRECT_URI));
    expect(err.reason).toBe('discovery_failed');
    expect(err.message).toContain('http://127.0.0.1:9');
  });
});

describe('the sign-in configuration', () => {
  it('is off without an issuer, and has defaults', () => {
    expect(resolveOidc({})).toBeUndefined();
    expect(
      resolveOidc({ VERDICT_OIDC_ISSUER: 'https://id.example.com', VERDICT_OIDC_CLIENT_ID: 'c' }),
    ).toEqual({
      issuer: 'https://id.example.com',
      clientId: 'c',
      clientSecret: undefined,
      requestScopes: 'openid profile',
      scopeClaim: 'groups',
      scopeMap: {},
    });
  });

  it('names the variable at fault', () => {
    expect(() => resolveOidc({ VERDICT_OIDC_ISSUER: 'https://id.example.com' })).toThrow(
      /VERDICT_OIDC_CLIENT_ID: is required/,
    );
    expect(() =>
      resolveOidc({ VERDICT_OIDC_ISSUER: 'http://id.example.com', VERDICT_OIDC_CLIENT_ID: 'c' }),
    ).toThrow(/VERDICT_OIDC_ISSUER: must use https/);
    expect(() => resolveOidc({ VERDICT_OIDC_CLIENT_ID: 'c' })).toThrow(/VERDICT_OIDC_ISSUER is not/);
    expect(() => parseScopeMap('verdict-approvers')).toThrow(/VERDICT_OIDC_SCOPE_MAP/);
    expect(() => parseScopeMap('a=audit:read;a=admin')).toThrow(/mapped twice/);
    expect(() => signIn({ VERDICT_OIDC_SCOPE_MAP: 'ops=audit:reed' })).toThrow(
      /VERDICT_OIDC_SCOPE_MAP: "ops" maps to unknown scope\(s\) audit:reed/,
    );
    expect(parseScopeMap(SCOPE_MAP)).toEqual({
      'verdict-approvers': ['approvals:grant', 'audit:read'],
      'verdict-auditors': ['audit:read'],
    });
  });
});
