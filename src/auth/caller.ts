import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Caller } from '../decisions/types.ts';

/** The scopes Verdict knows. A route declares the one it needs in `config.scope`. */
export const SCOPES = [
  'decisions:evaluate',
  'audit:read',
  'bundles:read',
  'bundles:write',
  'exceptions:request',
  'exceptions:approve',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller; set by the auth plugin before any route with a scope runs. */
    caller: Caller;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; routes without one are public (health, metrics, docs). */
    scope?: Scope;
  }
}

/** Where a caller's identity comes from (see src/auth/index.ts for the real JWT plugin). */
export type CallerResolver = (request: FastifyRequest) => Promise<Caller> | Caller;

/**
 * PLACEHOLDER until JWT authentication lands: every request is the local development caller with
 * every scope. Only `buildApp` in tests and the embedded default use it.
 */
export const devCaller: Caller = { sub: 'dev', iss: null, clientId: null, scopes: [...SCOPES] };

export const placeholderAuth = fp(
  async (app: FastifyInstance) => {
    app.decorateRequest('caller', null as unknown as Caller);
    app.addHook('onRequest', async (request) => {
      if (request.routeOptions.config.scope) request.caller = devCaller;
    });
  },
  { name: 'verdict-auth' },
);
