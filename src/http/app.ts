import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifySchema,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { Redis } from 'ioredis';
import { configuredKeySource, type KeySource } from '../auth/keys.ts';
import type { Config } from '../config/resolve-config.ts';
import { type ConsoleDeps, consoleRoutes } from '../console/console-plugin.ts';
import type { DecisionService } from '../decisions/service.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import { createMetrics, initialiseLabelValues, type Metrics } from '../observability/metrics.ts';
import { type ApprovalDeps, approvalRoutes } from './approval-routes.ts';
import { type AuditDeps, auditRoutes } from './audit-routes.ts';
import {
  AUTH_FAILURE_REASONS,
  type AuthEvents,
  type AuthOptions,
  authentication,
  isRateLimitExempt,
} from './auth.ts';
import { authzenRoutes } from './authzen-routes.ts';
import { registerJsonBodyParser } from './body.ts';
import { type BundleRouteDeps, bundleRoutes } from './bundle-routes.ts';
import { dataRoutes } from './data-routes.ts';
import { type DecisionFastPath, installDecisionFastPath } from './decision-fast-path.ts';
import { decisionRoutes } from './decision-routes.ts';
import { answerFrameworkError, registerErrorHandling } from './errors.ts';
import { type EvidenceDeps, evidenceRoutes } from './evidence-routes.ts';
import { healthRoutes, type Readiness } from './health-routes.ts';
import { lazyChildLogger } from './logging.ts';
import { httpObservability } from './observability.ts';
import { opaRoutes } from './opa-routes.ts';
import { loadShedding } from './overload.ts';
import { echoRequestIdFirst, requestIdOf } from './request-id.ts';
import { DOCS_CSP, securityHeaders, staticSecurityHeaders } from './security-headers.ts';
import { type WaiverDeps, waiverRoutes } from './waiver-routes.ts';
import { OpenApiDocumentV1 } from './wire/index.ts';

/** Everything the HTTP layer needs, constructed by the composition root (src/create-verdict.ts). */
export interface AppDeps {
  config: Config;
  decisions: DecisionService;
  policy: ActivePolicy;
  readiness: Readiness;
  /** Fastify's logger option: pino options, an instance, or false. */
  logger?: FastifyServerOptions['logger'];
  /**
   * How bearer tokens are verified; default: the key source the config names (JWT_SECRET,
   * JWT_PUBLIC_KEY or JWT_JWKS_URL). With neither, buildApp refuses — there is no unauthenticated
   * mode. main resolves the embedded development secret (src/auth/dev-token.ts).
   */
  keys?: KeySource;
  /** Redis shared by the replicas (the rate limiter's store); in-process when absent. */
  redis?: Redis;
  /** Auth tuning for tests (JWKS refetch budget, rate-limit Redis prefix...). */
  authOverrides?: Partial<Pick<AuthOptions, 'jwks' | 'rateLimit'>>;
  /** Extra route plugins (audit, bundles...), registered after the core routes. */
  plugins?: FastifyPluginAsync[];
  /** The auditor API (search, export, replay, verify); its routes exist only when it is given. */
  audit?: AuditDeps;
  /** Evidence packages and their public keys; the routes exist only when it is given. */
  evidence?: EvidenceDeps;
  /** The policy lifecycle API (/v1/bundles…); its routes exist only when it is given. */
  bundles?: BundleRouteDeps;
  /** Waivers and approvals (issue 13); their routes exist only when given (a database is needed). */
  grants?: { waivers: WaiverDeps; approvals: ApprovalDeps };
  /**
   * The governance console at /console (docs/console.md); served only when given (it needs the
   * database: sessions, grants). Its token sign-in verifies with this app's own token verification.
   */
  console?: Omit<ConsoleDeps, 'verifyToken'>;
  /** This app's metrics (shared with the decision service's observer); default a fresh registry. */
  metrics?: Metrics;
  /** What GET /metrics serves; default this app's registry (a cluster worker asks the primary). */
  scrapeMetrics?: () => Promise<string>;
}

export type App = FastifyInstance;

/** One registered route and the schema it declared (`app.routeSchemas()`, for review and tests). */
export interface RouteSchema {
  method: string;
  url: string;
  schema: FastifySchema | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered on the app, with its schema, in registration order. */
    routeSchemas(): RouteSchema[];
    /** POST /v1/decisions off the raw server (src/http/decision-fast-path.ts): what it served. */
    decisionFastPath: DecisionFastPath;
  }
}

/**
 * Builds the Fastify app from ready dependencies. Only the composition root (createVerdict) calls it,
 * for main and for tests alike.
 */
export async function buildApp(deps: AppDeps): Promise<App> {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: deps.config.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // The client's X-Request-ID is read by genReqId, which validates it (never taken raw).
    requestIdHeader: false,
    genReqId: requestIdOf,
    // A URL Fastify cannot route (bad percent-encoding, an over-long parameter) answers like any error.
    frameworkErrors: answerFrameworkError,
    // One line per request on completion, written by the observability plugin.
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }),
    childLoggerFactory: lazyChildLogger,
    return503OnClosing: true,
    // allErrors: a refused request names every field at fault (the mapper keeps the first 20), not
    // only the first; a valid request is checked exactly as before.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  echoRequestIdFirst(app.server);

  registerErrorHandling(app);
  // Every route with its schema: the metrics' known label values (see the onReady hook below), and
  // app.routeSchemas() for the test that every route is typed by the wire module.
  const routes: RouteSchema[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, schema: route.schema });
  });
  app.decorate('routeSchemas', () => [...routes]);
  // The OpenAPI document first, so that it sees every route (/metrics included).
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Verdict',
        version: '1',
        description: 'Policy decision point for AI systems: decisions, audit trail, policy bundles.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearer: [] }],
    },
  });
  const metrics = deps.metrics ?? createMetrics();
  await app.register(httpObservability, { metrics, scrape: deps.scrapeMetrics });
  await app.register(loadShedding, { shed: deps.config.shed, metrics });
  // One JSON parser for every route: size, depth, key, string and number limits, UTF-8 only, and
  // secure-json-parse's prototype check (the onProtoPoisoning options above cover no other parser).
  registerJsonBodyParser(app, deps.config.json);

  await app.register(securityHeaders, { corsOrigins: deps.config.corsOrigins });
  const keys = deps.keys ?? configuredKeySource(deps.config.jwt);
  if (!keys) throw new Error('no token key source: set JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL');
  const authEvents: AuthEvents = {
    onAuthFailure: (reason) => metrics.authFailures.inc({ reason }),
    onRateLimited: (route) => metrics.rateLimitRejections.inc({ route }),
  };
  await app.register(authentication, {
    keys,
    issuer: deps.config.jwt.issuer,
    audience: deps.config.jwt.audience,
    clockSkewSeconds: deps.config.jwt.clockSkewSeconds,
    rateLimit: { ...deps.config.rateLimit, redis: deps.redis, ...deps.authOverrides?.rateLimit },
    jwks: deps.authOverrides?.jwks,
    events: authEvents,
  });

  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP });
  app.get('/openapi.json', { schema: { hide: true, response: { 200: OpenApiDocumentV1 } } }, async () =>
    app.swagger(),
  );

  await app.register(healthRoutes, { readiness: deps.readiness, console: deps.console !== undefined });
  // Before the decision routes: it learns the native route's validator and serializer from them.
  const fastPath = installDecisionFastPath(app, {
    decisions: deps.decisions,
    config: deps.config,
    metrics,
    headers: staticSecurityHeaders(),
    rateLimited: { ...deps.config.rateLimit, ...deps.authOverrides?.rateLimit }.max > 0,
  });
  app.decorate('decisionFastPath', fastPath);
  await app.register(decisionRoutes, { decisions: deps.decisions, config: deps.config });
  await app.register(dataRoutes, { decisions: deps.decisions, jsonLimits: deps.config.json });
  await app.register(authzenRoutes, { decisions: deps.decisions, config: deps.config });
  await app.register(opaRoutes, {
    decisions: deps.decisions,
    config: deps.config,
    readiness: deps.readiness,
  });
  if (deps.audit) await app.register(auditRoutes, deps.audit);
  if (deps.evidence) await app.register(evidenceRoutes, deps.evidence);
  if (deps.bundles) await app.register(bundleRoutes, deps.bundles);
  if (deps.grants) {
    await app.register(waiverRoutes, deps.grants.waivers);
    await app.register(approvalRoutes, deps.grants.approvals);
  }
  if (deps.console) {
    const verifyToken: ConsoleDeps['verifyToken'] = (request, token) => app.verifyAccessToken(request, token);
    await app.register(consoleRoutes, { ...deps.console, verifyToken, prefix: '/console' });
  }
  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  app.addHook('onReady', async () => {
    initialiseLabelValues(metrics, {
      authFailureReasons: AUTH_FAILURE_REASONS,
      rateLimitedRoutes: [...new Set(routes.map((route) => route.url))].filter(
        (url) => !isRateLimitExempt(url),
      ),
    });
  });
  return app;
}
