import { type Static, Type } from 'typebox';
import { EXAMPLE_TOOL_CALL } from './decisions.ts';
import { OpaErrorV1 } from './problem.ts';

const Open = { additionalProperties: true };

/** The `{path}` of an OPA route (`/v1/data/{path}`, `/v1/batch/data/{path}`): checked by the route. */
export const DataPathParamsV1 = Type.Object({ '*': Type.String() });

/** `POST /v1/data/{path}`: `{"input": …}`; without `input` the answer carries OPA's warning. */
export const DataRequestV1 = Type.Object(
  { input: Type.Optional(Type.Unknown()) },
  {
    ...Open,
    examples: [
      {
        input: EXAMPLE_TOOL_CALL,
      },
    ],
  },
);
export type DataRequestV1 = Static<typeof DataRequestV1>;

/**
 * `GET /v1/data/{path}?input=<json>`. OPA's other parameters (`pretty`, `metrics`, …) are accepted and
 * ignored; `input` given twice is refused by the route.
 */
export const DataQueryV1 = Type.Object(
  { input: Type.Optional(Type.Unknown({ description: 'the input document as JSON text' })) },
  Open,
);

/** OPA's `{code, message}` warning, and its answer when a default decision is undefined. */
export const OpaMessageV1 = Type.Object({ code: Type.String(), message: Type.String() }, Open);
export type OpaMessageV1 = Static<typeof OpaMessageV1>;

/** `{result, decision_id}`; no `result` when the document is undefined for this input (as OPA). */
export const DataResponseV1 = Type.Object({
  decision_id: Type.String(),
  result: Type.Optional(Type.Unknown()),
  warning: Type.Optional(OpaMessageV1),
});
export type DataResponseV1 = Static<typeof DataResponseV1>;

/** `POST /`: the body is the input of the default decision. */
export const DefaultDecisionRequestV1 = Type.Object(
  {},
  {
    ...Open,
    examples: [EXAMPLE_TOOL_CALL],
  },
);

/** `POST /`: the bare value of the default decision (no `result` wrapper, no decision id). */
export const DefaultDecisionResponseV1 = Type.Unknown();

/** `POST /v1/batch/data/{path}`: `{"inputs": {id: input…}}` (the route checks `inputs`). */
export const BatchDataRequestV1 = Type.Object(
  { inputs: Type.Optional(Type.Unknown()) },
  {
    ...Open,
    examples: [
      {
        inputs: {
          first: EXAMPLE_TOOL_CALL,
        },
      },
    ],
  },
);

/**
 * One item of a batch answer: `{result?, decision_id}`, or OPA's `{code, message, errors,
 * decision_id}` for a failed evaluation; `http_status_code` when the batch is mixed (207).
 */
export const BatchDataItemV1 = Type.Object(
  {
    http_status_code: Type.Optional(Type.String()),
    result: Type.Optional(Type.Unknown()),
    decision_id: Type.String(),
    code: Type.Optional(Type.String()),
    message: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ code: Type.String(), message: Type.String() }))),
  },
  Open,
);
export type BatchDataItemV1 = Static<typeof BatchDataItemV1>;

export const BatchDataResponseV1 = Type.Object({ responses: Type.Record(Type.String(), BatchDataItemV1) });

/** 200 when every item succeeded, 207 when some failed, 500 when all did (or an error). */
export const BatchDataResponses = {
  200: BatchDataResponseV1,
  207: BatchDataResponseV1,
  // NOTE: the error first: a serializer picks the first branch a body fits.
  500: Type.Union([OpaErrorV1, BatchDataResponseV1]),
};

/** `GET /health`: `?bundles`, `?plugins` and the rest are accepted (Verdict checks them all). */
export const OpaHealthQueryV1 = Type.Object({}, Open);
export const OpaHealthyV1 = Type.Object({}, Open);
export const OpaUnhealthyV1 = Type.Object({ error: Type.String() });

/** 200 `{}` when ready; 500 `{error}` when not (or an error). */
export const OpaHealthResponses = {
  200: OpaHealthyV1,
  500: Type.Union([OpaErrorV1, OpaUnhealthyV1]),
};

/** The answers of `POST /` beside its value: 404 undefined document, or an error. */
export const DefaultDecisionResponses = {
  200: DefaultDecisionResponseV1,
  // NOTE: the error first: a serializer picks the first branch a body fits.
  404: Type.Union([OpaErrorV1, OpaMessageV1]),
};
