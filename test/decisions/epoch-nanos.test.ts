/**
 * `now_ns` and a stored waiver's `expires_at_ns` (issue 27) are JSON numbers the policies compare
 * with nanoseconds parsed from RFC 3339 text. They are only right if their JSON text is the exact
 * integer — the same value `time.parse_rfc3339_ns` gives for the ISO string of the same instant.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/decisions/canonical-json.ts';
import { epochNanos } from '../../src/decisions/epoch-nanos.ts';
import { rfc3339Nanos } from '../../src/engine/builtins.ts';

const INT64_MS = { min: -9_223_372_036_854, max: 9_223_372_036_854 };

describe('epochNanos', () => {
  it('writes the exact nanoseconds of any Date, equal to the RFC 3339 parse of its ISO string', () => {
    const check = (ms: number) => {
      const exact = BigInt(ms) * 1_000_000n;
      expect(canonicalJson({ now_ns: epochNanos(ms) })).toBe(`{"now_ns":${exact}}`);
      expect(JSON.stringify(epochNanos(ms))).toBe(String(exact));
      // time.parse_rfc3339_ns answers within int64 nanoseconds (years 1677 to 2262), as Go's does.
      if (ms >= INT64_MS.min && ms <= INT64_MS.max)
        expect(rfc3339Nanos(new Date(ms).toISOString())).toBe(exact);
    };
    // Year 0000 to 9999, the range of RFC 3339 (and of an ISO string with four year digits).
    fc.assert(fc.property(fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }), check), {
      numRuns: 20_000,
    });
    fc.assert(fc.property(fc.integer(INT64_MS), check), { numRuns: 20_000 });
    for (const ms of [0, 1, -1, 1_765_078_521_123, INT64_MS.max, INT64_MS.min, 253_402_300_799_999])
      check(ms);
  });
});
