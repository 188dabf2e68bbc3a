import { type Static, Type } from 'typebox';
import { DecisionResponseV1, EXAMPLE_TOOL_CALL } from './decisions.ts';

const Open = { additionalProperties: true };
const Loose = Type.Object({}, Open);

/** AuthZEN 1.0 access evaluation: the entities are checked by the route (400 naming the field). */
export const EvaluationRequestV1 = Type.Object(
  { subject: Loose, action: Loose, resource: Loose, context: Type.Optional(Loose) },
  {
    ...Open,
    examples: [EXAMPLE_TOOL_CALL],
  },
);
export type EvaluationRequestV1 = Static<typeof EvaluationRequestV1>;

export const EVALUATIONS_SEMANTICS = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] as const;
export type EvaluationsSemantic = (typeof EVALUATIONS_SEMANTICS)[number];

export const EvaluationsRequestV1 = Type.Object(
  {
    // Defaults that are not objects make the whole payload malformed (400), unlike a bad item.
    subject: Type.Optional(Loose),
    action: Type.Optional(Loose),
    resource: Type.Optional(Loose),
    context: Type.Optional(Loose),
    // Items are checked one by one: an invalid item is a `decision: false` item, not a 400.
    evaluations: Type.Optional(Type.Array(Type.Unknown())),
    options: Type.Optional(
      Type.Object(
        {
          evaluations_semantic: Type.Optional(
            Type.Union(EVALUATIONS_SEMANTICS.map((semantic) => Type.Literal(semantic))),
          ),
        },
        Open,
      ),
    ),
  },
  {
    ...Open,
    examples: [
      {
        subject: { type: 'agent', id: 'support-bot' },
        action: { name: 'tool.call' },
        context: { session: { tool_calls: 2 }, data_classification: 'internal' },
        evaluations: [
          { resource: { type: 'tool', id: 'search_kb' } },
          { resource: { type: 'tool', id: 'shell' } },
        ],
      },
    ],
  },
);
export type EvaluationsRequestV1 = Static<typeof EvaluationsRequestV1>;

/** What an invalid batch item says in its `context.error` (it is a deny, not a decision). */
export const ItemErrorV1 = Type.Object(
  { status: Type.Integer(), code: Type.String(), message: Type.String() },
  Open,
);

/**
 * One evaluation: the boolean, with Verdict's decision id and reasons in `context` — or, for an
 * invalid batch item, the error.
 */
export const EvaluationResponseV1 = Type.Object({
  decision: Type.Boolean(),
  context: Type.Object(
    {
      decision_id: Type.Optional(Type.String()),
      reason_admin: Type.Optional(
        Type.Object({ violations: DecisionResponseV1.properties.violations }, Open),
      ),
      obligations: Type.Optional(DecisionResponseV1.properties.obligations),
      exceptions: Type.Optional(Type.Array(Type.String())),
      approvals: DecisionResponseV1.properties.approvals,
      approval_request: DecisionResponseV1.properties.approval_request,
      error: Type.Optional(ItemErrorV1),
    },
    Open,
  ),
});
export type EvaluationResponseV1 = Static<typeof EvaluationResponseV1>;

/** A batch answer; without items the request was one evaluation, answered as one. */
export const EvaluationsResponseV1 = Type.Union([
  Type.Object({ evaluations: Type.Array(EvaluationResponseV1) }),
  EvaluationResponseV1,
]);

export const SEARCH_KINDS = ['subject', 'resource', 'action'] as const;

/** A search body: checked field by field by the route (400 naming the first bad field). */
// The same example serves the three searches: the searched entity's id (or the action) is ignored.
export const SearchRequestV1 = Type.Record(Type.String(), Type.Unknown(), {
  examples: [EXAMPLE_TOOL_CALL],
});

export const SearchResponseV1 = Type.Object({
  results: Type.Array(Type.Object({}, Open)),
  page: Type.Object({ next_token: Type.String(), count: Type.Integer() }),
  context: Type.Object({ decision_id: Type.String() }),
});

/** `/.well-known/authzen-configuration`. */
export const AuthzenConfigurationV1 = Type.Object({
  policy_decision_point: Type.String(),
  access_evaluation_endpoint: Type.String(),
  access_evaluations_endpoint: Type.String(),
  search_subject_endpoint: Type.String(),
  search_resource_endpoint: Type.String(),
  search_action_endpoint: Type.String(),
  capabilities: Type.Array(Type.String()),
});
