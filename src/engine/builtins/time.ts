/**
 * Builtins that Verdict implements in JavaScript for the wasm policies, next to the few the npm SDK
 * brings. OPA's wasm target compiles no `time.*` builtin; parsing timestamps in Rego instead costs
 * most of a decision's evaluation time (a regex compiled on every call plus arbitrary-precision
 * arithmetic), so the hot one is provided here with Go's `time.Parse(time.RFC3339, …)` semantics,
 * which is what `opa eval` and `opa run --server` use. The differential test against OPA server
 * holds the two to the same answers.
 *
 * A builtin returns `undefined` where OPA's (non-strict) builtin errors, so the expression is
 * undefined in both engines.
 */

// Go accepts a 1- or 2-digit hour in its general parser, a '.' or ',' before the fraction and any
// number of fraction digits (it keeps the first nine).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})$/;

const encoder = new TextEncoder();

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Nanoseconds since the Unix epoch as a BigInt, or undefined when `value` is not RFC 3339. */
export function rfc3339Nanos(value: unknown): bigint | undefined {
  if (typeof value !== 'string') return undefined;
  const m = RFC3339.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offset = 0;
  const zone = m[8]!;
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    // Go's general parser (the RFC 3339 fast path's fallback) allows offsets up to 24:60.
    if (oh > 24 || om > 60) return undefined;
    offset = (zone[0] === '-' ? -1 : 1) * (oh * 3600 + om * 60);
  }
  const fraction = (m[7] ?? '').slice(0, 9).padEnd(9, '0');
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  const nanos = BigInt(seconds) * 1_000_000_000n + BigInt(fraction);
  // OPA refuses times whose Unix nanoseconds do not fit an int64 (before 1677, after 2262).
  return nanos < INT64_MIN || nanos > INT64_MAX ? undefined : nanos;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The custom builtins handed to the SDK. Results go back into the module as JSON text: an
 * ArrayBuffer keeps nanosecond integers exact where a JS number would round them.
 */
export const VERDICT_BUILTINS: Record<string, (...args: unknown[]) => unknown> = {
  'time.parse_rfc3339_ns': (value) => {
    const nanos = rfc3339Nanos(value);
    return nanos === undefined ? undefined : (encoder.encode(nanos.toString()).buffer as ArrayBuffer);
  },
};
