import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parseFilter } from '../audit/queries.ts';
import type { EvidenceQuery } from '../evidence/package.ts';
import { ProblemError } from './problem.ts';
import {
  EvidenceKeysV1,
  EvidencePackageResponseV1,
  EvidenceQueryV1,
  ProblemResponses,
} from './wire/index.ts';

/** What the evidence routes need (built by the composition root, src/create-verdict.ts). */
export interface EvidenceDeps {
  /** Builds and streams a package; absent (no signing key) → 503 evidence_unavailable. */
  build?: (query: EvidenceQuery) => Promise<NodeJS.ReadableStream>;
  /** The public keys (evidence manifest, checkpoints) as JWKs. */
  keys: () => Record<string, string>[];
}

/**
 * `GET /v1/evidence` (audit:read) and `GET /v1/evidence/keys` (public JWKS). A refused window is the
 * query parser's AuditQueryError; no decision in it is the builder's EvidenceNotFoundError.
 */
export const evidenceRoutes: FastifyPluginAsyncTypebox<EvidenceDeps> = async (app, deps) => {
  app.get(
    '/v1/evidence',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary:
          'A signed evidence package (tar.gz) about one resource: records, bundles, events, chain segments',
        tags: ['audit'],
        querystring: EvidenceQueryV1,
        response: { 200: EvidencePackageResponseV1, ...ProblemResponses },
      },
    },
    async (request, reply) => {
      const { resource_type, resource_id, from, to } = request.query;
      const window = parseFilter({ from, to });
      if (!deps.build) {
        throw new ProblemError(503, 'evidence_unavailable', 'no evidence signing key is configured');
      }
      const stream = await deps.build({
        resourceType: resource_type,
        resourceId: resource_id,
        from: window.from,
        to: window.to,
      });
      const name = `evidence-${resource_type}-${resource_id}`.replace(/[^A-Za-z0-9_.@-]/g, '_');
      return reply
        .type('application/gzip')
        .header('content-disposition', `attachment; filename="${name}.tar.gz"`)
        .send(stream);
    },
  );

  app.get(
    '/v1/evidence/keys',
    {
      schema: {
        summary: 'The Ed25519 public keys of evidence manifests and chain checkpoints (JWKS)',
        tags: ['audit'],
        response: { 200: EvidenceKeysV1, ...ProblemResponses },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return { keys: deps.keys() };
    },
  );
};
