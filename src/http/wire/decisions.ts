import { type Static, Type } from 'typebox';

const Properties = Type.Record(Type.String(), Type.Unknown());
const Name = Type.String({ minLength: 1, maxLength: 256 });

export const SubjectV1 = Type.Object(
  { type: Name, id: Name, properties: Type.Optional(Properties) },
  { additionalProperties: true },
);
export const ActionV1 = Type.Object(
  { name: Name, properties: Type.Optional(Properties) },
  { additionalProperties: true },
);
export const ResourceV1 = Type.Object(
  { type: Name, id: Name, properties: Type.Optional(Properties) },
  { additionalProperties: true },
);
export const EntrypointV1 = Type.String({
  minLength: 1,
  maxLength: 256,
  pattern: '^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$',
});

/** The request examples' envelope (OpenAPI's "Try it out"): an agent's tool call. */
export const EXAMPLE_TOOL_CALL = {
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'tool.call' },
  resource: { type: 'tool', id: 'search_kb' },
  context: { session: { tool_calls: 2 }, data_classification: 'internal' },
};

/** The native decision request: the envelope of DESIGN.md without caller and now. */
export const DecisionRequestV1 = Type.Object(
  {
    subject: SubjectV1,
    action: ActionV1,
    resource: ResourceV1,
    context: Type.Optional(Properties),
    policy: Type.Optional(EntrypointV1),
  },
  {
    additionalProperties: true,
    $id: 'DecisionRequestV1',
    examples: [EXAMPLE_TOOL_CALL],
  },
);
export type DecisionRequestV1 = Static<typeof DecisionRequestV1>;

const Loose = Type.Object({}, { additionalProperties: true });

/**
 * A batch item or the batch defaults: each part optional here, because an item may take it from the
 * defaults; the merged envelope is checked afterwards (src/http/envelope.ts).
 */
export const BatchItemV1 = Type.Object(
  {
    subject: Type.Optional(Loose),
    action: Type.Optional(Loose),
    resource: Type.Optional(Loose),
    context: Type.Optional(Loose),
    policy: Type.Optional(EntrypointV1),
  },
  { additionalProperties: true },
);
export type BatchItemV1 = Static<typeof BatchItemV1>;

export const BatchRequestV1 = Type.Object(
  {
    items: Type.Array(BatchItemV1, { minItems: 1 }),
    defaults: Type.Optional(BatchItemV1),
  },
  {
    additionalProperties: true,
    $id: 'BatchRequestV1',
    examples: [
      {
        defaults: {
          subject: { type: 'agent', id: 'code-agent' },
          action: { name: 'tool.call' },
          context: { session: { tool_calls: 7 }, data_classification: 'internal' },
        },
        items: [
          {
            resource: {
              type: 'tool',
              id: 'read_file',
              properties: { arguments: { path: '/workspace/README.md' } },
            },
          },
          { resource: { type: 'tool', id: 'shell', properties: { arguments: { command: 'rm -rf /' } } } },
        ],
      },
    ],
  },
);
export type BatchRequestV1 = Static<typeof BatchRequestV1>;

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
export type DecisionResponseV1 = Static<typeof DecisionResponseV1>;

export const BatchResponseV1 = Type.Object({ results: Type.Array(DecisionResponseV1) });
export type BatchResponseV1 = Static<typeof BatchResponseV1>;
