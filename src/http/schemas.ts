import { Type } from 'typebox';

const Properties = Type.Record(Type.String(), Type.Unknown());
const Name = Type.String({ minLength: 1, maxLength: 256 });

export const Subject = Type.Object(
  { type: Name, id: Name, properties: Type.Optional(Properties) },
  { additionalProperties: true },
);
export const Action = Type.Object(
  { name: Name, properties: Type.Optional(Properties) },
  { additionalProperties: true },
);
export const Resource = Type.Object(
  { type: Name, id: Name, properties: Type.Optional(Properties) },
  { additionalProperties: true },
);
export const Entrypoint = Type.String({
  minLength: 1,
  maxLength: 256,
  pattern: '^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$',
});

/** The native decision request: the envelope of DESIGN.md without caller and now. */
export const DecisionRequestV1 = Type.Object(
  {
    subject: Subject,
    action: Action,
    resource: Resource,
    context: Type.Optional(Properties),
    policy: Type.Optional(Entrypoint),
  },
  { additionalProperties: true, $id: 'DecisionRequestV1' },
);

const Loose = Type.Object({}, { additionalProperties: true });

/**
 * A batch item or the batch defaults: each part optional here, because an item may take it from the
 * defaults; the merged envelope is checked afterwards (src/http/envelope.ts).
 */
const BatchItem = Type.Object(
  {
    subject: Type.Optional(Loose),
    action: Type.Optional(Loose),
    resource: Type.Optional(Loose),
    context: Type.Optional(Loose),
    policy: Type.Optional(Entrypoint),
  },
  { additionalProperties: true },
);

export const BatchRequestV1 = Type.Object(
  {
    items: Type.Array(BatchItem, { minItems: 1 }),
    defaults: Type.Optional(BatchItem),
  },
  { additionalProperties: true, $id: 'BatchRequestV1' },
);

const Open = { additionalProperties: true };
export const DecisionResponseV1 = Type.Object(
  {
    decision_id: Type.String(),
    allow: Type.Boolean(),
    violations: Type.Array(
      Type.Object(
        { control: Type.String(), message: Type.String(), severity: Type.Optional(Type.String()) },
        Open,
      ),
    ),
    obligations: Type.Array(Type.Object({ type: Type.String() }, Open)),
    exceptions: Type.Array(Type.String()),
    /** The PDP-held human approvals the decision relied on (issue 13). */
    approvals: Type.Optional(Type.Array(Type.String())),
    /** On a deny that asks for a human approval: the pending request (issue 13). */
    approval_request: Type.Optional(
      Type.Object({ id: Type.String(), expires_at: Type.String(), status_url: Type.String() }),
    ),
    policy: Type.Object({ entrypoint: Type.String(), revision: Type.String(), digest: Type.String() }),
    evaluated_at: Type.String(),
  },
  { $id: 'DecisionResponseV1' },
);

export const ProblemV1 = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String(),
    detail: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { additionalProperties: true },
);
