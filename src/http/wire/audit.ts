import { type Static, Type } from 'typebox';
import { EXPORT_FORMATS } from '../../audit/export.ts';
import { KPI_BUCKETS } from '../../audit/kpis.ts';
import { MAX_PAGE_LIMIT } from '../../audit/queries.ts';
import { Nullable, StringEnum } from './problem.ts';

const Param = (description: string) => Type.Optional(Type.String({ maxLength: 256, description }));

export const FilterParams = {
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
      StringEnum(EXPORT_FORMATS, {
        description:
          'Default ndjson; ocsf = OCSF API Activity (6003) events, splunk-hec = Splunk HEC events, one per line',
      }),
    ),
  },
  { additionalProperties: false },
);

/** A streamed body (an export, an evidence package): bytes, described by its media type. */
export const StreamV1 = Type.Unsafe<NodeJS.ReadableStream>({ type: 'string', format: 'binary' });

/** `GET /v1/audit/export`: NDJSON, CSV, OCSF or Splunk HEC lines, streamed. */
export const ExportResponseV1 = {
  description: 'NDJSON (one DecisionRecordV1 per line) or CSV with a header row',
  content: { 'application/x-ndjson': { schema: StreamV1 }, 'text/csv': { schema: StreamV1 } },
};

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

/** `GET /v1/decisions/{id}`, `POST /v1/decisions/{id}/replay`: the id is checked by the route. */
export const DecisionIdParamsV1 = Type.Object({ id: Type.String({ maxLength: 64 }) });

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

export const VerifyQueryV1 = Type.Object(
  { from: FilterParams.from, to: FilterParams.to },
  { additionalProperties: false },
);

/** The chain report as audit-core returns it (`ok` false is a report, not an error). */
export const VerifyReportV1 = Type.Object({ ok: Type.Boolean() }, { additionalProperties: true });

export const KpiQueryV1 = Type.Object(
  {
    from: Param('Inclusive start (ISO-8601 date or date-time with zone); default: 30 days before `to`'),
    to: Param('Exclusive end; default: now'),
    bucket: Type.Optional(StringEnum(KPI_BUCKETS, { description: 'Size of the series points; default day' })),
  },
  { additionalProperties: false },
);

/** The KPI report (src/audit/kpis.ts), as computed. */
export const KpiReportV1 = Type.Object({ from: Type.String() }, { additionalProperties: true });

const EvidenceParam = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });

export const EvidenceQueryV1 = Type.Object(
  {
    resource_type: EvidenceParam('resource.type of the decisions, e.g. model_release'),
    resource_id: EvidenceParam('resource.id, e.g. support-llm@3.2.0'),
    from: Type.Optional(EvidenceParam('Inclusive lower bound on decided_at (ISO-8601)')),
    to: Type.Optional(EvidenceParam('Exclusive upper bound on decided_at (ISO-8601)')),
  },
  { additionalProperties: false },
);

/** `GET /v1/evidence`: the signed package, streamed. */
export const EvidencePackageResponseV1 = {
  description: 'The signed evidence package (tar.gz)',
  content: { 'application/gzip': { schema: StreamV1 } },
};

/** The Ed25519 public keys as a JWKS. */
export const EvidenceKeysV1 = Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.String())) });

export type DecisionSearchQueryV1 = Static<typeof DecisionSearchQueryV1>;
export type ExportQueryV1 = Static<typeof ExportQueryV1>;
