/**
 * Nanoseconds since the Unix epoch of a millisecond time (a `Date`'s), as a JSON number whose text is
 * exact: the product has at most 13 significant digits, so the shortest text of the double nearest
 * to it (what JSON.stringify and canonical JSON write) is the exact integer — the number OPA and the
 * wasm policy read from the input text (test/decisions/epoch-nanos.test.ts checks it).
 */
export function epochNanos(ms: number): number {
  return ms * 1e6;
}
