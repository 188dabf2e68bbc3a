import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { LivenessV1, ProblemResponses, ReadinessV1, ServiceIndexV1 } from './wire/index.ts';

/** Whether this replica should receive traffic, with the check behind each part. */
export type Readiness = () => Promise<{ ready: boolean; checks: Record<string, boolean> }>;

/** Liveness says the process runs; readiness says a bundle is loaded and the stores answer. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ readiness: Readiness; console: boolean }> = async (
  app,
  opts,
) => {
  // A browser or a curl at the bare address gets pointed at the API description (and the console
  // for people, where it is served), not a 404.
  app.get(
    '/',
    {
      schema: {
        summary: 'Where to start: links to the API description and the console',
        tags: ['service'],
        security: [],
        response: { 200: ServiceIndexV1, ...ProblemResponses },
      },
    },
    async () => ({
      service: 'verdict' as const,
      docs: '/docs',
      openapi: '/openapi.json',
      health: '/health',
      ...(opts.console ? { console: '/console' } : {}),
    }),
  );
  app.get(
    '/health/live',
    {
      schema: {
        summary: 'Liveness: the process runs',
        tags: ['service'],
        security: [],
        response: { 200: LivenessV1, ...ProblemResponses },
      },
    },
    async () => ({
      status: 'ok' as const,
    }),
  );
  app.get(
    '/health/ready',
    {
      schema: {
        summary: 'Readiness: a bundle is loaded and the stores answer (503 otherwise)',
        tags: ['service'],
        security: [],
        response: { 200: ReadinessV1, 503: ReadinessV1, ...ProblemResponses },
      },
    },
    async (_request, reply) => {
      const { ready, checks } = await opts.readiness();
      if (ready) return reply.code(200).send({ status: 'ready', checks });
      return reply.code(503).send({ status: 'not_ready', checks });
    },
  );
};
