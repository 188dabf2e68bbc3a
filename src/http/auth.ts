import fastifyJwt from '@fastify/jwt';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { type Claims, callerFromClaims, hasScope, type Scope } from '../auth/caller.ts';
import { JwksKeyStore, type JwksOptions, KeyLookupError } from '../auth/jwks.ts';
import type { KeySource } from '../auth/keys.ts';
import { type Protection, protectionOf } from '../auth/routes.ts';
import type { Caller } from '../decisions/types.ts';
import { ProblemError } from './problem.ts';

/**
 * Why a request was not let through; the label values of the auth-failure metric (all of them are
 * exported at 0 from the start, so a dashboard tells "no failures" from "no data").
 */
export const AUTH_FAILURE_REASONS = [
  'missing_token',
  'malformed_header',
  'malformed_token',
  'bad_signature',
  'algorithm_not_allowed',
  'unknown_key',
  'token_expired',
  'token_not_yet_valid',
  'wrong_issuer',
  'wrong_audience',
  'invalid_claims',
  'key_source_unavailable',
  'insufficient_scope',
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/**
 * Probes are never throttled: a 429 on liveness would get healthy replicas restarted. OPA's
 * `GET /health` is a probe too (probes written for OPA point at it).
 */
export function isRateLimitExempt(routeUrl: string | undefined): boolean {
  return routeUrl === '/health' || routeUrl?.startsWith('/health/') === true;
}

/**
 * Callbacks for what the auth layer refuses, so observability can count them without this module
 * depending on a metrics registry. Called once per refused request.
 */
export interface AuthEvents {
  onAuthFailure?(reason: AuthFailureReason): void;
  /** `route` is the route template (never a raw URL), or 'unmatched'. */
  onRateLimited?(route: string): void;
}

/** Everything the auth plugin needs; built from Config by `buildApp`, or by a test. */
export interface AuthOptions {
  keys: KeySource;
  /** Required `iss` when set. */
  issuer?: string;
  /** Required `aud` (one of) when set. */
  audience?: string;
  clockSkewSeconds: number;
  rateLimit: {
    /** Requests per caller per window; 0 turns the limiter off (no hook; Redis is not asked). */
    max: number;
    windowMs: number;
    /**
     * Shared store across replicas (src/store/redis.ts; its owner closes it); in-process when
     * absent.
     */
    redis?: Redis;
    /** Redis key prefix (tests give each run its own). */
    nameSpace?: string;
  };
  /** JWKS tuning (cache TTL, refetch budget); defaults suit production. */
  jwks?: Partial<Omit<JwksOptions, 'url' | 'algorithms'>>;
  events?: AuthEvents;
}

/** What `verifyAccessToken` found: the caller and the token's expiry (ms), or why not. */
export type TokenVerification =
  | { ok: true; caller: Caller; expiresAt: number }
  | { ok: false; reason: AuthFailureReason };

/** One route and how it is guarded; `app.routeProtection()` lists them for review and tests. */
export interface RouteProtection {
  method: string;
  url: string;
  protection: Protection;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller; set by the auth plugin before any route with a scope runs. */
    caller: Caller;
  }
  interface FastifyContextConfig {
    /**
     * The scope a route needs. Routes without one are public only when listed in
     * `PUBLIC_ROUTES` (src/auth/routes.ts); any other unscoped route needs `admin` (fail closed).
     * A list means any one of its scopes will do (`['bundles:read', 'audit:read']`).
     */
    scope?: Scope | readonly Scope[];
  }
  interface FastifyInstance {
    /** Every registered route with its guard (see src/auth/routes.ts). */
    routeProtection(): RouteProtection[];
    /**
     * Verifies a token given in a request's body (the console's token sign-in) exactly as the
     * bearer hook verifies a header: the same key source, algorithms, issuer, audience, clock skew
     * and required claims. Never throws: a refusal names its reason.
     */
    verifyAccessToken(request: FastifyRequest, token: string): Promise<TokenVerification>;
    /**
     * The caller of an Authorization header whose token was verified recently and is still valid
     * (static keys only; see VerifiedTokens), else undefined: nothing is verified here. For the
     * decision fast path (src/http/decision-fast-path.ts), which leaves every other case to the hooks.
     */
    knownCaller(authorization: string | undefined): Caller | undefined;
  }
}

const REALM = 'verdict';
/** RFC 6750 §2.1: the scheme (any case), one space, one token with no whitespace in it. */
const BEARER = /^Bearer \S+$/i;
const failureOf = Symbol('verdict.authFailure');
type Failure = { reason: AuthFailureReason };

/** Maps what @fastify/jwt / fast-jwt / the key store threw to one failure reason. */
function classify(err: unknown): AuthFailureReason {
  if (err instanceof KeyLookupError) return err.reason;
  const { code = '', message = '' } = err as { code?: string; message?: string };
  switch (code) {
    case 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED':
      return 'token_expired';
    case 'FAST_JWT_INACTIVE':
      return 'token_not_yet_valid';
    case 'FST_JWT_BAD_REQUEST':
    case 'FST_JWT_NO_AUTHORIZATION_IN_HEADER':
      return 'malformed_header';
    case 'FAST_JWT_INVALID_ALGORITHM':
      return 'algorithm_not_allowed';
    case 'FAST_JWT_MISSING_SIGNATURE':
    case 'FAST_JWT_MALFORMED':
    case 'FAST_JWT_INVALID_PAYLOAD':
    case 'FAST_JWT_INVALID_TYPE':
    case 'FAST_JWT_INVALID_CRIT_HEADER':
      return 'malformed_token';
    case 'FST_JWT_AUTHORIZATION_TOKEN_INVALID':
      // fast-jwt names the failed check only in its message ("The iss claim value is not allowed.").
      if (/\biss\b/.test(message)) return 'wrong_issuer';
      if (/\baud\b/.test(message)) return 'wrong_audience';
      if (/signature/i.test(message)) return 'bad_signature';
      if (/malformed|token header|token payload|must be a string/i.test(message)) return 'malformed_token';
      return 'invalid_claims';
    default:
      return 'malformed_token';
  }
}

const DETAIL: Record<AuthFailureReason, string> = {
  missing_token: 'a bearer token is required',
  malformed_header: 'the Authorization header must be "Bearer <token>"',
  malformed_token: 'the bearer token is not a well-formed JWT',
  bad_signature: 'the token signature is not valid',
  algorithm_not_allowed: 'the token algorithm is not accepted',
  unknown_key: 'the token was signed with an unknown key',
  token_expired: 'the token has expired',
  token_not_yet_valid: 'the token is not valid yet',
  wrong_issuer: 'the token issuer is not accepted',
  wrong_audience: 'the token audience is not accepted',
  invalid_claims: 'the token claims are not valid',
  key_source_unavailable: 'the token keys cannot be fetched right now; retry later',
  insufficient_scope: 'the token lacks the scope this route needs',
};

/** The refusal a failure becomes: status, stable problem code, RFC 6750 challenge. */
function refusal(reason: AuthFailureReason, needed?: Scope | readonly Scope[]): ProblemError {
  const scope = typeof needed === 'string' || needed === undefined ? needed : needed.join(' ');
  const detail = DETAIL[reason];
  if (reason === 'missing_token') {
    return new ProblemError(
      401,
      'missing_token',
      detail,
      {},
      { 'www-authenticate': `Bearer realm="${REALM}"` },
    );
  }
  if (reason === 'malformed_header') {
    return new ProblemError(
      400,
      'invalid_authorization_header',
      detail,
      {},
      {
        'www-authenticate': `Bearer realm="${REALM}", error="invalid_request", error_description="${detail}"`,
      },
    );
  }
  if (reason === 'insufficient_scope') {
    return new ProblemError(
      403,
      'insufficient_scope',
      `${detail}: ${scope}`,
      { required_scope: scope },
      {
        'www-authenticate': `Bearer realm="${REALM}", error="insufficient_scope", error_description="${detail}", scope="${scope}"`,
      },
    );
  }
  if (reason === 'key_source_unavailable') {
    return new ProblemError(503, 'auth_unavailable', detail, {}, { 'retry-after': '5' });
  }
  return new ProblemError(
    401,
    reason === 'token_expired' ? 'token_expired' : 'invalid_token',
    detail,
    { reason },
    {
      'www-authenticate': `Bearer realm="${REALM}", error="invalid_token", error_description="${detail}"`,
    },
  );
}

/**
 * Callers of recently verified bearer tokens, keyed by the whole Authorization header. An entry
 * lives until the token's `exp` (never past it, and without the clock-skew allowance) or for a
 * minute, whichever is sooner; a tampered token is a different key and is verified in full.
 */
class VerifiedTokens {
  private static readonly MAX_ENTRIES = 10_000;
  private static readonly TTL_MS = 60_000;
  private readonly entries = new Map<string, { caller: Caller; until: number }>();

  get(authorization: string): { caller: Caller; until: number } | undefined {
    return this.entries.get(authorization);
  }

  remember(authorization: string, caller: Caller, claims: Claims): void {
    const now = Date.now();
    if (typeof claims.exp !== 'number') return;
    if (typeof claims.nbf === 'number' && claims.nbf * 1000 > now) return;
    const until = Math.min(claims.exp * 1000, now + VerifiedTokens.TTL_MS);
    if (until <= now) return;
    if (this.entries.size >= VerifiedTokens.MAX_ENTRIES) {
      // NOTE: Map keeps insertion order, so the first key is the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(authorization, { caller, until });
  }
}

function protectionOfRequest(request: FastifyRequest): Protection {
  // An unmatched URL under /console reaches only the console's own "no such page" (its 404
  // handler): people get that page, not the API's token challenge. No handler is reached by it.
  if (request.is404 && (request.url === '/console' || request.url.startsWith('/console/'))) {
    return { kind: 'public' };
  }
  return protectionOf(request.method, request.routeOptions.url, request.routeOptions.config?.scope);
}

/**
 * Authentication (bearer JWT), per-caller rate limiting and scope checks, as three onRequest hooks
 * in this order:
 *   1. verify the token (if the route is not public) and keep the caller *or* the failure;
 *   2. when a rate limit is set (off by default, ADR 0006), count the request against its caller's
 *      budget (`sub`), or its IP's when there is no verified caller — so floods of bad tokens are
 *      limited too;
 *   3. refuse: the kept failure (401), a missing scope (403).
 * NOTE: the order matters — the limiter needs the verified `sub`, and the refusal must come after
 * the limiter, or unauthenticated floods would never be counted.
 */
export const authentication = fp(
  async (app: FastifyInstance, options: AuthOptions) => {
    const { keys } = options;
    const jwks =
      keys.kind === 'jwks'
        ? new JwksKeyStore({ ...options.jwks, url: keys.url, algorithms: keys.algorithms })
        : null;

    await app.register(fastifyJwt, {
      secret:
        keys.kind === 'secret'
          ? keys.secret
          : keys.kind === 'public-key'
            ? { public: keys.pem }
            : async (_request: FastifyRequest, token: { header: Record<string, unknown> }) =>
                (await (jwks as JwksKeyStore).keyFor(token.header))
                  .export({ type: 'spki', format: 'pem' })
                  .toString(),
      decode: { complete: true },
      verify: {
        algorithms: [...keys.algorithms],
        ...(options.issuer ? { allowedIss: options.issuer } : {}),
        ...(options.audience ? { allowedAud: options.audience } : {}),
        clockTolerance: options.clockSkewSeconds * 1000,
        requiredClaims: ['sub', 'exp'],
      },
      messages: { authorizationTokenInvalid: (err: Error) => err.message },
    } as never);

    // An agent runtime sends the same token on every call; decoding and checking its signature was
    // ~10% of a decision request's CPU. Static keys only: with a JWKS, a rotated-out key must stop
    // working as soon as its key-cache entry expires.
    const verified = keys.kind === 'jwks' ? null : new VerifiedTokens();

    const routes: RouteProtection[] = [];
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        const protection = protectionOf(method, route.url, route.config?.scope);
        routes.push({ method, url: route.url, protection });
        if (protection.kind === 'unscoped') {
          app.log.warn({ method, url: route.url }, 'route has no scope and is not public: admin only');
        }
      }
    });
    app.decorate('routeProtection', () => [...routes]);
    app.decorate('knownCaller', (authorization: string | undefined) => {
      const known = authorization === undefined ? undefined : verified?.get(authorization);
      return known && known.until > Date.now() ? known.caller : undefined;
    });

    app.decorate('verifyAccessToken', async (request: FastifyRequest, token: string) => {
      const trimmed = token.trim();
      if (trimmed === '' || /\s/.test(trimmed)) return { ok: false, reason: 'malformed_token' } as const;
      try {
        const claims = await request.jwtVerify<Claims>({ verify: { extractToken: () => trimmed } } as never);
        return { ok: true, caller: callerFromClaims(claims), expiresAt: Number(claims.exp) * 1000 } as const;
      } catch (err) {
        const reason = classify(err);
        options.events?.onAuthFailure?.(reason);
        return { ok: false, reason } as const;
      }
    });

    app.decorateRequest('caller', null as unknown as Caller);
    app.decorateRequest(failureOf, null);

    // NOTE: callback-style hooks: a remembered token (the common case) is accepted without a
    // promise; only a signature check goes asynchronous. A failure is kept, not thrown, so the rate
    // limiter below still counts the request (by IP) before the refusal.
    app.addHook('onRequest', (request, _reply, done) => {
      const protection = protectionOfRequest(request);
      if (protection.kind === 'public' || protection.kind === 'unknown') return done();
      const failed = (reason: AuthFailureReason) => {
        (request as unknown as Record<symbol, Failure>)[failureOf] = { reason };
        done();
      };
      const authorization = request.headers.authorization;
      if (!authorization) return failed('missing_token');
      // Another scheme (`Basic …`, `Token …`) or a Bearer header that is not exactly
      // `Bearer <token>` is a malformed request (400), not a bad token (401).
      if (!BEARER.test(authorization)) return failed('malformed_header');
      const known = verified?.get(authorization);
      if (known && known.until > Date.now()) {
        request.caller = known.caller;
        return done();
      }
      request
        .jwtVerify<Claims>()
        .then((claims) => {
          request.caller = callerFromClaims(claims);
          verified?.remember(authorization, request.caller, claims);
        })
        .then(
          () => done(),
          (err: unknown) => failed(classify(err)),
        );
    });

    const limited = options.rateLimit.max > 0;
    const redis = limited ? options.rateLimit.redis : undefined;
    await app.register(rateLimit, {
      global: false,
      max: options.rateLimit.max,
      timeWindow: options.rateLimit.windowMs,
      ...(redis ? { redis, nameSpace: options.rateLimit.nameSpace ?? 'verdict-rl:' } : {}),
      // An unavailable limiter store must not take the PDP down with it: decisions keep flowing.
      skipOnError: true,
      keyGenerator: (request: FastifyRequest) =>
        request.caller ? `sub:${request.caller.sub}` : `ip:${request.ip}`,
      allowList: (request: FastifyRequest) => isRateLimitExempt(request.routeOptions.url),
      errorResponseBuilder: (request: FastifyRequest, context: { ttl: number; after: string }) => {
        options.events?.onRateLimited?.(request.routeOptions.url ?? 'unmatched');
        return new ProblemError(
          429,
          'rate_limited',
          `too many requests; retry in ${context.after}`,
          {},
          { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
        );
      },
    });
    if (limited) app.addHook('onRequest', app.rateLimit());

    app.addHook('onRequest', (request, _reply, done) => {
      const protection = protectionOfRequest(request);
      if (protection.kind === 'public' || protection.kind === 'unknown') return done();
      const failure = (request as unknown as Record<symbol, Failure | null>)[failureOf];
      if (failure) {
        options.events?.onAuthFailure?.(failure.reason);
        request.log.info({ reason: failure.reason }, 'authentication refused');
        return done(refusal(failure.reason));
      }
      const needed =
        protection.kind === 'scope' ? protection.scope : protection.kind === 'unscoped' ? 'admin' : null;
      if (needed && !hasScope(request.caller, needed)) {
        options.events?.onAuthFailure?.('insufficient_scope');
        return done(refusal('insufficient_scope', needed));
      }
      done();
    });
  },
  { name: 'verdict-auth' },
);
