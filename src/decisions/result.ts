import { isObject } from '../json/values.ts';
import type { Obligation, PolicyResult, Violation } from './types.ts';

/** A policy value that breaks the result contract; the decision becomes a deny carrying this. */
export interface ContractError {
  code: 'malformed_result' | 'undefined_result';
  message: string;
}

/**
 * Checks a contract entrypoint's value against the result contract of DESIGN.md. Anything that is
 * not exactly right is a ContractError, never an allow.
 */
export function toPolicyResult(defined: boolean, value: unknown): PolicyResult | ContractError {
  if (!defined) return { code: 'undefined_result', message: 'the entrypoint produced no result' };
  if (!isObject(value)) return { code: 'malformed_result', message: 'result is not an object' };
  if (typeof value.allow !== 'boolean') {
    return { code: 'malformed_result', message: 'result.allow is not a boolean' };
  }
  const violations = value.violations ?? [];
  const obligations = value.obligations ?? [];
  const exceptions = value.exceptions ?? [];
  if (
    !Array.isArray(violations) ||
    !violations.every((v) => isObject(v) && typeof v.control === 'string' && typeof v.message === 'string')
  ) {
    return { code: 'malformed_result', message: 'result.violations must be [{control, message}]' };
  }
  if (!Array.isArray(obligations) || !obligations.every((o) => isObject(o) && typeof o.type === 'string')) {
    return { code: 'malformed_result', message: 'result.obligations must be [{type}]' };
  }
  if (!Array.isArray(exceptions) || !exceptions.every((e) => typeof e === 'string')) {
    return { code: 'malformed_result', message: 'result.exceptions must be an array of strings' };
  }
  const approvals = value.approvals;
  if (
    approvals !== undefined &&
    (!Array.isArray(approvals) || !approvals.every((a) => typeof a === 'string'))
  ) {
    return { code: 'malformed_result', message: 'result.approvals must be an array of strings' };
  }
  // NOTE: an allow may list violations only when each one is waived by a waiver the result names
  // (waived violations stay visible to an auditor); an unwaived violation with allow contradicts
  // itself: fail closed.
  if (value.allow && !violations.every((v) => isWaived(v, exceptions))) {
    return { code: 'malformed_result', message: 'result allows while listing violations' };
  }
  const result: PolicyResult = {
    allow: value.allow,
    violations: violations as Violation[],
    obligations: obligations as Obligation[],
    exceptions: exceptions as string[],
  };
  if (approvals !== undefined) result.approvals = approvals as string[];
  return result;
}

function isWaived(violation: Record<string, unknown>, exceptions: unknown[]): boolean {
  return typeof violation.waived_by === 'string' && exceptions.includes(violation.waived_by);
}

export function isContractError(value: PolicyResult | ContractError): value is ContractError {
  return 'code' in value;
}

/** The deny that stands in for any failed evaluation. */
export function failClosed(code: string, message: string): PolicyResult {
  return {
    allow: false,
    violations: [{ control: 'EVAL-ERROR', message: `${code}: ${message}`, severity: 'high' }],
    obligations: [],
    exceptions: [],
  };
}
