import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadInputs } from '../../bench/inputs.ts';
import { canonicalJson } from '../../src/decisions/canonical-json.ts';

// `canonicalize` is the reference RFC 8785 implementation here; canonicalJson must write the same
// text for every JSON value, since digests and chain hashes are recomputed from stored rows.
const jsonValues = fc.oneof(
  // Any JSON value, with keys and strings from all of Unicode (well-formed).
  fc.jsonValue({ maxDepth: 5, stringUnit: 'grapheme' }),
  // Objects whose keys exercise the UTF-16 sort: digits, case, underscore, non-ASCII, astral, empty.
  fc.dictionary(
    fc.constantFrom('', '10', '9', 'Z', 'a', 'é', '\u20ac', '\ud83d\ude00', '\uff61', 'a_b', 'aB', 'a b'),
    fc.jsonValue({ maxDepth: 2 }),
  ),
);

describe('canonicalJson', () => {
  it('writes the same text as the RFC 8785 reference implementation for any JSON value', () => {
    fc.assert(
      fc.property(jsonValues, (value) => canonicalJson(value) === canonicalize(value)),
      { numRuns: 5000, seed: 8785 },
    );
  });

  it('agrees on the numbers RFC 8785 singles out and on the benchmark envelopes', async () => {
    const numbers = [
      0, -0, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 333333333.3333333, 9007199254740991, -1.5,
    ];
    expect(canonicalJson(numbers)).toBe(canonicalize(numbers));
    expect(canonicalJson({ b: [1, { d: 1, c: null }], a: '\u2028"\\' })).toBe(
      '{"a":"\u2028\\"\\\\","b":[1,{"c":null,"d":1}]}',
    );
    const inputs = await loadInputs(100, 42);
    for (const envelope of [...inputs.toolCalls, ...inputs.releases])
      expect(canonicalJson(envelope)).toBe(canonicalize(envelope));
  });

  it('refuses what is not JSON rather than writing something a verifier could not reproduce', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow();
    expect(() => canonicalJson({ n: Number.POSITIVE_INFINITY })).toThrow();
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => canonicalJson(cycle)).toThrow();
  });
});
