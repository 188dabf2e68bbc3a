import { describe, expect, it } from 'vitest';
import { isContractError, toPolicyResult } from '../../src/decisions/result.ts';

const ok = { allow: true, violations: [], obligations: [], exceptions: [] };

describe('toPolicyResult', () => {
  it('accepts a result that follows the contract', () => {
    expect(toPolicyResult(true, ok)).toEqual(ok);
    const deny = { ...ok, allow: false, violations: [{ control: 'TOOL-001', message: 'no' }] };
    expect(toPolicyResult(true, deny)).toEqual(deny);
  });

  it('accepts an allow whose every violation is waived by a waiver it names, and keeps them', () => {
    const waived = {
      ...ok,
      violations: [{ control: 'REL-004', message: 'license', waived_by: 'exc_1' }],
      exceptions: ['exc_1'],
      approvals: ['apr_1'],
    };
    expect(toPolicyResult(true, waived)).toEqual(waived);
  });

  it.each([
    ['undefined', false, undefined, 'undefined_result'],
    ['a string', true, 'yes', 'malformed_result'],
    ['an array', true, [ok], 'malformed_result'],
    ['allow as a string', true, { ...ok, allow: 'true' }, 'malformed_result'],
    ['violations not an array', true, { ...ok, allow: false, violations: {} }, 'malformed_result'],
    [
      'a violation without control',
      true,
      { ...ok, allow: false, violations: [{ message: 'x' }] },
      'malformed_result',
    ],
    ['an obligation without type', true, { ...ok, obligations: [{}] }, 'malformed_result'],
    ['exceptions of numbers', true, { ...ok, exceptions: [1] }, 'malformed_result'],
    [
      'allow with violations',
      true,
      { ...ok, violations: [{ control: 'X', message: 'x' }] },
      'malformed_result',
    ],
    [
      'allow with one waived and one unwaived violation',
      true,
      {
        ...ok,
        violations: [
          { control: 'X', message: 'x', waived_by: 'exc_1' },
          { control: 'Y', message: 'y' },
        ],
        exceptions: ['exc_1'],
      },
      'malformed_result',
    ],
    [
      'allow with a violation waived by a waiver the result does not name',
      true,
      { ...ok, violations: [{ control: 'X', message: 'x', waived_by: 'exc_2' }], exceptions: ['exc_1'] },
      'malformed_result',
    ],
    ['approvals not strings', true, { ...ok, approvals: [{ id: 'apr_1' }] }, 'malformed_result'],
  ])('refuses %s', (_name, defined, value, code) => {
    const result = toPolicyResult(defined as boolean, value);
    expect(isContractError(result)).toBe(true);
    expect((result as { code: string }).code).toBe(code);
  });
});
