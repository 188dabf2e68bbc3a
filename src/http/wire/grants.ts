import { type Static, Type } from 'typebox';
import { StringEnum } from './problem.ts';

/** Waiver and approval ids (`exc_…`, `apr_…`): anything else is a 400, never a database round trip. */
export const GrantIdV1 = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' });
export const GrantIdParamsV1 = Type.Object({ id: GrantIdV1 });

// NOTE: no NUL: Postgres text cannot hold one (the JSON parser already refuses it in bodies; this
// covers query strings).
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max, pattern: '^[^\\x00]+$' });
const PageLimit = Type.String({ pattern: '^[0-9]{1,4}$' });

export const ExceptionRequestV1 = Type.Object(
  {
    control: Text(64),
    subject_id: Type.Optional(Text(256)),
    resource_id: Type.Optional(Text(256)),
    action: Type.Optional(Text(128)),
    reason: Text(4_000),
    compensating_controls: Type.Optional(Type.Array(Text(1_000), { maxItems: 50 })),
    ticket: Type.Optional(
      Type.Object(
        { system: Text(128), key: Text(256), url: Type.Optional(Type.String({ maxLength: 2_048 })) },
        { additionalProperties: false },
      ),
    ),
    expires_at: Type.String({ format: 'date-time', maxLength: 64 }),
  },
  { additionalProperties: false },
);
export type ExceptionRequestV1 = Static<typeof ExceptionRequestV1>;

/** Reject and revoke need a reason; approve may give one. */
export const ReasonRequestV1 = Type.Object({ reason: Text(4_000) }, { additionalProperties: false });
export const OptionalReasonRequestV1 = Type.Object(
  { reason: Type.Optional(Text(4_000)) },
  { additionalProperties: false },
);

export const EXCEPTION_STATES = ['pending', 'active', 'expired', 'revoked', 'rejected'] as const;

export const ExceptionListQueryV1 = Type.Object(
  {
    state: Type.Optional(StringEnum(EXCEPTION_STATES)),
    control: Type.Optional(Text(64)),
    subject_id: Type.Optional(Text(256)),
    resource_id: Type.Optional(Text(256)),
    expiring_within: Type.Optional(
      Type.String({ maxLength: 64, description: 'ISO-8601 duration, e.g. P7D' }),
    ),
    limit: Type.Optional(PageLimit),
  },
  { additionalProperties: false },
);
export type ExceptionListQueryV1 = Static<typeof ExceptionListQueryV1>;

/** A waiver as stored, with its history on a read of one. */
export const ExceptionV1 = Type.Object(
  { id: Type.String(), state: Type.String() },
  { additionalProperties: true },
);
export const ExceptionListV1 = Type.Object({ exceptions: Type.Array(ExceptionV1) });

export const APPROVAL_STATES = ['pending', 'granted', 'denied', 'expired'] as const;

export const ApprovalListQueryV1 = Type.Object(
  {
    state: Type.Optional(StringEnum(APPROVAL_STATES)),
    limit: Type.Optional(PageLimit),
  },
  { additionalProperties: false },
);

/** An approval request as stored, with its history on a read of one. */
export const ApprovalV1 = Type.Object(
  {
    id: Type.String(),
    state: Type.String(),
    arguments_digest: Type.Optional(
      Type.String({
        description: 'SHA-256 (hex) of the RFC 8785 canonical JSON of the arguments: the binding',
      }),
    ),
    arguments: Type.Optional(
      Type.Unknown({
        description:
          "The call's arguments, masked as the decision record's input is (system/log/mask): masked values appear as the mask writes them (an erased key is absent, an upserted one shows the mask's value); null when there were none or the mask removed them. Only for callers with approvals:grant.",
      }),
    ),
  },
  { additionalProperties: true },
);
export const ApprovalListV1 = Type.Object({ approvals: Type.Array(ApprovalV1) });

/** Grant or deny an approval request. */
export const ApprovalDecisionRequestV1 = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 4_000 })) },
  { additionalProperties: false },
);
