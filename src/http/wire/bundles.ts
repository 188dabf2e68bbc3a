import { type Static, Type } from 'typebox';
import { Nullable, StringEnum } from './problem.ts';

const Digest = Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description: '`sha256:<hex>`' });
const Reason = Type.String({ maxLength: 1000 });
const PageLimit = Type.String({ pattern: '^[0-9]{1,4}$' });

/** The media types a bundle upload may be sent as. */
export const BUNDLE_MEDIA_TYPES = ['application/gzip', 'application/vnd.openpolicyagent.bundles'] as const;

/** `/v1/bundles/{digest}…`: the digest is checked (and normalised) by the route. */
export const DigestParamsV1 = Type.Object(
  { digest: Type.String({ maxLength: 80, description: 'hex SHA-256 of the bundle (or `sha256:<hex>`)' }) },
  { additionalProperties: false },
);

export const BundleUploadQueryV1 = Type.Object(
  {
    activate: Type.Optional(StringEnum(['true', 'false'])),
    reason: Type.Optional(Reason),
    expected_active: Type.Optional(Type.String({ maxLength: 80 })),
  },
  { additionalProperties: false },
);

/** The raw bytes of an OPA wasm bundle (parsed by the bundle routes' own content-type parser). */
export const BundleBytesV1 = Type.Unsafe<Buffer>({ type: 'string', format: 'binary' });

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
export type BundleRevisionV1 = Static<typeof BundleRevisionV1>;

export const BundleListQueryV1 = Type.Object(
  {
    limit: Type.Optional(PageLimit),
    before: Type.Optional(
      Type.String({ maxLength: 80, description: 'the last digest of the previous page' }),
    ),
  },
  { additionalProperties: false },
);
export const BundleListV1 = Type.Object({ revisions: Type.Array(BundleRevisionV1) });

/** `GET /v1/bundles/{digest}/content`: the bundle bytes as uploaded. */
export const BundleContentResponseV1 = {
  description: 'The bundle bytes as uploaded',
  content: { 'application/gzip': { schema: BundleBytesV1 } },
};

export const BundlesStateV1 = Type.Object({
  version: Type.Integer({ description: 'Grows by one with every change of the active or shadow revision' }),
  active: Nullable(Digest),
  active_since: Nullable(Type.String()),
  shadow: Nullable(Digest),
  shadow_since: Nullable(Type.String()),
  updated_by: Type.String(),
  updated_at: Type.String(),
});
export type BundlesStateV1 = Static<typeof BundlesStateV1>;

/** Activate (or roll back to) a revision; `expected_active` makes it a compare-and-set. */
export const ActivateRequestV1 = Type.Object(
  {
    reason: Type.Optional(Reason),
    expected_active: Type.Optional(
      Nullable(Type.String({ maxLength: 80, description: 'compare-and-set: the digest you expect active' })),
    ),
  },
  { additionalProperties: false, examples: [{ reason: 'allowlist reviewed' }] },
);
export const ShadowRequestV1 = Type.Object(
  { reason: Type.Optional(Reason) },
  { additionalProperties: false, examples: [{ reason: 'try it on live traffic' }] },
);
export const ReasonQueryV1 = Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false });

export const ChangeResponseV1 = Type.Object({ changed: Type.Boolean(), state: BundlesStateV1 });

export const POLICY_EVENT_ACTIONS = [
  'upload',
  'activate',
  'shadow_set',
  'shadow_clear',
  'refuse',
  'impact_start',
  'impact_finish',
] as const;

export const PolicyEventQueryV1 = Type.Object(
  {
    action: Type.Optional(StringEnum(POLICY_EVENT_ACTIONS)),
    limit: Type.Optional(PageLimit),
    before: Type.Optional(
      Type.String({ format: 'uuid', description: 'the last event id of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

export const PolicyEventV1 = Type.Object({
  id: Type.String(),
  occurred_at: Type.String(),
  action: Type.String({ description: POLICY_EVENT_ACTIONS.join(', ') }),
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
export const PolicyEventListV1 = Type.Object({ events: Type.Array(PolicyEventV1) });

const ReplicaFailureV1 = Type.Object({ message: Type.String(), at: Type.String(), version: Type.Integer() });
export type ReplicaFailureV1 = Static<typeof ReplicaFailureV1>;

export const ReplicaV1 = Type.Object({
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
  failure: Nullable(ReplicaFailureV1),
  failing_since: Nullable(Type.String()),
});
export type ReplicaV1 = Static<typeof ReplicaV1>;

export const FleetStatusV1 = Type.Object({ desired: BundlesStateV1, replicas: Type.Array(ReplicaV1) });

export const ShadowReportQueryV1 = Type.Object(
  {
    from: Type.Optional(Type.String({ maxLength: 64, description: 'inclusive; default 24 h ago' })),
    to: Type.Optional(Type.String({ maxLength: 64, description: 'exclusive; default now' })),
    digest: Type.Optional(
      Type.String({ maxLength: 80, description: 'only this shadow revision; default: the current one' }),
    ),
  },
  { additionalProperties: false },
);

const FlipV1 = Type.Object({
  direction: Type.String(),
  count: Type.Integer(),
  sample_ids: Type.Array(Type.String()),
});

export const ShadowReportV1 = Type.Object({
  from: Type.String(),
  to: Type.String(),
  digest: Nullable(Type.String()),
  compared: Type.Integer(),
  shadow_digests: Type.Array(Type.String()),
  flips: Type.Array(FlipV1),
  by_control: Type.Array(Type.Object({ ...FlipV1.properties, control: Type.String() })),
});
