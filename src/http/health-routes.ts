import type { FastifyInstance } from 'fastify';

/** Whether this replica should receive traffic, with the check behind each part. */
export type Readiness = () => Promise<{ ready: boolean; checks: Record<string, boolean> }>;

/** Liveness says the process runs; readiness says a bundle is loaded and the stores answer. */
export async function healthRoutes(app: FastifyInstance, opts: { readiness: Readiness }): Promise<void> {
  app.get('/health/live', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/health/ready', { schema: { hide: true } }, async (_request, reply) => {
    const { ready, checks } = await opts.readiness();
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
}
