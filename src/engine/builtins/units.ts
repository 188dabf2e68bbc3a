/**
 * OPA's `units.parse` (exact rationals, Go's big.Rat) and `units.parse_bytes` (Go's big.Float at 64
 * bits of mantissa, then truncated): topdown/parse_units.go and topdown/parse_bytes.go. Emulated
 * with BigInt, because the rounding of a 64-bit mantissa is part of the answer ("0.3kb").
 */
import { RegoNumber } from '../rego-value.ts';
import { fail, type HostBuiltin, str } from './types.ts';

const MAX_EXPONENT_DIGITS = 6;

/** OPA's extractNumAndUnit: the number (digits, '.', an exponent, signs) and the unit after it. */
function split(s: string, name: string): [string, string] {
  const digit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
  let first = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (!digit(c) && c !== '.' && c !== 'e' && c !== 'E' && c !== '+' && c !== '-') {
      first = i;
      break;
    }
    if (c === 'e' || c === 'E') {
      const next = s[i + 1];
      if (i === s.length - 1 || (!digit(next) && next !== '+' && next !== '-')) {
        first = i;
        break;
      }
      if (next === '+' || next === '-') i++;
      let end = i + 1;
      while (end < s.length && digit(s[end])) end++;
      if (end - (i + 1) > MAX_EXPONENT_DIGITS) fail(`${name}: exponent too large`);
    }
  }
  if (first === -1) return [s, ''];
  if (first === 0) return ['', s];
  return [s.slice(0, first), s.slice(first)];
}

/** A decimal (Go's big.Rat/big.Float SetString, base 10) as an exact fraction; undefined if not one. */
function decimal(text: string): [bigint, bigint] | undefined {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const digits = `${m[2]}${m[3] ?? ''}`;
  let n = BigInt(digits === '' ? '0' : digits);
  let d = 10n ** BigInt((m[3] ?? '').length);
  const e = Number(m[4] ?? '0');
  if (e >= 0) n *= 10n ** BigInt(e);
  else d *= 10n ** BigInt(-e);
  return [m[1] === '-' ? -n : n, d];
}

/** n/d rounded to a binary float with `precision` bits of mantissa (nearest, ties to even). */
function roundBinary(n: bigint, d: bigint, precision = 64): [bigint, bigint, number] {
  if (n === 0n) return [0n, 1n, 0];
  const negative = n < 0n;
  const a = negative ? -n : n;
  // Find e such that 2^(precision-1) <= a/d * 2^-e < 2^precision.
  let e = a.toString(2).length - d.toString(2).length - precision;
  const scaled = (x: number): [bigint, bigint] => (x >= 0 ? [a, d << BigInt(x)] : [a << BigInt(-x), d]);
  for (;;) {
    const [p, q] = scaled(e);
    const m = p / q;
    if (m >= 1n << BigInt(precision)) e++;
    else if (m < 1n << BigInt(precision - 1)) e--;
    else break;
  }
  const [p, q] = scaled(e);
  let m = p / q;
  const r2 = (p % q) * 2n;
  if (r2 > q || (r2 === q && (m & 1n) === 1n)) m += 1n;
  const signed = negative ? -m : m;
  return e >= 0 ? [signed << BigInt(e), 1n, e] : [signed, 1n << BigInt(-e), e];
}

const BYTE_UNITS: Record<string, bigint> = {
  '': 1n,
  kb: 1000n,
  k: 1000n,
  kib: 1n << 10n,
  ki: 1n << 10n,
  mb: 1000n ** 2n,
  m: 1000n ** 2n,
  mib: 1n << 20n,
  mi: 1n << 20n,
  gb: 1000n ** 3n,
  g: 1000n ** 3n,
  gib: 1n << 30n,
  gi: 1n << 30n,
  tb: 1000n ** 4n,
  t: 1000n ** 4n,
  tib: 1n << 40n,
  ti: 1n << 40n,
  pb: 1000n ** 5n,
  p: 1000n ** 5n,
  pib: 1n << 50n,
  pi: 1n << 50n,
  eb: 1000n ** 6n,
  e: 1000n ** 6n,
  eib: 1n << 60n,
  ei: 1n << 60n,
};

// Go's float64 0.001, exactly: 1152921504606847 / 2^60.
const MILLI: [bigint, bigint] = [1152921504606847n, 1n << 60n];

const UNITS: Record<string, [bigint, bigint]> = {
  m: MILLI,
  '': [1n, 1n],
  k: [1000n, 1n],
  K: [1000n, 1n],
  ki: [1n << 10n, 1n],
  Ki: [1n << 10n, 1n],
  M: [1000n ** 2n, 1n],
  mi: [1n << 20n, 1n],
  Mi: [1n << 20n, 1n],
  g: [1000n ** 3n, 1n],
  G: [1000n ** 3n, 1n],
  gi: [1n << 30n, 1n],
  Gi: [1n << 30n, 1n],
  t: [1000n ** 4n, 1n],
  T: [1000n ** 4n, 1n],
  ti: [1n << 40n, 1n],
  Ti: [1n << 40n, 1n],
  p: [1000n ** 5n, 1n],
  P: [1000n ** 5n, 1n],
  pi: [1n << 50n, 1n],
  Pi: [1n << 50n, 1n],
  e: [1000n ** 6n, 1n],
  E: [1000n ** 6n, 1n],
  ei: [1n << 60n, 1n],
  Ei: [1n << 60n, 1n],
};

/** Go's big.Rat.FloatString(10): ten decimals, the last rounded half away from zero. */
function floatString10(n: bigint, d: bigint): string {
  const negative = n < 0n;
  const a = negative ? -n : n;
  const scale = 10n ** 10n;
  let q = (a * scale) / d;
  const r = (a * scale) % d;
  if (r * 2n >= d) q += 1n;
  const digits = q.toString().padStart(11, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -10)}.${digits.slice(-10)}`;
}

/** The units builtins. */
export const UNITS_BUILTINS: Record<string, HostBuiltin> = {
  'units.parse_bytes': ([raw]) => {
    const s = str(raw).toLowerCase().replaceAll('"', '');
    if (s.includes(' ')) fail('units.parse_bytes: spaces not allowed in resource strings');
    const [num, unit] = split(s, 'units.parse_bytes');
    if (num === '') fail('units.parse_bytes: no byte amount provided');
    const multiplier = BYTE_UNITS[unit];
    if (multiplier === undefined) fail(`units.parse_bytes: byte unit ${unit} not recognized`);
    const value = decimal(num);
    if (!value) fail('units.parse_bytes: could not parse byte amount to a number');
    const [n, d] = roundBinary(value[0], value[1]);
    const [pn, pd] = roundBinary(n * multiplier, d);
    return pn / pd; // truncated toward zero, as big.Float.Int
  },
  'units.parse': ([raw]) => {
    const s = str(raw).replaceAll('"', '');
    if (s.includes(' ')) fail('units.parse: spaces not allowed in resource strings');
    const [num, rawUnit] = split(s, 'units.parse');
    if (num === '') fail('units.parse: no amount provided');
    // Only the letters after the first are lower-cased, so that 'm' and 'M' differ.
    const unit = rawUnit.length > 1 ? rawUnit[0] + rawUnit.slice(1).toLowerCase() : rawUnit;
    const multiplier = UNITS[unit];
    if (multiplier === undefined) fail(`units.parse: unit ${unit} not recognized`);
    const value = decimal(num);
    if (!value) fail('units.parse: could not parse amount to a number');
    const n = value[0] * multiplier[0];
    const d = value[1] * multiplier[1];
    if (n % d === 0n) return n / d;
    return new RegoNumber(floatString10(n, d));
  },
};
