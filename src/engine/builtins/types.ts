/** What a host builtin may read of the evaluation it serves: only the input, so replay agrees. */
export interface EvaluationContext {
  /** The evaluation's input as JSON text (undefined: no input). */
  inputJson: string | undefined;
  /** The parsed input, filled on first use by a builtin that needs it. */
  input?: unknown;
}

/**
 * A builtin OPA's wasm target leaves to the host. Arguments arrive in Rego's value model (sets as
 * RegoSet, integers beyond 2^53 as BigInt); the result goes back the same way; `undefined` means
 * the call is undefined.
 */
export type HostBuiltin = ((args: unknown[], context: EvaluationContext) => unknown) & {
  /**
   * The same builtin on operands and result in OPA's value format, as the module dumps and parses
   * them (undefined: the call is undefined). The engine prefers it: nothing is lost in JavaScript's
   * value model (an object key that is not a string), nothing is parsed twice.
   */
  valueText?: (operands: string[], context: EvaluationContext) => string | undefined;
};

/**
 * A builtin's error, as OPA's Go builtin returns one. OPA (non-strict, the default of `opa eval` and
 * of its server) makes the call undefined; so does Verdict.
 */
export class BuiltinError extends Error {
  override name = 'BuiltinError';
}

/** Throws OPA's builtin error. */
export function fail(message: string): never {
  throw new BuiltinError(message);
}

/** The string argument `value`, or a builtin error as OPA's operand type check gives. */
export function str(value: unknown, what = 'operand'): string {
  if (typeof value !== 'string') fail(`${what} must be a string`);
  return value;
}

/** A number argument as a BigInt integer (nanoseconds, counts); a builtin error when not an integer. */
export function int(value: unknown, what = 'operand'): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  fail(`${what} must be an integer`);
}

/** A number argument as a JS number. */
export function num(value: unknown, what = 'operand'): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  fail(`${what} must be a number`);
}
