/**
 * Sign-in with OpenID Connect for the console (issue 24): the authorization code flow with PKCE,
 * through `openid-client` (discovery, the token exchange, ID-token validation: signature, issuer,
 * audience, expiry, nonce). The console owns the routes and the session; this module owns the flow
 * and the mapping from an ID-token claim (e.g. `groups`) to Verdict's scopes. A person signed in
 * this way is a human principal (`principal_type: "human"`): they may approve agent actions when
 * the mapping gives them `approvals:grant`.
 */
import { timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import { ConfigError } from '../config/env.ts';
import type { OidcConfig } from '../config/oidc.ts';
import type { Caller } from '../decisions/types.ts';
import { SCOPES, type Scope } from './caller.ts';

/** Why a sign-in failed; `message` says what was wrong, for the log and the console's error page. */
export type OidcFailure =
  | 'discovery_failed' // the issuer's discovery document could not be read
  | 'provider_error' // the provider answered the callback with `error` (e.g. access_denied)
  | 'state_mismatch' // the callback's state is not the one this browser's sign-in started with
  | 'missing_code' // the callback carries no authorization code
  | 'nonce_mismatch' // the ID token's nonce is not the one this sign-in sent
  | 'token_exchange_failed' // the provider refused the code (expired, reused, wrong PKCE verifier)
  | 'id_token_invalid' // no ID token, or it failed validation (signature, issuer, audience, expiry)
  | 'no_subject'; // the ID token names nobody

/** A failed sign-in. */
export class OidcSignInError extends Error {
  override readonly name = 'OidcSignInError';
  readonly reason: OidcFailure;
  constructor(reason: OidcFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** What a started sign-in must keep (server side, in the pre-login session) until its callback. */
export interface PendingSignIn {
  /** Where to send the browser: the provider's authorization endpoint with this request. */
  url: string;
  state: string;
  /** The PKCE verifier (never leaves the server). */
  codeVerifier: string;
  nonce: string;
  /** The callback URL this sign-in was started for (the token request names it again). */
  redirectUri: string;
}

/** A person signed in with OIDC. */
export interface OidcIdentity {
  sub: string;
  iss: string;
  /** Verdict scopes from the scope claim through VERDICT_OIDC_SCOPE_MAP; [] when no value maps. */
  scopes: Scope[];
  principal_type: 'human';
  /** For display: `name`, else `preferred_username`, else `email`, else `sub`. */
  name: string;
  /** The scope claim's values as the provider sent them (for the console's "why these scopes"). */
  claimValues: string[];
  /**
   * When the ID token expires (ISO 8601), for information: an ID token's lifetime is how long it may
   * be presented, not how long a console session lasts (the console's idle and absolute limits).
   */
  expiresAt: string | null;
}

/** Options of `OidcSignIn` beyond the configuration (tests). */
export interface OidcSignInOptions {
  /** Timeout of each request to the provider; default 5000 ms. */
  timeoutMs?: number;
}

function stringValues(value: unknown): string[] {
  if (typeof value === 'string') return value === '' ? [] : [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v !== '');
  return [];
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Checks VERDICT_OIDC_SCOPE_MAP's scope names against Verdict's scopes; an unknown name is a start
 * error (a typo would otherwise silently grant nothing).
 */
export function checkedScopeMap(map: Readonly<Record<string, readonly string[]>>): Map<string, Scope[]> {
  const known = new Set<string>(SCOPES);
  const checked = new Map<string, Scope[]>();
  for (const [value, scopes] of Object.entries(map)) {
    const unknown = scopes.filter((s) => !known.has(s));
    if (unknown.length > 0) {
      throw new ConfigError(
        'VERDICT_OIDC_SCOPE_MAP',
        `"${value}" maps to unknown scope(s) ${unknown.join(', ')} (known: ${SCOPES.join(', ')})`,
      );
    }
    checked.set(value, scopes as Scope[]);
  }
  return checked;
}

/** The scopes the claim's values map to: the union, in SCOPES order; unknown values give nothing. */
export function scopesForClaim(
  map: ReadonlyMap<string, readonly Scope[]>,
  values: readonly string[],
): Scope[] {
  const granted = new Set<Scope>();
  for (const value of values) for (const scope of map.get(value) ?? []) granted.add(scope);
  return SCOPES.filter((s) => granted.has(s));
}

/**
 * The OIDC sign-in of one deployment. Discovery happens on first use (and again after a failure),
 * so a provider that is down at start does not stop Verdict from starting.
 */
export class OidcSignIn {
  private readonly config: OidcConfig;
  private readonly scopeMap: Map<string, Scope[]>;
  private readonly timeoutMs: number;
  private discovered: Promise<oidc.Configuration> | undefined;

  constructor(config: OidcConfig, options: OidcSignInOptions = {}) {
    this.config = config;
    this.scopeMap = checkedScopeMap(config.scopeMap);
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  private configuration(): Promise<oidc.Configuration> {
    if (!this.discovered) {
      const { issuer, clientId, clientSecret } = this.config;
      const url = new URL(issuer);
      const pending = oidc
        .discovery(
          url,
          clientId,
          undefined,
          clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret),
          {
            timeout: Math.ceil(this.timeoutMs / 1000),
            // http is accepted by the configuration only on a loopback address (development, tests).
            ...(url.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
          },
        )
        .catch((err: unknown) => {
          this.discovered = undefined;
          throw new OidcSignInError(
            'discovery_failed',
            `cannot read the discovery document of ${issuer}: ${(err as Error).message}`,
            { cause: err },
          );
        });
      this.discovered = pending;
    }
    return this.discovered;
  }

  /**
   * Starts a sign-in: a fresh state, nonce and PKCE verifier, and the URL to redirect the browser
   * to. Keep the whole answer server side (never in a cookie the browser can rewrite) until the
   * callback.
   */
  async startSignIn(redirectUri: string): Promise<PendingSignIn> {
    const configuration = await this.configuration();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: redirectUri,
      scope: this.config.requestScopes,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, state, codeVerifier, nonce, redirectUri };
  }

  /**
   * Finishes a sign-in from the callback's query parameters and what `startSignIn` answered: checks
   * the state, exchanges the code (with the PKCE verifier), validates the ID token (nonce included)
   * and maps the scope claim to scopes. The claim is read from the ID token, or from the userinfo
   * endpoint when the ID token does not carry it (providers that put only `sub` in ID tokens).
   * Throws `OidcSignInError`.
   */
  async finishSignIn(
    params: URLSearchParams | Record<string, string>,
    saved: Pick<PendingSignIn, 'state' | 'codeVerifier' | 'nonce' | 'redirectUri'>,
  ): Promise<OidcIdentity> {
    const query = params instanceof URLSearchParams ? params : new URLSearchParams(params);
    const error = query.get('error');
    if (error !== null) {
      const description = query.get('error_description');
      throw new OidcSignInError(
        'provider_error',
        `the identity provider refused the sign-in: ${error}${description ? ` (${description})` : ''}`,
      );
    }
    const state = query.get('state');
    if (state === null || !sameText(state, saved.state)) {
      throw new OidcSignInError(
        'state_mismatch',
        state === null
          ? 'the callback carries no state'
          : 'the callback state is not the one this sign-in started with (a stale or forged callback)',
      );
    }
    if (!query.get('code'))
      throw new OidcSignInError('missing_code', 'the callback carries no authorization code');
    const configuration = await this.configuration();
    const callbackUrl = new URL(saved.redirectUri);
    callbackUrl.search = query.toString();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: saved.codeVerifier,
        expectedState: saved.state,
        expectedNonce: saved.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw this.exchangeError(err);
    }
    const claims = tokens.claims();
    if (!claims) throw new OidcSignInError('id_token_invalid', 'the provider answered no ID token');
    if (typeof claims.sub !== 'string' || claims.sub === '') {
      throw new OidcSignInError('no_subject', 'the ID token names no subject (sub)');
    }
    let values: unknown = claims[this.config.scopeClaim];
    if (values === undefined && configuration.serverMetadata().userinfo_endpoint) {
      // NOTE: fetchUserInfo checks that the userinfo's sub is the ID token's.
      const info = await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub).catch(() => ({}));
      values = (info as Record<string, unknown>)[this.config.scopeClaim];
    }
    const claimValues = stringValues(values);
    const name = [claims.name, claims.preferred_username, claims.email].find(
      (v): v is string => typeof v === 'string' && v !== '',
    );
    return {
      sub: claims.sub,
      iss: claims.iss,
      scopes: scopesForClaim(this.scopeMap, claimValues),
      principal_type: 'human',
      name: name ?? claims.sub,
      claimValues,
      expiresAt: typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : null,
    };
  }

  private exchangeError(err: unknown): OidcSignInError {
    // openid-client wraps oauth4webapi's error: the specific message ("unexpected ID Token "nonce"
    // claim value") is the innermost one.
    const messages: string[] = [];
    for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++)
      messages.push(e.message);
    const message = messages.at(-1) ?? String(err);
    const cause = { cause: err };
    if (messages.some((m) => /"nonce"/.test(m))) {
      return new OidcSignInError(
        'nonce_mismatch',
        'the ID token’s nonce is not the one this sign-in sent (a replayed or injected ID token)',
        cause,
      );
    }
    if (err instanceof oidc.ResponseBodyError) {
      return new OidcSignInError(
        'token_exchange_failed',
        `the provider refused the authorization code: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`,
        cause,
      );
    }
    return new OidcSignInError('id_token_invalid', `the ID token was not accepted: ${message}`, cause);
  }
}

/** The caller a signed-in person acts as (what the console hands to the services it calls). */
export function callerOfIdentity(identity: OidcIdentity): Caller {
  return Object.freeze({
    sub: identity.sub,
    iss: identity.iss,
    clientId: null,
    scopes: Object.freeze([...identity.scopes]) as string[],
    principalType: identity.principal_type,
  });
}
