import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import { placeholderAuth } from './auth/caller.ts';
import type { Config } from './config/index.ts';
import type { ActivePolicy, DecisionService } from './decisions/service.ts';
import { type AuditDeps, auditRoutes } from './http/audit-routes.ts';
import { authzenRoutes } from './http/authzen-routes.ts';
import { registerJsonBodyParser } from './http/body.ts';
import { dataRoutes } from './http/data-routes.ts';
import { decisionRoutes } from './http/decision-routes.ts';
import { registerErrorHandling } from './http/errors.ts';
import { healthRoutes, type Readiness } from './http/health-routes.ts';
import { httpObservability } from './observability/http.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { loadShedding } from './observability/overload.ts';

/** Everything the HTTP layer needs, constructed by main (or by a test). */
export interface AppDeps {
  config: Config;
  decisions: DecisionService;
  policy: ActivePolicy;
  readiness: Readiness;
  /** Fastify's logger option: pino options, an instance, or false. */
  logger?: FastifyServerOptions['logger'];
  /** The authentication plugin; defaults to the development placeholder. */
  auth?: FastifyPluginAsync;
  /** Extra route plugins (audit, bundles...), registered after the core routes. */
  plugins?: FastifyPluginAsync[];
  /** The auditor API (search, export, replay, verify); its routes exist only when it is given. */
  audit?: AuditDeps;
  /** This app's metrics (shared with the decision service's observer); default a fresh registry. */
  metrics?: Metrics;
  /** What GET /metrics serves; default this app's registry (a cluster worker asks the primary). */
  scrapeMetrics?: () => Promise<string>;
}

export type App = FastifyInstance;

/** Builds the Fastify app. Used the same way by main and by tests (`app.inject`). */
export async function buildApp(deps: AppDeps): Promise<App> {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: deps.config.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    requestIdHeader: 'x-request-id',
    requestIdLogLabel: 'request_id',
    // One line per request on completion, written by the observability plugin.
    disableRequestLogging: true,
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  registerErrorHandling(app);
  const metrics = deps.metrics ?? createMetrics();
  await app.register(httpObservability, { metrics, scrape: deps.scrapeMetrics });
  await app.register(loadShedding, { shed: deps.config.shed, metrics });
  // One JSON parser for every route: size, depth, key, string and number limits, UTF-8 only, and
  // secure-json-parse's prototype check (the onProtoPoisoning options above cover no other parser).
  registerJsonBodyParser(app, deps.config.json);

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
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(deps.auth ?? placeholderAuth);
  await app.register(healthRoutes, { readiness: deps.readiness });
  await app.register(decisionRoutes, { decisions: deps.decisions, config: deps.config });
  await app.register(dataRoutes, { decisions: deps.decisions, jsonLimits: deps.config.json });
  await app.register(authzenRoutes, { decisions: deps.decisions, config: deps.config });
  if (deps.audit) await app.register(auditRoutes, deps.audit);
  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  return app;
}
