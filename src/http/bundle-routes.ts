import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { EventRow } from '../audit/event-log.ts';
import type { Scope } from '../auth/caller.ts';
import {
  type BundleRevisionInfo,
  type BundlesState,
  normaliseDigest,
  type PolicyLifecycle,
  RevisionNotFoundError,
} from '../bundles/lifecycle.ts';
import type { BundleReplica } from '../bundles/replica.ts';
import { BundleError } from '../engine/bundle.ts';
import { isObject } from '../json/values.ts';
import type { FleetState, ReplicaRecord } from '../store/fleet.ts';
import { impactRoutes } from './impact-routes.ts';
import { ProblemError } from './problem.ts';
import {
  ActivateRequestV1,
  BUNDLE_MEDIA_TYPES,
  BundleContentResponseV1,
  BundleListQueryV1,
  BundleListV1,
  BundleRevisionV1,
  type BundlesStateV1,
  BundleUploadQueryV1,
  ChangeResponseV1,
  DigestParamsV1,
  FleetStatusV1,
  PolicyEventListV1,
  PolicyEventQueryV1,
  ProblemResponses,
  ReasonQueryV1,
  type ReplicaFailureV1,
  type ReplicaV1,
  ShadowReportQueryV1,
  ShadowReportV1,
  ShadowRequestV1,
} from './wire/index.ts';

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

const READ: readonly Scope[] = ['bundles:read', 'audit:read'];

function revisionV1(info: BundleRevisionInfo): BundleRevisionV1 {
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

function stateV1(state: FleetState<BundlesState>): BundlesStateV1 {
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

const textOrNull = (value: unknown): string | null => (typeof value === 'string' ? value : null);

function failureOf(value: unknown): ReplicaFailureV1 | null {
  if (!isObject(value)) return null;
  const { message, at, version } = value;
  return typeof message === 'string' && typeof at === 'string' && typeof version === 'number'
    ? { message, at, version }
    : null;
}

/**
 * A replica's row. What it serves is the JSON its heartbeat stored (ReplicaBundleStatus), read
 * field by field: a replica of another version may have written another shape.
 */
function replicaV1(record: ReplicaRecord): ReplicaV1 {
  const served = isObject(record.state.bundles) ? record.state.bundles : {};
  return {
    id: record.id,
    host: record.host,
    pid: record.pid,
    started_at: record.startedAt,
    heartbeat_at: record.heartbeatAt,
    active: textOrNull(served.active),
    active_revision: textOrNull(served.activeRevision),
    shadow: textOrNull(served.shadow),
    since: textOrNull(served.since),
    applied_version: Number(served.appliedVersion ?? 0),
    failure: failureOf(served.failure),
    failing_since: textOrNull(served.failingSince),
  };
}

function digestOf(raw: string): string {
  const digest = normaliseDigest(decodeURIComponent(raw).toLowerCase());
  if (!digest)
    throw new ProblemError(400, 'invalid_digest', 'a bundle digest is 64 hex digits (or sha256:<hex>)');
  return digest;
}

/** An optional `expected_active`: absent (no compare-and-set), null (none active) or a digest. */
function expectedActiveOf(raw: string | null | undefined): string | null | undefined {
  return raw === undefined || raw === null ? raw : digestOf(raw);
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

/** `POST /v1/bundles`: store a bundle's bytes (checked first); with `activate=true`, activate it too. */
const bundleUpload: FastifyPluginAsyncTypebox<BundleRouteDeps> = async (app, { lifecycle, maxBytes }) => {
  app.post(
    '/v1/bundles',
    {
      config: { scope: 'bundles:write' },
      bodyLimit: maxBytes,
      schema: {
        summary: 'Upload a bundle (the raw bytes of an OPA wasm bundle); with activate=true, activate it too',
        tags: ['bundles'],
        querystring: BundleUploadQueryV1,
        consumes: [...BUNDLE_MEDIA_TYPES],
        response: { 200: BundleRevisionV1, 201: BundleRevisionV1, ...ProblemResponses },
      },
    },
    async (request, reply) => {
      const body: unknown = request.body;
      if (!Buffer.isBuffer(body) || body.byteLength === 0) {
        throw new ProblemError(400, 'bundle_invalid', 'send the bundle bytes as the body (application/gzip)');
      }
      const actor = request.caller.sub;
      const { reason, activate, expected_active } = request.query;
      const uploaded = await lifecycle.upload(body, actor, { reason });
      let revision = uploaded.revision;
      if (activate === 'true') {
        await lifecycle.activate(revision.digest, actor, {
          reason,
          expectedActive: expected_active === undefined ? undefined : digestOf(expected_active),
        });
        revision = (await lifecycle.get(revision.digest)) ?? revision;
      }
      return reply.code(uploaded.created ? 201 : 200).send(revisionV1(revision));
    },
  );
};

/** The stored revisions: the list, one, and its bytes. */
const revisionReads: FastifyPluginAsyncTypebox<BundleRouteDeps> = async (app, { lifecycle }) => {
  app.get(
    '/v1/bundles',
    {
      config: { scope: READ },
      schema: {
        summary: 'Stored revisions, newest first, each with its state',
        tags: ['bundles'],
        querystring: BundleListQueryV1,
        response: { 200: BundleListV1, ...ProblemResponses },
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
    '/v1/bundles/:digest',
    {
      config: { scope: READ },
      schema: {
        summary: 'One stored revision',
        tags: ['bundles'],
        params: DigestParamsV1,
        response: { 200: BundleRevisionV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const digest = digestOf(request.params.digest);
      const info = await lifecycle.get(digest);
      if (!info) throw new RevisionNotFoundError(digest);
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
        params: DigestParamsV1,
        produces: ['application/gzip'],
        response: { 200: BundleContentResponseV1, ...ProblemResponses },
      },
    },
    async (request, reply) => {
      const digest = digestOf(request.params.digest);
      const bytes = await lifecycle.content(digest);
      if (!bytes) throw new RevisionNotFoundError(digest);
      return reply
        .type('application/gzip')
        .header('content-disposition', `attachment; filename="bundle-${digest.slice(7, 19)}.tar.gz"`)
        .header('etag', `"${digest}"`)
        .send(bytes);
    },
  );
};

/** The fleet: every live replica and what it serves, and the chained policy events. */
const fleetReads: FastifyPluginAsyncTypebox<BundleRouteDeps> = async (app, opts) => {
  const { lifecycle, replica } = opts;

  app.get(
    '/v1/bundles/status',
    {
      config: { scope: READ },
      schema: {
        summary: 'Every live replica, the revisions it serves and its last heartbeat',
        tags: ['bundles'],
        response: { 200: FleetStatusV1, ...ProblemResponses },
      },
    },
    async () => {
      // This replica's row is written now, so the answer is never older than this request here.
      await replica?.beat();
      const { desired, replicas } = await lifecycle.status(opts.replicaTimeoutMs);
      return { desired: stateV1(desired), replicas: replicas.map(replicaV1) };
    },
  );

  app.get(
    '/v1/bundles/events',
    {
      config: { scope: READ },
      schema: {
        summary: 'Policy events (uploads, activations, shadow changes, refusals), newest first; hash-chained',
        tags: ['bundles'],
        querystring: PolicyEventQueryV1,
        response: { 200: PolicyEventListV1, ...ProblemResponses },
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
};

/** `GET /v1/bundles/shadow/report`: what the shadow revision would have changed, in a window. */
const shadowReport: FastifyPluginAsyncTypebox<BundleRouteDeps> = async (app, { lifecycle }) => {
  app.get(
    '/v1/bundles/shadow/report',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary:
          'What the shadow revision would have changed: decisions compared, flips by direction and control',
        tags: ['bundles'],
        querystring: ShadowReportQueryV1,
        response: { 200: ShadowReportV1, ...ProblemResponses },
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
};

/** The changes every replica follows: activate (rollback = an earlier digest), shadow, stop shadowing. */
const bundleLifecycle: FastifyPluginAsyncTypebox<BundleRouteDeps> = async (app, { lifecycle }) => {
  app.delete(
    '/v1/bundles/shadow',
    {
      config: { scope: 'bundles:write' },
      schema: {
        summary: 'Stop shadowing on every replica',
        tags: ['bundles'],
        querystring: ReasonQueryV1,
        response: { 200: ChangeResponseV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const { state, changed } = await lifecycle.setShadow(null, request.caller.sub, {
        reason: request.query.reason,
      });
      return { changed, state: stateV1(state) };
    },
  );

  app.post(
    '/v1/bundles/:digest/activate',
    {
      config: { scope: 'bundles:write' },
      schema: {
        summary: 'Make this revision active on every replica (rollback = activate an earlier digest)',
        tags: ['bundles'],
        params: DigestParamsV1,
        body: ActivateRequestV1,
        response: { 200: ChangeResponseV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const digest = digestOf(request.params.digest);
      const { reason, expected_active } = request.body;
      const { state, changed } = await lifecycle.activate(digest, request.caller.sub, {
        reason,
        expectedActive: expectedActiveOf(expected_active),
      });
      return { changed, state: stateV1(state) };
    },
  );

  app.post(
    '/v1/bundles/:digest/shadow',
    {
      config: { scope: 'bundles:write' },
      schema: {
        summary: 'Evaluate this revision beside the active one on every decision (never changes an answer)',
        tags: ['bundles'],
        params: DigestParamsV1,
        body: ShadowRequestV1,
        response: { 200: ChangeResponseV1, ...ProblemResponses },
      },
    },
    async (request) => {
      const digest = digestOf(request.params.digest);
      const { state, changed } = await lifecycle.setShadow(digest, request.caller.sub, {
        reason: request.body.reason,
      });
      return { changed, state: stateV1(state) };
    },
  );
};

/**
 * The policy lifecycle API: upload, reads, the shadow report, and the changes (activate, shadow).
 * Every change is made by PolicyLifecycle (src/bundles); its refusals (BundleError,
 * RevisionNotFoundError, ActivationConflictError) carry their codes to the app's one error mapper.
 */
export const bundleRoutes: FastifyPluginAsyncTypebox<BundleRouteDeps> = async (app, opts) => {
  // NOTE: these parsers are registered in this plugin only (its routes below inherit them): bundle
  // bytes are accepted here and nowhere else. Any other media type on these routes is a 415 that
  // says what to send.
  app.addContentTypeParser(
    [...BUNDLE_MEDIA_TYPES],
    { parseAs: 'buffer', bodyLimit: opts.maxBytes },
    (_request, body, done) => done(null, body),
  );
  app.addContentTypeParser('*', (request, _payload, done) => {
    const upload = request.method === 'POST' && request.url.split('?')[0] === '/v1/bundles';
    done(
      new ProblemError(
        415,
        'unsupported_media_type',
        `send ${upload ? BUNDLE_MEDIA_TYPES.join(' or ') : 'application/json'}`,
      ),
    );
  });
  // Every refused bundle (at upload, activation or shadowing) is counted, whichever route met it.
  app.addHook('onError', async (_request, _reply, error) => {
    if (error instanceof BundleError) opts.onRefused?.(error.code);
  });

  await app.register(bundleUpload, opts);
  await app.register(revisionReads, opts);
  await app.register(fleetReads, opts);
  await app.register(shadowReport, opts);
  await app.register(bundleLifecycle, opts);
  // Impact analysis (issue 22): src/http/impact-routes.ts.
  await app.register(impactRoutes, { lifecycle: opts.lifecycle });
};
