import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type TSchema, Type } from 'typebox';
import type { EventRow } from '../audit/event-log.ts';
import type { Scope } from '../auth/caller.ts';
import {
  ActivationConflictError,
  type BundleRevisionInfo,
  type BundlesState,
  normaliseDigest,
  type PolicyLifecycle,
  RevisionNotFoundError,
} from '../bundles/lifecycle.ts';
import type { BundleReplica } from '../bundles/replica.ts';
import { BundleError } from '../engine/bundle.ts';
import type { FleetState } from '../store/fleet.ts';
import { ProblemError } from './problem.ts';
import { ProblemV1 } from './schemas.ts';

/** What the bundle API needs (built by the composition root, src/create-verdict.ts). */
export interface BundleRouteDeps {
  lifecycle: PolicyLifecycle;
  /** This replica (its own status is always fresh in /v1/bundles/status). */
  replica: BundleReplica | null;
  /** Largest upload (VERDICT_BUNDLE_MAX_BYTES): 413 beyond. */
  maxBytes: number;
  /** Replicas silent for longer drop out of the status (VERDICT_REPLICA_TIMEOUT_MS). */
  replicaTimeoutMs: number;
  /** Told about every refused bundle (metrics). */
  onRefused?: (code: string) => void;
}

/** The media types a bundle upload may be sent as. */
export const BUNDLE_MEDIA_TYPES = ['application/gzip', 'application/vnd.openpolicyagent.bundles'] as const;

const READ: readonly Scope[] = ['bundles:read', 'audit:read'];
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Digest = Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description: '`sha256:<hex>`' });
const DigestParam = Type.Object(
  { digest: Type.String({ maxLength: 80, description: 'hex SHA-256 of the bundle (or `sha256:<hex>`)' }) },
  { additionalProperties: false },
);
const Reason = Type.String({ maxLength: 1000 });

export const BundleRevisionV1 = Type.Object(
  {
    digest: Digest,
    revision: Type.String(),
    entrypoints: Type.Array(Type.String()),
    size: Type.Integer(),
    signed: Type.Boolean(),
    uploaded_by: Type.String(),
    uploaded_at: Type.String({ format: 'date-time' }),
    state: Type.Union([Type.Literal('active'), Type.Literal('shadow'), Type.Literal('inactive')]),
  },
  { $id: 'BundleRevisionV1' },
);

export const BundlesStateV1 = Type.Object({
  version: Type.Integer({ description: 'Grows by one with every change of the active or shadow revision' }),
  active: Nullable(Digest),
  active_since: Nullable(Type.String()),
  shadow: Nullable(Digest),
  shadow_since: Nullable(Type.String()),
  updated_by: Type.String(),
  updated_at: Type.String(),
});

const ChangeResponseV1 = Type.Object({ changed: Type.Boolean(), state: BundlesStateV1 });

export const PolicyEventV1 = Type.Object({
  id: Type.String(),
  occurred_at: Type.String(),
  action: Type.String({ description: 'upload, activate, shadow_set, shadow_clear, refuse' }),
  actor: Type.String(),
  subject: Nullable(Type.String()),
  from_digest: Nullable(Type.String()),
  to_digest: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  payload: Type.Record(Type.String(), Type.Unknown()),
  writer_id: Type.String(),
  seq: Type.Integer(),
  prev_hash: Type.String(),
  hash: Type.String(),
});

const ReplicaV1 = Type.Object({
  id: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  started_at: Type.String(),
  heartbeat_at: Type.String(),
  active: Nullable(Type.String()),
  active_revision: Nullable(Type.String()),
  shadow: Nullable(Type.String()),
  since: Nullable(Type.String()),
  applied_version: Type.Integer(),
  failure: Nullable(Type.Object({ message: Type.String(), at: Type.String(), version: Type.Integer() })),
  failing_since: Nullable(Type.String()),
});

const Flip = Type.Object({
  direction: Type.String(),
  count: Type.Integer(),
  sample_ids: Type.Array(Type.String()),
});

const errors = { '4xx': ProblemV1, '5xx': ProblemV1 };

function revisionV1(info: BundleRevisionInfo) {
  return {
    digest: info.digest,
    revision: info.revision,
    entrypoints: info.entrypoints,
    size: info.size,
    signed: info.signed,
    uploaded_by: info.uploadedBy,
    uploaded_at: info.uploadedAt,
    state: info.state,
  };
}

function stateV1(state: FleetState<BundlesState>) {
  return {
    version: state.version,
    active: state.state.active,
    active_since: state.state.activeSince,
    shadow: state.state.shadow,
    shadow_since: state.state.shadowSince,
    updated_by: state.updatedBy,
    updated_at: state.updatedAt,
  };
}

function eventV1(event: EventRow) {
  return {
    id: event.id,
    occurred_at: event.occurred_at,
    action: event.action,
    actor: event.actor,
    subject: event.subject,
    from_digest: event.from_digest,
    to_digest: event.to_digest,
    reason: event.reason,
    payload: event.payload,
    writer_id: event.writer_id,
    seq: event.seq,
    prev_hash: event.prev_hash,
    hash: event.hash,
  };
}

function digestOf(raw: string): string {
  const digest = normaliseDigest(decodeURIComponent(raw).toLowerCase());
  if (!digest)
    throw new ProblemError(400, 'invalid_digest', 'a bundle digest is 64 hex digits (or sha256:<hex>)');
  return digest;
}

function timeParam(name: string, value: string | undefined, fallback: Date): string {
  if (value === undefined) return fallback.toISOString();
  const at = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(at.getTime())) {
    throw new ProblemError(400, 'invalid_parameter', `${name} must be an ISO-8601 date or date-time`, {
      errors: [{ path: `/${name}`, message: 'not an ISO-8601 date or date-time' }],
    });
  }
  return at.toISOString();
}

/**
 * The policy lifecycle API: upload, list, read, activate (compare-and-set), shadow, fleet status,
 * policy events and the shadow report. Every change is made by PolicyLifecycle (src/bundles).
 */
export const bundleRoutes: FastifyPluginAsyncTypebox<BundleRouteDeps> = async (app, opts) => {
  const { lifecycle, replica } = opts;

  // NOTE: these parsers are registered inside this plugin only: bundle bytes are accepted here and
  // nowhere else. Any other media type on these routes is a 415 that says what to send.
  app.addContentTypeParser(
    [...BUNDLE_MEDIA_TYPES],
    { parseAs: 'buffer', bodyLimit: opts.maxBytes },
    (_request, body, done) => done(null, body),
  );
  app.addContentTypeParser('*', (request, _payload, done) => {
    done(
      new ProblemError(
        415,
        'unsupported_media_type',
        `send ${request.method === 'POST' && request.url.split('?')[0] === '/v1/bundles' ? BUNDLE_MEDIA_TYPES.join(' or ') : 'application/json'}`,
      ),
    );
  });

  const refused = (err: unknown): never => {
    if (err instanceof BundleError) {
      opts.onRefused?.(err.code);
      throw new ProblemError(400, err.code, err.message);
    }
    if (err instanceof RevisionNotFoundError) throw new ProblemError(404, 'bundle_not_found', err.message);
    if (err instanceof ActivationConflictError) {
      throw new ProblemError(409, 'activation_conflict', err.message, {
        expected_active: err.expected,
        active: err.actual,
      });
    }
    throw err;
  };

  app.post(
    '/v1/bundles',
    {
      config: { scope: 'bundles:write' },
      bodyLimit: opts.maxBytes,
      schema: {
        summary: 'Upload a bundle (the raw bytes of an OPA wasm bundle); with activate=true, activate it too',
        tags: ['bundles'],
        querystring: Type.Object(
          {
            activate: Type.Optional(Type.String({ enum: ['true', 'false'] })),
            reason: Type.Optional(Reason),
            expected_active: Type.Optional(Type.String({ maxLength: 80 })),
          },
          { additionalProperties: false },
        ),
        consumes: [...BUNDLE_MEDIA_TYPES],
        response: { 200: BundleRevisionV1, 201: BundleRevisionV1, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (!Buffer.isBuffer(body) || body.byteLength === 0) {
        throw new ProblemError(400, 'bundle_invalid', 'send the bundle bytes as the body (application/gzip)');
      }
      const actor = request.caller.sub;
      const { reason } = request.query;
      let uploaded: Awaited<ReturnType<PolicyLifecycle['upload']>>;
      try {
        uploaded = await lifecycle.upload(body, actor, { reason });
        if (request.query.activate === 'true') {
          const expected = request.query.expected_active;
          await lifecycle.activate(uploaded.revision.digest, actor, {
            reason,
            expectedActive: expected === undefined ? undefined : digestOf(expected),
          });
          uploaded.revision = (await lifecycle.get(uploaded.revision.digest)) ?? uploaded.revision;
        }
      } catch (err) {
        refused(err);
      }
      return reply.code(uploaded!.created ? 201 : 200).send(revisionV1(uploaded!.revision));
    },
  );

  app.get(
    '/v1/bundles',
    {
      config: { scope: READ },
      schema: {
        summary: 'Stored revisions, newest first, each with its state',
        tags: ['bundles'],
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
            before: Type.Optional(
              Type.String({ maxLength: 80, description: 'the last digest of the previous page' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ revisions: Type.Array(BundleRevisionV1) }), ...errors },
      },
    },
    async (request) => {
      const { limit, before } = request.query;
      const revisions = await lifecycle.list({
        limit: limit === undefined ? undefined : Number(limit),
        before: before === undefined ? undefined : digestOf(before),
      });
      return { revisions: revisions.map(revisionV1) };
    },
  );

  app.get(
    '/v1/bundles/status',
    {
      config: { scope: READ },
      schema: {
        summary: 'Every live replica, the revisions it serves and its last heartbeat',
        tags: ['bundles'],
        response: {
          200: Type.Object({ desired: BundlesStateV1, replicas: Type.Array(ReplicaV1) }),
          ...errors,
        },
      },
    },
    async () => {
      // This replica's row is written now, so the answer is never older than this request here.
      await replica?.beat();
      const { desired, replicas } = await lifecycle.status(opts.replicaTimeoutMs);
      return {
        desired: stateV1(desired),
        replicas: replicas.map((r) => {
          const served = (r.state.bundles ?? {}) as Record<string, unknown>;
          return {
            id: r.id,
            host: r.host,
            pid: r.pid,
            started_at: r.startedAt,
            heartbeat_at: r.heartbeatAt,
            active: (served.active as string | undefined) ?? null,
            active_revision: (served.activeRevision as string | undefined) ?? null,
            shadow: (served.shadow as string | null | undefined) ?? null,
            since: (served.since as string | null | undefined) ?? null,
            applied_version: Number(served.appliedVersion ?? 0),
            failure:
              (served.failure as { message: string; at: string; version: number } | null | undefined) ?? null,
            failing_since: (served.failingSince as string | null | undefined) ?? null,
          };
        }),
      };
    },
  );

  app.get(
    '/v1/bundles/events',
    {
      config: { scope: READ },
      schema: {
        summary: 'Policy events (uploads, activations, shadow changes, refusals), newest first; hash-chained',
        tags: ['bundles'],
        querystring: Type.Object(
          {
            action: Type.Optional(
              Type.String({ enum: ['upload', 'activate', 'shadow_set', 'shadow_clear', 'refuse'] }),
            ),
            limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
            before: Type.Optional(
              Type.String({ format: 'uuid', description: 'the last event id of the previous page' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ events: Type.Array(PolicyEventV1) }), ...errors },
      },
    },
    async (request) => {
      const { action, limit, before } = request.query;
      const events = await lifecycle.events({
        action,
        before,
        limit: limit === undefined ? undefined : Number(limit),
      });
      return { events: events.map(eventV1) };
    },
  );

  app.get(
    '/v1/bundles/shadow/report',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary:
          'What the shadow revision would have changed: decisions compared, flips by direction and control',
        tags: ['bundles'],
        querystring: Type.Object(
          {
            from: Type.Optional(Type.String({ maxLength: 64, description: 'inclusive; default 24 h ago' })),
            to: Type.Optional(Type.String({ maxLength: 64, description: 'exclusive; default now' })),
            digest: Type.Optional(Type.String({ maxLength: 80, description: 'only this shadow revision' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            from: Type.String(),
            to: Type.String(),
            digest: Nullable(Type.String()),
            compared: Type.Integer(),
            shadow_digests: Type.Array(Type.String()),
            flips: Type.Array(Flip),
            by_control: Type.Array(Type.Object({ ...Flip.properties, control: Type.String() })),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      const now = new Date();
      const from = timeParam('from', request.query.from, new Date(now.getTime() - 86_400_000));
      const to = timeParam('to', request.query.to, now);
      const digest = request.query.digest === undefined ? null : digestOf(request.query.digest);
      const report = await lifecycle.shadowReport({ from, to, digest });
      return {
        from: report.from,
        to: report.to,
        digest: report.digest,
        compared: report.compared,
        shadow_digests: report.shadowDigests,
        flips: report.flips.map((f) => ({ direction: f.direction, count: f.count, sample_ids: f.sampleIds })),
        by_control: report.byControl.map((f) => ({
          direction: f.direction,
          control: f.control,
          count: f.count,
          sample_ids: f.sampleIds,
        })),
      };
    },
  );

  app.delete(
    '/v1/bundles/shadow',
    {
      config: { scope: 'bundles:write' },
      schema: {
        summary: 'Stop shadowing on every replica',
        tags: ['bundles'],
        querystring: Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false }),
        response: { 200: ChangeResponseV1, ...errors },
      },
    },
    async (request) => {
      const { state, changed } = await lifecycle.setShadow(null, request.caller.sub, {
        reason: request.query.reason,
      });
      return { changed, state: stateV1(state) };
    },
  );

  app.get(
    '/v1/bundles/:digest',
    {
      config: { scope: READ },
      schema: {
        summary: 'One stored revision',
        tags: ['bundles'],
        params: DigestParam,
        response: { 200: BundleRevisionV1, ...errors },
      },
    },
    async (request) => {
      const digest = digestOf(request.params.digest);
      const info = await lifecycle.get(digest);
      if (!info) throw new ProblemError(404, 'bundle_not_found', `no bundle revision ${digest}`);
      return revisionV1(info);
    },
  );

  app.get(
    '/v1/bundles/:digest/content',
    {
      config: { scope: READ },
      schema: {
        summary: 'The bundle bytes as uploaded',
        tags: ['bundles'],
        params: DigestParam,
        produces: ['application/gzip'],
        response: { ...errors },
      },
    },
    async (request, reply) => {
      const digest = digestOf(request.params.digest);
      const bytes = await lifecycle.content(digest);
      if (!bytes) throw new ProblemError(404, 'bundle_not_found', `no bundle revision ${digest}`);
      return (
        reply
          .type('application/gzip')
          .header('content-disposition', `attachment; filename="bundle-${digest.slice(7, 19)}.tar.gz"`)
          .header('etag', `"${digest}"`)
          // NOTE: the 200 is raw bytes, described by its media type; the type provider models only JSON.
          .send(bytes as never)
      );
    },
  );

  const ChangeBody = Type.Object(
    {
      reason: Type.Optional(Reason),
      expected_active: Type.Optional(
        Nullable(
          Type.String({ maxLength: 80, description: 'compare-and-set: the digest you expect active' }),
        ),
      ),
    },
    { additionalProperties: false },
  );

  app.post(
    '/v1/bundles/:digest/activate',
    {
      config: { scope: 'bundles:write' },
      schema: {
        summary: 'Make this revision active on every replica (rollback = activate an earlier digest)',
        tags: ['bundles'],
        params: DigestParam,
        body: Type.Optional(ChangeBody),
        response: { 200: ChangeResponseV1, ...errors },
      },
    },
    async (request) => {
      const digest = digestOf(request.params.digest);
      const body = request.body ?? {};
      const expected = body.expected_active;
      try {
        const { state, changed } = await lifecycle.activate(digest, request.caller.sub, {
          reason: body.reason,
          expectedActive: expected === undefined ? undefined : expected === null ? null : digestOf(expected),
        });
        return { changed, state: stateV1(state) };
      } catch (err) {
        return refused(err);
      }
    },
  );

  app.post(
    '/v1/bundles/:digest/shadow',
    {
      config: { scope: 'bundles:write' },
      schema: {
        summary: 'Evaluate this revision beside the active one on every decision (never changes an answer)',
        tags: ['bundles'],
        params: DigestParam,
        body: Type.Optional(Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false })),
        response: { 200: ChangeResponseV1, ...errors },
      },
    },
    async (request) => {
      const digest = digestOf(request.params.digest);
      try {
        const { state, changed } = await lifecycle.setShadow(digest, request.caller.sub, {
          reason: request.body?.reason,
        });
        return { changed, state: stateV1(state) };
      } catch (err) {
        return refused(err);
      }
    },
  );
};
