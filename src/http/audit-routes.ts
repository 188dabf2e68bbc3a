import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type TSchema, Type } from 'typebox';
import type { CheckpointReport } from '../audit/checkpoints.ts';
import type { EventVerifyReport } from '../audit/event-log.ts';
import {
  EXPORT_CONTENT_TYPES,
  EXPORT_EXTENSIONS,
  EXPORT_FORMATS,
  type ExportFormat,
  exportDecisions,
} from '../audit/export.ts';
import { KPI_BUCKETS, type KpiBucket, type KpiReport } from '../audit/kpis.ts';
import {
  AuditQueryError,
  type DecisionLogReader,
  isUuid,
  MAX_PAGE_LIMIT,
  parseFilter,
  parsePage,
} from '../audit/queries.ts';
import type { DecisionReplayer } from '../audit/replay.ts';
import type { VerifyReport } from '../audit/verify.ts';
import { ProblemError } from './problem.ts';
import { ProblemV1 } from './schemas.ts';

/**
 * Hash-chain verification over a time range; the report is returned as-is. With the platform event
 * log (policy events…), `events` is its own report; `checkpoints` is the signed-checkpoint report (a
 * rewritten chain shows there); `ok` covers all.
 */
export type ChainVerifier = (range: {
  from?: Date;
  to?: Date;
}) => Promise<VerifyReport & { events?: EventVerifyReport; checkpoints?: CheckpointReport }>;

/** What the auditor API needs (constructed by the composition root, src/create-verdict.ts). */
export interface AuditDeps {
  log: DecisionLogReader;
  replayer: DecisionReplayer;
  /** audit-core's verifyChains bound to the database; absent → 503 verify_unavailable. */
  verify?: ChainVerifier;
  /** Governance KPIs (src/audit/kpis.ts computeKpis on the database); absent → 503 kpis_unavailable. */
  kpis?: (range: { from: Date; to: Date; bucket: KpiBucket }) => Promise<KpiReport>;
}

/** The longest KPI window: a year (and a day for leap years). */
const KPI_MAX_WINDOW_MS = 366 * 86_400_000;
const KPI_DEFAULT_WINDOW_MS = 30 * 86_400_000;

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Param = (description: string) => Type.Optional(Type.String({ maxLength: 256, description }));

const FilterParams = {
  from: Param('Inclusive lower bound on decided_at: ISO-8601 date or date-time with zone'),
  to: Param('Exclusive upper bound on decided_at: ISO-8601 date or date-time with zone'),
  caller_sub: Param('The caller (token subject) that asked'),
  subject_type: Param('subject.type'),
  subject_id: Param('subject.id'),
  action: Param('action.name'),
  resource_type: Param('resource.type'),
  resource_id: Param('resource.id'),
  allow: Type.Optional(Type.String({ enum: ['true', 'false'], description: 'Only allows or only denies' })),
  entrypoint: Param('The policy entrypoint, e.g. verdict/decision'),
  revision: Param('The bundle revision (manifest revision)'),
  control: Param('A control id among the violated controls, e.g. TOOL-002'),
  exception: Param('A waiver id among the applied exceptions: the decisions that waiver allowed'),
};

export const DecisionSearchQueryV1 = Type.Object(
  {
    ...FilterParams,
    limit: Type.Optional(
      Type.String({ pattern: '^[0-9]+$', description: `Page size, 1..${MAX_PAGE_LIMIT} (default 50)` }),
    ),
    cursor: Param('Opaque: next_cursor of the previous page'),
  },
  { additionalProperties: false },
);

export const ExportQueryV1 = Type.Object(
  {
    ...FilterParams,
    format: Type.Optional(
      Type.String({
        enum: [...EXPORT_FORMATS],
        description:
          'Default ndjson; ocsf = OCSF API Activity (6003) events, splunk-hec = Splunk HEC events, one per line',
      }),
    ),
  },
  { additionalProperties: false },
);

export const DecisionRecordV1 = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    decided_at: Type.String({ format: 'date-time' }),
    surface: Type.String(),
    caller_sub: Type.String(),
    caller: Type.Unknown(),
    entrypoint: Type.String(),
    bundle_revision: Type.String(),
    bundle_digest: Type.String(),
    subject_type: Nullable(Type.String()),
    subject_id: Nullable(Type.String()),
    action_name: Nullable(Type.String()),
    resource_type: Nullable(Type.String()),
    resource_id: Nullable(Type.String()),
    allow: Type.Boolean(),
    violated_controls: Type.Array(Type.String()),
    result: Type.Unknown({ description: 'Contract result, or the raw value for the data surface' }),
    input: Type.Unknown({ description: 'The policy input after masking' }),
    input_sha256: Type.String({ description: 'SHA-256 of the canonical JSON of the unmasked input' }),
    exceptions: Type.Array(Type.String()),
    shadow: Type.Unknown(),
    eval_micros: Type.Integer(),
    trace_id: Nullable(Type.String()),
    error: Type.Unknown(),
    writer_id: Type.String(),
    seq: Type.Integer(),
    prev_hash: Type.String(),
    hash: Type.String(),
  },
  { $id: 'DecisionRecordV1' },
);

export const DecisionPageV1 = Type.Object(
  {
    items: Type.Array(DecisionRecordV1),
    next_cursor: Nullable(Type.String({ description: 'Pass as cursor to continue after the last item' })),
    has_more: Type.Boolean({ description: 'More matching records existed when this page was read' }),
  },
  { $id: 'DecisionPageV1' },
);

const ReplayOutcomeV1 = Type.Object({
  revision: Nullable(Type.String()),
  digest: Type.String(),
  available: Type.Boolean(),
  allow: Nullable(Type.Boolean()),
  result: Type.Unknown(),
  error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
  matches: Nullable(Type.Boolean()),
});

export const ReplayReportV1 = Type.Object(
  {
    decision_id: Type.String(),
    surface: Type.String(),
    entrypoint: Type.String(),
    recorded: Type.Object({
      allow: Type.Boolean(),
      result: Type.Unknown(),
      revision: Type.String(),
      digest: Type.String(),
    }),
    masked: Type.Boolean({
      description:
        'The stored input differs from what the policy saw (masking); replays ran on the masked input',
    }),
    stored: ReplayOutcomeV1,
    active: ReplayOutcomeV1,
  },
  { $id: 'ReplayReportV1' },
);

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

function badQuery(err: unknown): never {
  if (err instanceof AuditQueryError) {
    throw new ProblemError(400, err.code, err.message, {
      errors: [{ path: `/${err.parameter}`, message: err.message }],
    });
  }
  throw err;
}

function decisionId(raw: string): string {
  if (!isUuid(raw)) throw new ProblemError(400, 'invalid_decision_id', 'the decision id must be a UUID');
  return raw.toLowerCase();
}

function notFound(id: string): never {
  throw new ProblemError(404, 'decision_not_found', `no decision ${id}`);
}

/** The auditor API: search, one record, export, replay, chain verification. All need audit:read. */
export const auditRoutes: FastifyPluginAsyncTypebox<AuditDeps> = async (app, deps) => {
  const { log, replayer, verify, kpis } = deps;
  const errors = { '4xx': ProblemV1, '5xx': ProblemV1 };

  app.get(
    '/v1/decisions',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Search recorded decisions (oldest first, keyset pagination)',
        tags: ['audit'],
        querystring: DecisionSearchQueryV1,
        response: { 200: DecisionPageV1, ...errors },
      },
    },
    async (request) => {
      const params = request.query;
      let filter: ReturnType<typeof parseFilter>;
      let page: ReturnType<typeof parsePage>;
      try {
        filter = parseFilter(params);
        page = parsePage(params);
      } catch (err) {
        badQuery(err);
      }
      const result = await log.search(filter, page);
      return { items: result.items, next_cursor: result.nextCursor, has_more: result.hasMore };
    },
  );

  app.get(
    '/v1/decisions/:id',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'One recorded decision',
        tags: ['audit'],
        params: IdParams,
        response: { 200: DecisionRecordV1, ...errors },
      },
    },
    async (request) => {
      const id = decisionId(request.params.id);
      return (await log.get(id)) ?? notFound(id);
    },
  );

  app.post(
    '/v1/decisions/:id/replay',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Re-evaluate a recorded decision on its own revision and on the active one (not recorded)',
        tags: ['audit'],
        params: IdParams,
        response: { 200: ReplayReportV1, ...errors },
      },
    },
    async (request) => {
      const id = decisionId(request.params.id);
      const report = (await replayer.replay(id)) ?? notFound(id);
      return {
        decision_id: report.decisionId,
        surface: report.surface,
        entrypoint: report.entrypoint,
        recorded: report.recorded,
        masked: report.masked,
        stored: report.stored,
        active: report.active,
      };
    },
  );

  app.get(
    '/v1/audit/export',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Stream every matching decision as NDJSON or CSV (oldest first)',
        description:
          'Without `to`, the export ends at the time of the request, so it terminates while decisions keep arriving.',
        tags: ['audit'],
        querystring: ExportQueryV1,
        response: {
          200: {
            description: 'NDJSON (one DecisionRecordV1 per line) or CSV with a header row',
            content: {
              'application/x-ndjson': { schema: Type.String() },
              'text/csv': { schema: Type.String() },
            },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const params = request.query;
      let filter: ReturnType<typeof parseFilter>;
      try {
        filter = parseFilter(params);
      } catch (err) {
        badQuery(err);
      }
      filter.to ??= new Date().toISOString();
      const format: ExportFormat = (params.format as ExportFormat | undefined) ?? 'ndjson';
      const stream = exportDecisions(log, filter, format);
      return (
        reply
          .type(EXPORT_CONTENT_TYPES[format])
          .header('content-disposition', `attachment; filename="decisions.${EXPORT_EXTENSIONS[format]}"`)
          // NOTE: the 200 is a stream, described by content type in the schema; the type provider
          // models only JSON bodies.
          .send(stream as never)
      );
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Verify the hash chains of the decision log (a report: ok false is not an error)',
        tags: ['audit'],
        querystring: Type.Object(
          { from: FilterParams.from, to: FilterParams.to },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ ok: Type.Boolean() }, { additionalProperties: true }), ...errors },
      },
    },
    async (request) => {
      let filter: ReturnType<typeof parseFilter>;
      try {
        filter = parseFilter(request.query);
      } catch (err) {
        badQuery(err);
      }
      if (!verify) throw new ProblemError(503, 'verify_unavailable', 'chain verification is not available');
      return verify({
        from: filter.from ? new Date(filter.from) : undefined,
        to: filter.to ? new Date(filter.to) : undefined,
      });
    },
  );
  app.get(
    '/v1/kpis',
    {
      config: { scope: 'audit:read' },
      schema: {
        summary: 'Governance KPIs from the decision log, waivers and approvals (a window of whole UTC hours)',
        tags: ['audit'],
        querystring: Type.Object(
          {
            from: Param(
              'Inclusive start (ISO-8601 date or date-time with zone); default: 30 days before `to`',
            ),
            to: Param('Exclusive end; default: now'),
            bucket: Type.Optional(
              Type.String({ enum: [...KPI_BUCKETS], description: 'Size of the series points; default day' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ from: Type.String() }, { additionalProperties: true }), ...errors },
      },
    },
    async (request) => {
      let filter: ReturnType<typeof parseFilter>;
      try {
        filter = parseFilter({ from: request.query.from, to: request.query.to });
      } catch (err) {
        badQuery(err);
      }
      if (!kpis) throw new ProblemError(503, 'kpis_unavailable', 'KPIs need the decision log database');
      const to = filter.to ? new Date(filter.to) : new Date();
      const from = filter.from ? new Date(filter.from) : new Date(to.getTime() - KPI_DEFAULT_WINDOW_MS);
      if (from.getTime() >= to.getTime()) {
        throw new ProblemError(400, 'invalid_time_range', '`from` must be before `to`', {
          errors: [{ path: '/from', message: '`from` must be before `to`' }],
        });
      }
      if (to.getTime() - from.getTime() > KPI_MAX_WINDOW_MS) {
        throw new ProblemError(400, 'invalid_time_range', 'the KPI window is at most 366 days', {
          errors: [{ path: '/from', message: 'the KPI window is at most 366 days' }],
        });
      }
      return kpis({ from, to, bucket: (request.query.bucket as KpiBucket | undefined) ?? 'day' });
    },
  );
};
