import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Scope } from '../auth/caller.ts';
import type { ImpactRun } from '../bundles/impact.ts';
import { normaliseDigest, type PolicyLifecycle } from '../bundles/lifecycle.ts';
import { ProblemError } from './problem.ts';
import {
  DigestParamsV1,
  ImpactListQueryV1,
  ImpactRequestV1,
  ImpactRunListV1,
  ImpactRunParamsV1,
  ImpactRunV1,
  ImpactStartedV1,
  ProblemResponses,
} from './wire/index.ts';

const READ: readonly Scope[] = ['bundles:read', 'audit:read'];

function digestOf(raw: string): string {
  const digest = normaliseDigest(decodeURIComponent(raw).toLowerCase());
  if (!digest)
    throw new ProblemError(400, 'invalid_digest', 'a bundle digest is 64 hex digits (or sha256:<hex>)');
  return digest;
}

/** A run on the wire (the console reads the same ImpactRun through `lifecycle.impact`). */
export function impactRunV1(run: ImpactRun): ImpactRunV1 {
  return {
    id: run.id,
    state: run.state,
    digest: run.digest,
    actor: run.actor,
    replica_id: run.replicaId,
    from: run.from,
    to: run.to,
    filters: { ...run.filters } as Record<string, string>,
    entrypoint: run.entrypoint,
    total: run.total,
    evaluated: run.evaluated,
    skipped: run.skipped,
    skipped_reasons: run.skippedReasons,
    unchanged: run.unchanged,
    masked: run.masked,
    flips: run.flips.map((f) => ({
      direction: f.direction,
      count: f.count,
      masked: f.masked,
      sample_ids: f.sampleIds,
    })),
    by_control: run.byControl.map((c) => ({
      direction: c.direction,
      control: c.control,
      count: c.count,
      sample_ids: c.sampleIds,
    })),
    errors: run.errors.map((e) => ({
      code: e.code,
      message: e.message,
      count: e.count,
      sample_ids: e.sampleIds,
    })),
    error: run.error,
    started_at: run.startedAt,
    heartbeat_at: run.heartbeatAt,
    finished_at: run.finishedAt,
    duration_ms: run.durationMs,
  };
}

/**
 * Impact analysis (issue 22): start a run of a candidate on recorded decisions, read it from any
 * replica, list and cancel runs. The work is `lifecycle.impact`'s (src/bundles/impact.ts); its
 * refusals (ImpactError, AuditQueryError) carry their codes to the app's one error mapper.
 */
export const impactRoutes: FastifyPluginAsyncTypebox<{ lifecycle: PolicyLifecycle }> = async (
  app,
  { lifecycle },
) => {
  app.post(
    '/v1/bundles/:digest/impact',
    {
      config: { scope: 'bundles:write' },
      schema: {
        summary:
          'Start an impact analysis: the candidate on the recorded decisions of a window (runs in the background)',
        tags: ['bundles'],
        params: DigestParamsV1,
        body: ImpactRequestV1,
        response: { 202: ImpactStartedV1, ...ProblemResponses },
      },
    },
    async (request, reply) => {
      const digest = digestOf(request.params.digest);
      const { from, to, filters } = request.body ?? {};
      const run = await lifecycle.impact.start({ digest, from, to, filters, actor: request.caller.sub });
      const statusUrl = `/v1/bundles/impact/${run.id}`;
      return reply.code(202).header('location', statusUrl).send({ id: run.id, status_url: statusUrl });
    },
  );

  app.get(
    '/v1/bundles/impact',
    {
      config: { scope: READ },
      schema: {
        summary: 'Impact analysis runs, newest first',
        tags: ['bundles'],
        querystring: ImpactListQueryV1,
        response: { 200: ImpactRunListV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const { digest, limit } = request.query;
      const runs = await lifecycle.impact.list({
        digest: digest === undefined ? null : digestOf(digest),
        limit: limit === undefined ? undefined : Number(limit),
      });
      return { runs: runs.map(impactRunV1) };
    },
  );

  app.get(
    '/v1/bundles/impact/:id',
    {
      config: { scope: READ },
      schema: {
        summary: 'One impact analysis run: its progress, then its report',
        tags: ['bundles'],
        params: ImpactRunParamsV1,
        response: { 200: ImpactRunV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const run = await lifecycle.impact.get(request.params.id);
      if (!run) throw new ProblemError(404, 'impact_not_found', `no impact run ${request.params.id}`);
      return impactRunV1(run);
    },
  );

  app.delete(
    '/v1/bundles/impact/:id',
    {
      config: { scope: 'bundles:write' },
      schema: {
        summary: 'Cancel a running impact analysis (on whichever replica runs it)',
        tags: ['bundles'],
        params: ImpactRunParamsV1,
        response: { 200: ImpactRunV1, ...ProblemResponses },
      },
    },
    async (request) => impactRunV1(await lifecycle.impact.cancel(request.params.id, request.caller.sub)),
  );
};
