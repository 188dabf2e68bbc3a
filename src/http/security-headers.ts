import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

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

/**
 * Security headers on every response (helmet) and CORS only for the configured origins.
 * The API answers JSON only, so its CSP allows nothing at all.
 */
export const securityHeaders = fp(
  async (app: FastifyInstance, opts: { corsOrigins: readonly string[] }) => {
    await app.register(helmet, {
      global: true,
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
