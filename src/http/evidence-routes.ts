import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AuditQueryError, parseFilter } from '../audit/queries.ts';
import { EvidenceNotFoundError, type EvidenceQuery } from '../evidence/package.ts';
import { ProblemError } from './problem.ts';
import { ProblemV1 } from './schemas.ts';

/** What the evidence routes need (built by the composition root, src/create-verdict.ts). */
export interface EvidenceDeps {
  /** Builds and streams a package; absent (no signing key) → 503 evidence_unavailable. */
  build?: (query: EvidenceQuery) => Promise<NodeJS.ReadableStream>;
  /** The public keys (evidence manifest, checkpoints) as JWKs. */
  keys: () => Record<string, string>[];
}

const Param = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });

/** `GET /v1/evidence` (audit:read) and `GET /v1/evidence/keys` (public JWKS). */
export const evidenceRoutes: FastifyPluginAsyncTypebox<EvidenceDeps> = async (app, deps) => {
  const errors = { '4xx': ProblemV1, '5xx': ProblemV1 };

  app.get(
    '/v1/evidence',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary:
          'A signed evidence package (tar.gz) about one resource: records, bundles, events, chain segments',
        tags: ['audit'],
        querystring: Type.Object(
          {
            resource_type: Param('resource.type of the decisions, e.g. model_release'),
            resource_id: Param('resource.id, e.g. support-llm@3.2.0'),
            from: Type.Optional(Param('Inclusive lower bound on decided_at (ISO-8601)')),
            to: Type.Optional(Param('Exclusive upper bound on decided_at (ISO-8601)')),
          },
          { additionalProperties: false },
        ),
        response: { ...errors },
      },
    },
    async (request, reply) => {
      let window: ReturnType<typeof parseFilter>;
      try {
        window = parseFilter({ from: request.query.from, to: request.query.to });
      } catch (err) {
        if (err instanceof AuditQueryError) {
          throw new ProblemError(400, err.code, err.message, {
            errors: [{ path: `/${err.parameter}`, message: err.message }],
          });
        }
        throw err;
      }
      if (!deps.build) {
        throw new ProblemError(503, 'evidence_unavailable', 'no evidence signing key is configured');
      }
      let stream: NodeJS.ReadableStream;
      try {
        stream = await deps.build({
          resourceType: request.query.resource_type,
          resourceId: request.query.resource_id,
          from: window.from,
          to: window.to,
        });
      } catch (err) {
        if (err instanceof EvidenceNotFoundError) {
          throw new ProblemError(404, 'evidence_not_found', 'no decision about this resource in the window');
        }
        throw err;
      }
      const name = `evidence-${request.query.resource_type}-${request.query.resource_id}`.replace(
        /[^A-Za-z0-9_.@-]/g,
        '_',
      );
      return reply
        .type('application/gzip')
        .header('content-disposition', `attachment; filename="${name}.tar.gz"`)
        .send(stream as never);
    },
  );

  app.get(
    '/v1/evidence/keys',
    {
      schema: {
        summary: 'The Ed25519 public keys of evidence manifests and chain checkpoints (JWKS)',
        tags: ['audit'],
        response: {
          200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.String())) }),
          ...errors,
        },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return { keys: deps.keys() };
    },
  );
};
