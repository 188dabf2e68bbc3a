import { type TSchema, Type } from 'typebox';

/** `T` or `null`. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/**
 * A string from a fixed list, typed as that list's union and described as `{type: string, enum}`
 * in the OpenAPI document (a union of literals would read as `anyOf` there).
 */
export const StringEnum = <T extends string>(values: readonly T[], options: { description?: string } = {}) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });

/** One entry of a problem's `errors[]`: the JSON pointer of the refused field and why. */
export const FieldErrorV1 = Type.Object({ path: Type.String(), message: Type.String() });

/** An RFC 9457 problem: `code` is stable (docs/api.md); `detail` is safe to show. */
export const ProblemV1 = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String(),
    detail: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(FieldErrorV1)),
  },
  { additionalProperties: true },
);

/** The error responses of every route that answers problems. */
export const ProblemResponses = { '4xx': ProblemV1, '5xx': ProblemV1 };

/**
 * One entry of OPA's `errors[]`: `{code, message}` (OPA adds `location`, which Verdict never sends:
 * no policy internals in a 5xx, ADR 0007).
 */
export const OpaErrorDetailV1 = Type.Object({ code: Type.String(), message: Type.String() });

/**
 * An error on the OPA surfaces: the problem fields with OPA's own beside them — `code` is then OPA's
 * (`invalid_parameter`, `unauthorized`, …), Verdict's code is `verdict_code`, and `message` is OPA's.
 * `errors[]` holds the problem's field errors, or OPA's `{code, message}` for an evaluation error.
 */
export const OpaErrorV1 = Type.Object(
  {
    ...ProblemV1.properties,
    verdict_code: Type.String(),
    message: Type.String(),
    decision_id: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Union([FieldErrorV1, OpaErrorDetailV1]))),
  },
  { additionalProperties: true },
);

/** The error responses of the OPA routes. */
export const OpaErrorResponses = { '4xx': OpaErrorV1, '5xx': OpaErrorV1 };
