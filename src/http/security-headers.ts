import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * The Content-Security-Policy of the /docs UI (set by @fastify/swagger-ui on its own routes, which
 * overrides the API default below): its scripts and styles are same-origin files; swagger-ui sets
 * inline style attributes, hence 'unsafe-inline' for styles only. No upgrade-insecure-requests, so
 * the UI also works on http://localhost.
 */
export const DOCS_CSP =
  "default-src 'self'; base-uri 'self'; connect-src 'self'; font-src 'self' data:; form-action 'self'; " +
  "frame-ancestors 'none'; img-src 'self' data:; object-src 'none'; script-src 'self'; " +
  "script-src-attr 'none'; style-src 'self' 'unsafe-inline'";

const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
    },
  },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  referrerPolicy: { policy: 'no-referrer' },
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
};

/**
 * The headers helmet sets with these options. They do not depend on the request, so they are
 * computed once: running helmet's middleware chain on every response cost ~5% of a decision
 * request's CPU (bench/README.md).
 */
export function staticSecurityHeaders(options: HelmetOptions = HELMET_OPTIONS): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: string | number | readonly string[]) => {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  let failure: unknown;
  helmet(options)({} as never, response as never, (err?: unknown) => {
    failure = err;
  });
  if (failure) throw failure;
  return headers;
}

/**
 * Security headers on every response (helmet's, computed once) and CORS only for the configured
 * origins. The API answers JSON only, so its CSP allows nothing at all; the /docs routes set their
 * own CSP, which replaces this one.
 */
export const securityHeaders = fp(
  async (app: FastifyInstance, opts: { corsOrigins: readonly string[] }) => {
    const headers = staticSecurityHeaders();
    // Callback-style hooks cost no promise per request (this and the auth hooks run on every one).
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(headers);
      done();
    });
    if (opts.corsOrigins.length > 0) {
      await app.register(cors, {
        origin: [...opts.corsOrigins],
        methods: ['GET', 'POST', 'DELETE'],
        allowedHeaders: ['authorization', 'content-type', 'traceparent', 'x-request-id'],
        exposedHeaders: ['retry-after', 'x-request-id', 'traceparent'],
        credentials: false,
        maxAge: 600,
      });
    }
  },
  { name: 'verdict-security-headers' },
);
