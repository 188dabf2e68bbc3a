import type { PolicyEngine } from '../engine/engine.ts';
import { isObject } from '../json/values.ts';
import { failClosed, toPolicyResult } from './result.ts';
import type { DecisionSurface, PolicyResult } from './types.ts';

/** Why an evaluation failed closed: a stable code and a short message. */
export interface EvaluationError {
  code: string;
  message: string;
}

/**
 * One entrypoint evaluated on one input under one revision, with its result checked. Every caller
 * that turns a policy's value into a decision — `decide`, replay, shadow evaluation — gets it from
 * `evaluateDecision`, so they cannot disagree on what a value means.
 */
export interface CheckedEvaluation {
  /**
   * Contract surfaces (native, AuthZEN): the validated result, or the fail-closed deny when the
   * evaluation failed or the value broke the contract. Data surface: `allow` only, empty lists.
   */
  result: PolicyResult;
  /** The entrypoint's raw value (undefined when the policy produced none). */
  value: unknown;
  defined: boolean;
  /**
   * Contract surfaces: `result.allow`. Data surface: the value is `true` or an object whose `allow`
   * is `true` (what the decision log records as an allow for OPA's data API).
   */
  allow: boolean;
  /** Why the decision failed closed; null when it did not. */
  error: EvaluationError | null;
  evalMicros: number;
}

/** True for surfaces whose entrypoints must return the result contract (not OPA's data API). */
export function isContractSurface(surface: DecisionSurface | string): boolean {
  return surface !== 'data';
}

/**
 * The evaluation core. Evaluates `entrypoint` (a data-API path on the data surface) on the input's
 * JSON text under `engine`'s revision and checks the value: on a contract surface anything but a
 * well-formed result — an evaluation error, an undefined or malformed value — becomes the
 * fail-closed deny carrying the error. Never throws for a policy's failure.
 */
export function evaluateDecision(
  engine: PolicyEngine,
  surface: DecisionSurface | string,
  entrypoint: string,
  inputJson: string | undefined,
): CheckedEvaluation {
  if (!isContractSurface(surface)) {
    const evaluation = engine.evaluatePath(entrypoint, inputJson);
    const value = evaluation.value;
    const allow = value === true || (isObject(value) && value.allow === true);
    return {
      result: { allow, violations: [], obligations: [], exceptions: [] },
      value,
      defined: evaluation.defined,
      allow,
      error: evaluation.error,
      evalMicros: evaluation.evalMicros,
    };
  }
  const evaluation = engine.evaluateJson(entrypoint, inputJson);
  const checked = evaluation.error ? evaluation.error : toPolicyResult(evaluation.defined, evaluation.value);
  const failed = 'code' in checked;
  const result = failed ? failClosed(checked.code, checked.message) : checked;
  return {
    result,
    value: evaluation.value,
    defined: evaluation.defined,
    allow: result.allow,
    error: failed ? { code: checked.code, message: checked.message } : null,
    evalMicros: evaluation.evalMicros,
  };
}
