/**
 * OPA's `semver.is_valid` and `semver.compare` (v1/topdown/semver.go over OPA's internal/semver).
 * Not on the npm `semver` package: OPA's parser is its own — a leading "v" is dropped, an all-digit
 * pre-release identifier too large for an int compares as the largest int (Go's strconv.Atoi) —
 * and the differential test holds Verdict to it.
 */
import { fail, type HostBuiltin } from './types.ts';

const IDENTIFIERS = /^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$/;
const INT64_MAX = 2n ** 63n - 1n;

/** Go's `strings.Cut` on one byte. */
function cut(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

/** OPA's parseNumeric: digits without a sign or a leading zero, within an int64. */
function parseInt64(s: string): bigint | undefined {
  if (!/^(0|[1-9]\d*)$/.test(s)) return undefined;
  const n = BigInt(s);
  return n > INT64_MAX || n < -INT64_MAX - 1n ? undefined : n;
}

/** A parsed version, or undefined where OPA's `semver.Parse` fails. */
export interface SemVer {
  major: bigint;
  minor: bigint;
  patch: bigint;
  preRelease: string;
}

export function parseSemVer(text: string): SemVer | undefined {
  const body = text.startsWith('v') ? text.slice(1) : text;
  const [withPre, metadata] = cut(body, '+');
  if (withPre !== body && !IDENTIFIERS.test(metadata)) return undefined;
  const [version, preRelease] = cut(withPre, '-');
  if (version !== withPre) {
    if (!IDENTIFIERS.test(preRelease)) return undefined;
    // A numeric pre-release identifier has no leading zero.
    if (preRelease.split('.').some((id) => id.length > 1 && /^0\d*$/.test(id))) return undefined;
  }
  if (version.split('.').length !== 3) return undefined;
  const [major, minor, patch] = version.split('.').map(parseInt64);
  if (major === undefined || minor === undefined || patch === undefined) return undefined;
  return { major, minor, patch, preRelease };
}

/** Go's strconv.Atoi, whose range error OPA ignores: the value is then clamped to the int64 maximum. */
function atoi(s: string): bigint {
  const n = BigInt(s);
  return n > INT64_MAX ? INT64_MAX : n;
}

export function compareSemVer(v: SemVer, o: SemVer): number {
  for (const k of ['major', 'minor', 'patch'] as const) {
    if (v[k] !== o[k]) return v[k] > o[k] ? 1 : -1;
  }
  if (v.preRelease === o.preRelease) return 0;
  if (v.preRelease === '') return 1;
  if (o.preRelease === '') return -1;
  let [a, afterA] = cut(v.preRelease, '.');
  let [b, afterB] = cut(o.preRelease, '.');
  const decimals = (s: string) => /^\d+$/.test(s);
  for (;;) {
    if (a === '' && b !== '') return -1;
    if (a !== '' && b === '') return 1;
    const aInt = decimals(a);
    const bInt = decimals(b);
    if (aInt && !bInt) return -1;
    if (!aInt && bInt) return 1;
    if (aInt && bInt) {
      const x = atoi(a);
      const y = atoi(b);
      if (x !== y) return x > y ? 1 : -1;
    } else if (a !== b) return a > b ? 1 : -1;
    if (afterA !== '' && afterB === '') return 1;
    if (afterA === '' && afterB !== '') return -1;
    [a, afterA] = cut(afterA, '.');
    [b, afterB] = cut(afterB, '.');
  }
}

/** The semver builtins. */
export const SEMVER_BUILTINS: Record<string, HostBuiltin> = {
  'semver.is_valid': ([v]) => typeof v === 'string' && parseSemVer(v) !== undefined,
  'semver.compare': ([a, b]) => {
    if (typeof a !== 'string') fail('operand 1 must be a string');
    if (typeof b !== 'string') fail('operand 2 must be a string');
    const x = parseSemVer(a);
    if (!x) fail(`operand 1: string ${a} is not a valid SemVer`);
    const y = parseSemVer(b);
    if (!y) fail(`operand 2: string ${b} is not a valid SemVer`);
    return compareSemVer(x, y);
  },
};
