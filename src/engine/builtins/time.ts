/**
 * OPA's `time.*` builtins, which OPA's wasm target leaves to the host, with Go's `time` semantics
 * (what `opa eval` and OPA's server run). Instants are int64 nanoseconds since the Unix epoch, kept
 * as BigInt: a JS number would round them.
 */
import { createHash } from 'node:crypto';
import { type EvaluationContext, fail, type HostBuiltin, int, str } from './types.ts';

// Go accepts a 1- or 2-digit hour in its general parser, a '.' or ',' before the fraction and any
// number of fraction digits (it keeps the first nine).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:\d{2})$/;

const NS_PER_SECOND = 1_000_000_000n;
const NS_PER_DAY = 86_400n * NS_PER_SECOND;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeap(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's civil_from_days). */
export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
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
  const nanos = BigInt(seconds) * NS_PER_SECOND + BigInt(fraction);
  // OPA refuses times whose Unix nanoseconds do not fit an int64 (before 1677, after 2262).
  return nanos < INT64_MIN || nanos > INT64_MAX ? undefined : nanos;
}

/** A civil time in some zone: what Go's `Time.Date()` and `Time.Clock()` answer. */
interface Civil {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanos: number;
  /** 0 = Sunday, as Go's `Weekday`. */
  weekday: number;
  yday: number;
  /** The zone's offset east of UTC, in seconds, and its abbreviation. */
  offset: number;
  zone: string;
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/** Offset (seconds east of UTC) of an IANA zone at a UTC instant, from the ICU tz database. */
function zoneOffset(zone: string, epochMillis: number): { offset: number; abbreviation: string } {
  let format = zoneFormats.get(zone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
        era: 'short',
        timeZoneName: 'short',
      });
    } catch {
      fail(`unknown time zone ${zone}`);
    }
    zoneFormats.set(zone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(epochMillis).map((p) => [p.type, p.value]));
  const year = parts.era === 'BC' ? 1 - Number(parts.year) : Number(parts.year);
  const local = Date.UTC(0, 0, 1, Number(parts.hour), Number(parts.minute), Number(parts.second));
  const utcDay = daysFromCivil(year, Number(parts.month), Number(parts.day)) * 86_400_000;
  const wall = utcDay + (local - Date.UTC(0, 0, 1));
  const truncated = Math.floor(epochMillis / 1000) * 1000;
  return { offset: Math.round((wall - truncated) / 1000), abbreviation: parts.timeZoneName ?? zone };
}

/** Go's `time.LoadLocation` names: "" and "UTC" are UTC; "Local" is UTC too (never the host's). */
function civil(nanos: bigint, zone = 'UTC'): Civil {
  let offset = 0;
  let abbreviation = 'UTC';
  if (zone !== '' && zone !== 'UTC' && zone !== 'Local') {
    if (zone.includes('..') || zone.startsWith('/')) fail(`unknown time zone ${zone}`);
    ({ offset, abbreviation } = zoneOffset(zone, Number(nanos / 1_000_000n)));
  }
  const local = nanos + BigInt(offset) * NS_PER_SECOND;
  let days = local / NS_PER_DAY;
  let rest = local % NS_PER_DAY;
  if (rest < 0n) {
    rest += NS_PER_DAY;
    days -= 1n;
  }
  const [year, month, day] = civilFromDays(Number(days));
  const secondOfDay = Number(rest / NS_PER_SECOND);
  return {
    year,
    month,
    day,
    hour: Math.floor(secondOfDay / 3600),
    minute: Math.floor(secondOfDay / 60) % 60,
    second: secondOfDay % 60,
    nanos: Number(rest % NS_PER_SECOND),
    weekday: (((Number(days) + 4) % 7) + 7) % 7,
    yday: Number(days) - daysFromCivil(year, 1, 1) + 1,
    offset,
    zone: abbreviation,
  };
}

/**
 * OPA's `tzTime`: a number of nanoseconds, or `[ns]`, `[ns, zone]`, `[ns, zone, layout]`. A number
 * that is not an exact int64 is an error ("timestamp too big").
 */
function instant(value: unknown): { nanos: bigint; zone: string; layout: string | undefined } {
  let ns = value;
  let zone = 'UTC';
  let layout: string | undefined;
  if (Array.isArray(value)) {
    if (value.length === 0) fail('operand 1 must be either number (ns) or [number (ns), string (tz)]');
    ns = value[0];
    if (value.length > 1) zone = str(value[1], 'timezone');
    if (value.length > 2) layout = str(value[2], 'layout');
  }
  if (typeof ns !== 'number' && typeof ns !== 'bigint') fail('operand must be a number');
  if (typeof ns === 'number' && !Number.isInteger(ns)) fail('timestamp too big');
  const nanos = BigInt(ns);
  if (nanos < INT64_MIN || nanos > INT64_MAX) fail('timestamp too big');
  // OPA reads a layout of "" as none.
  return { nanos, zone, layout: layout === '' ? undefined : layout };
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** Go's `time.Time.AddDate` in UTC: years and months first, then the date normalised as Go does. */
function addDate(nanos: bigint, years: bigint, months: bigint, days: bigint): bigint {
  const c = civil(nanos);
  const totalMonths = BigInt(c.year) * 12n + BigInt(c.month - 1) + years * 12n + months;
  let year = totalMonths / 12n;
  let month = totalMonths % 12n;
  if (month < 0n) {
    month += 12n;
    year -= 1n;
  }
  // Go's time.Date normalises an overflowing day (Jan 31 + 1 month = Mar 3): count days from the
  // first of the month.
  const dayCount = BigInt(daysFromCivil(Number(year), Number(month) + 1, 1)) + BigInt(c.day - 1) + days;
  const timeOfDay = ((nanos % NS_PER_DAY) + NS_PER_DAY) % NS_PER_DAY;
  return dayCount * NS_PER_DAY + timeOfDay;
}

/**
 * Go's `time.ParseDuration` (src/time/format.go): a sequence of decimal numbers with a unit each
 * (ns, us, µs, μs, ms, s, m, h), optionally signed; "0" alone needs no unit; int64 overflow fails.
 */
export function parseDuration(text: string): bigint {
  const units: Record<string, bigint> = {
    ns: 1n,
    us: 1000n,
    µs: 1000n,
    μs: 1000n,
    ms: 1_000_000n,
    s: NS_PER_SECOND,
    m: 60n * NS_PER_SECOND,
    h: 3600n * NS_PER_SECOND,
  };
  let s = text;
  let negative = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') fail(`time: invalid duration "${text}"`);
  let total = 0n;
  while (s !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    const whole = m[1]!;
    const frac = m[2];
    if (whole === '' && (frac === undefined || frac === '')) fail(`time: invalid duration "${text}"`);
    s = s.slice(m[0].length);
    let u = 0;
    while (u < s.length && s[u] !== '.' && !(s[u]! >= '0' && s[u]! <= '9')) u++;
    const unitName = s.slice(0, u);
    if (unitName === '') fail(`time: missing unit in duration "${text}"`);
    const unit = units[unitName];
    if (unit === undefined) fail(`time: unknown unit "${unitName}" in duration "${text}"`);
    s = s.slice(u);
    const v = whole === '' ? 0n : BigInt(whole);
    if (v > 2n ** 63n / unit) fail(`time: invalid duration "${text}"`);
    let value = v * unit;
    if (frac) {
      // Go's leadingFraction keeps digits while they fit, with a float64 scale, and adds
      // float64(f) * (float64(unit) / scale), truncated: float arithmetic, emulated as such.
      let f = 0n;
      let scale = 1;
      let overflow = false;
      for (const d of frac) {
        if (overflow) continue;
        if (f > (2n ** 63n - 1n) / 10n) {
          overflow = true;
          continue;
        }
        const y = f * 10n + BigInt(d);
        if (y > 2n ** 63n) {
          overflow = true;
          continue;
        }
        f = y;
        scale *= 10;
      }
      if (f > 0n) value += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (value > 2n ** 63n) fail(`time: invalid duration "${text}"`);
    }
    total += value;
    if (total > 2n ** 63n) fail(`time: invalid duration "${text}"`);
  }
  if (negative) return -total;
  if (total > INT64_MAX) fail(`time: invalid duration "${text}"`);
  return total;
}

// The layout names OPA accepts (topdown/time.go acceptedTimeFormats); any other layout goes to Go as
// it is ("Kitchen" is not a name there).
/** A float64 as Go's strconv.FormatFloat(x, 'f', -1, 64): the shortest digits, never an exponent. */
function formatFloatF(x: number): string {
  const text = String(x);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!m) return text;
  const digits = m[2]! + (m[3] ?? '');
  const point = m[2]!.length + Number(m[4]);
  if (point <= 0) return `${m[1]}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return m[1] + digits + '0'.repeat(point - digits.length);
  return `${m[1]}${digits.slice(0, point)}.${digits.slice(point)}`;
}

const EXTENDED_UNITS: Record<string, number> = { d: 24, w: 7 * 24, y: 365 * 24 };

/**
 * OPA's parseExtendedDuration: Go's time.ParseDuration, plus the units d, w and y, which OPA
 * rewrites into hours (as float64, printed by FormatFloat 'f') before Go parses the result.
 */
export function parseExtendedDuration(text: string): bigint {
  if (text === '') fail('time: invalid duration ""');
  if (!/[dwy]/.test(text)) return parseDuration(text);
  // OPA's PEG grammar: a sign, then segments of [0-9.]+ and a unit ("ms" / "us" / "µs" / "ns" / [a-z]).
  const m = /^([-+]?)((?:[0-9.]+(?:ms|us|µs|ns|[a-z]))+)$/.exec(text);
  if (!m) fail(`time: invalid duration ${JSON.stringify(text)}`);
  let rewritten = m[1]!;
  for (const seg of m[2]!.matchAll(/([0-9.]+)(ms|us|µs|ns|[a-z])/g)) {
    const coefficient = EXTENDED_UNITS[seg[2]!];
    if (coefficient === undefined) {
      rewritten += seg[0];
      continue;
    }
    // Go's strconv.ParseFloat: digits with at most one '.', at least one digit.
    if (!/^(\d+\.?\d*|\.\d+)$/.test(seg[1]!)) fail(`time: invalid duration ${JSON.stringify(text)}`);
    rewritten += `${formatFloatF(Number(seg[1]) * coefficient)}h`;
  }
  try {
    return parseDuration(rewritten);
  } catch {
    fail(`time: invalid duration ${JSON.stringify(text)}`);
  }
}

const NAMED_LAYOUTS: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  UnixDate: 'Mon Jan _2 15:04:05 MST 2006',
  RubyDate: 'Mon Jan 02 15:04:05 -0700 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC850: 'Monday, 02-Jan-06 15:04:05 MST',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
};
const RFC3339_NANO = NAMED_LAYOUTS.RFC3339Nano!;

const pad = (n: number, width: number) => String(n).padStart(width, '0');

function zoneText(
  offset: number,
  colon: boolean,
  seconds: boolean,
  zulu: boolean,
  hoursOnly = false,
): string {
  if (zulu && offset === 0) return 'Z';
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  let out = sign + pad(Math.floor(abs / 3600), 2);
  if (hoursOnly) return out;
  out += (colon ? ':' : '') + pad(Math.floor(abs / 60) % 60, 2);
  if (seconds) out += (colon ? ':' : '') + pad(abs % 60, 2);
  return out;
}

/** A layout element of Go's time package: `std` is the token ('2006', '01', 'Z07:00', '.000', …). */
interface LayoutChunk {
  prefix: string;
  std: string;
  suffix: string;
}

const lowerStart = (s: string) => s.length > 0 && s[0]! >= 'a' && s[0]! <= 'z';

/** Go's `time.nextStdChunk` (src/time/format.go), token for token. */
export function nextStdChunk(layout: string): LayoutChunk | undefined {
  const at = (i: number, std: string): LayoutChunk => ({
    prefix: layout.slice(0, i),
    std,
    suffix: layout.slice(i + std.length),
  });
  for (let i = 0; i < layout.length; i++) {
    const c = layout[i]!;
    const rest = layout.slice(i);
    switch (c) {
      case 'J':
        if (rest.startsWith('Jan')) {
          if (rest.startsWith('January')) return at(i, 'January');
          if (!lowerStart(rest.slice(3))) return at(i, 'Jan');
        }
        break;
      case 'M':
        if (rest.startsWith('Mon')) {
          if (rest.startsWith('Monday')) return at(i, 'Monday');
          if (!lowerStart(rest.slice(3))) return at(i, 'Mon');
        }
        if (rest.startsWith('MST')) return at(i, 'MST');
        break;
      case '0':
        if (rest.length >= 2 && rest[1]! >= '1' && rest[1]! <= '6') return at(i, rest.slice(0, 2));
        if (rest.startsWith('002')) return at(i, '002');
        break;
      case '1':
        if (rest.startsWith('15')) return at(i, '15');
        return at(i, '1');
      case '2':
        if (rest.startsWith('2006')) return at(i, '2006');
        return at(i, '2');
      case '_':
        if (rest.startsWith('_2')) {
          // "_2006" is a literal '_' and the long year.
          if (rest.startsWith('_2006'))
            return { prefix: layout.slice(0, i + 1), std: '2006', suffix: layout.slice(i + 5) };
          return at(i, '_2');
        }
        if (rest.startsWith('__2')) return at(i, '__2');
        break;
      case '3':
      case '4':
      case '5':
        return at(i, c);
      case 'P':
        if (rest.startsWith('PM')) return at(i, 'PM');
        break;
      case 'p':
        if (rest.startsWith('pm')) return at(i, 'pm');
        break;
      case '-':
        for (const t of ['-070000', '-07:00:00', '-0700', '-07:00', '-07'])
          if (rest.startsWith(t)) return at(i, t);
        break;
      case 'Z':
        for (const t of ['Z070000', 'Z07:00:00', 'Z0700', 'Z07:00', 'Z07'])
          if (rest.startsWith(t)) return at(i, t);
        break;
      case '.':
      case ',':
        if (rest[1] === '0' || rest[1] === '9') {
          let j = 1;
          while (j < rest.length && rest[j] === rest[1]) j++;
          if (!(rest[j]! >= '0' && rest[j]! <= '9')) return at(i, rest.slice(0, j));
        }
        break;
    }
  }
  return undefined;
}

/** Go's `time.Time.Format` for a layout. */
export function formatLayout(c: Civil, layout: string): string {
  let out = '';
  let rest = layout;
  for (;;) {
    const chunk = nextStdChunk(rest);
    if (!chunk) return out + rest;
    out += chunk.prefix;
    rest = chunk.suffix;
    const std = chunk.std;
    const hour12 = c.hour % 12 === 0 ? 12 : c.hour % 12;
    if (std[0] === '.' || std[0] === ',') {
      const digits = std.length - 1;
      const text = pad(c.nanos, 9).slice(0, Math.min(digits, 9));
      if (std[1] === '0') out += std[0] + text;
      else {
        const trimmed = text.replace(/0+$/, '');
        if (trimmed !== '') out += std[0] + trimmed;
      }
      continue;
    }
    switch (std) {
      case 'January':
        out += MONTHS[c.month - 1];
        break;
      case 'Jan':
        out += MONTHS[c.month - 1]!.slice(0, 3);
        break;
      case 'Monday':
        out += WEEKDAYS[c.weekday];
        break;
      case 'Mon':
        out += WEEKDAYS[c.weekday]!.slice(0, 3);
        break;
      case 'MST':
        out += c.zone;
        break;
      case '2006':
        out += c.year < 0 ? `-${pad(-c.year, 4)}` : pad(c.year, 4);
        break;
      case '06':
        out += pad(((c.year % 100) + 100) % 100, 2);
        break;
      case '002':
        out += pad(c.yday, 3);
        break;
      case '__2':
        out += String(c.yday).padStart(3, ' ');
        break;
      case '_2':
        out += String(c.day).padStart(2, ' ');
        break;
      case '01':
        out += pad(c.month, 2);
        break;
      case '1':
        out += String(c.month);
        break;
      case '02':
        out += pad(c.day, 2);
        break;
      case '2':
        out += String(c.day);
        break;
      case '15':
        out += pad(c.hour, 2);
        break;
      case '03':
        out += pad(hour12, 2);
        break;
      case '3':
        out += String(hour12);
        break;
      case '04':
        out += pad(c.minute, 2);
        break;
      case '4':
        out += String(c.minute);
        break;
      case '05':
        out += pad(c.second, 2);
        break;
      case '5':
        out += String(c.second);
        break;
      case 'PM':
        out += c.hour >= 12 ? 'PM' : 'AM';
        break;
      case 'pm':
        out += c.hour >= 12 ? 'pm' : 'am';
        break;
      default: {
        const zulu = std.startsWith('Z');
        const body = std.slice(1);
        out += zoneText(
          c.offset,
          body.includes(':'),
          body.replaceAll(':', '').length === 6,
          zulu,
          body === '07',
        );
      }
    }
  }
}

const SHORT_DAYS = WEEKDAYS.map((d) => d.slice(0, 3));
const SHORT_MONTHS = MONTHS.map((m) => m.slice(0, 3));

/** Go's time.atoi: an optional sign and digits, nothing after. */
function goAtoi(s: string): number | undefined {
  const m = /^([+-]?)(\d+)$/.exec(s);
  if (!m) return undefined;
  const n = Number(m[2]);
  return m[1] === '-' ? -n : n;
}

/** Go's getnum: one or two digits (exactly two when fixed). */
function getnum(s: string, fixed: boolean): [number, string] | undefined {
  const d = (i: number) => s[i] !== undefined && s[i]! >= '0' && s[i]! <= '9';
  if (!d(0)) return undefined;
  if (!d(1)) return fixed ? undefined : [Number(s[0]), s.slice(1)];
  return [Number(s.slice(0, 2)), s.slice(2)];
}

/** Go's lookup: a case-insensitive (ASCII letters) prefix match against a table. */
function lookupName(table: string[], value: string): [number, string] | undefined {
  for (const [i, v] of table.entries()) {
    if (value.length >= v.length && value.slice(0, v.length).toLowerCase() === v.toLowerCase()) {
      const a = value.slice(0, v.length);
      // Go folds only letters: other characters must be equal.
      if ([...a].every((ch, k) => ch === v[k] || /[a-z]/i.test(ch))) return [i, value.slice(v.length)];
    }
  }
  return undefined;
}

/** Go's parseTimeZone: the length of a zone abbreviation at the start of value, or 0. */
function parseTimeZone(value: string): number {
  if (value.length < 3) return 0;
  if (value.startsWith('ChST') || value.startsWith('MeST')) return 4;
  if (value.startsWith('GMT')) return 3 + signedOffset(value.slice(3));
  if (value[0] === '+' || value[0] === '-') return signedOffset(value);
  let upper = 0;
  while (upper < 6 && upper < value.length && value[upper]! >= 'A' && value[upper]! <= 'Z') upper++;
  if (upper === 5) return value[4] === 'T' ? 5 : 0;
  if (upper === 4) return value[3] === 'T' || value.startsWith('WITA') ? 4 : 0;
  return upper === 3 ? 3 : 0;
}

function signedOffset(value: string): number {
  if (value === '') return 0;
  if (value[0] !== '-' && value[0] !== '+') return 0;
  const m = /^\d+/.exec(value.slice(1));
  if (!m || Number(m[0]) > 23) return 0;
  return 1 + m[0].length;
}

/** Go's parseNanoseconds: a '.' or ',' and up to nine digits (more are cut). */
function parseNanos(value: string, nbytes: number): number | undefined {
  if (value[0] !== '.' && value[0] !== ',') return undefined;
  const n = goAtoi(value.slice(1, Math.min(nbytes, 10)));
  if (n === undefined || n < 0) return undefined;
  return n * 10 ** (10 - Math.min(nbytes, 10));
}

const DAYS_BEFORE = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];

/**
 * Go's `time.Parse(layout, value)` (src/time/format.go `parse`), in UTC: nanoseconds since the
 * epoch, or a builtin error. A zone abbreviation other than UTC does not move the instant (the
 * host's zone is UTC and knows no other name), except GMT±h, as Go.
 */
export function parseLayout(layoutText: string, valueText: string): bigint {
  const bad = () => fail(`parsing time ${JSON.stringify(valueText)} as ${JSON.stringify(layoutText)}`);
  let layout = layoutText;
  let value = valueText;
  let year = 0;
  let month = -1;
  let day = -1;
  let yday = -1;
  let hour = 0;
  let min = 0;
  let sec = 0;
  let nsec = 0;
  let zoneOffset: number | undefined;
  // Go's z = UTC ("UTC" for MST, "Z" for Z07:00): it wins over any numeric offset.
  let zoneUTC = false;
  let amSet = false;
  let pmSet = false;
  for (;;) {
    const chunk = nextStdChunk(layout);
    // skip: the literal prefix, where a space matches any run of spaces.
    let prefix = chunk ? chunk.prefix : layout;
    while (prefix.length > 0) {
      if (prefix[0] === ' ') {
        if (value.length > 0 && value[0] !== ' ') bad();
        prefix = prefix.replace(/^ +/, '');
        value = value.replace(/^ +/, '');
        continue;
      }
      if (value.length === 0 || value[0] !== prefix[0]) bad();
      prefix = prefix.slice(1);
      value = value.slice(1);
    }
    if (!chunk) {
      if (value.length !== 0)
        fail(`parsing time ${JSON.stringify(valueText)}: extra text: ${JSON.stringify(value)}`);
      break;
    }
    layout = chunk.suffix;
    const std = chunk.std;
    let r: [number, string] | undefined;
    switch (std) {
      case '06': {
        if (value.length < 2) bad();
        const y = goAtoi(value.slice(0, 2));
        if (y === undefined) bad();
        year = y! >= 69 ? y! + 1900 : y! + 2000;
        value = value.slice(2);
        break;
      }
      case '2006': {
        if (value.length < 4 || !(value[0]! >= '0' && value[0]! <= '9')) bad();
        const y = goAtoi(value.slice(0, 4));
        if (y === undefined) bad();
        year = y!;
        value = value.slice(4);
        break;
      }
      case 'Jan':
      case 'January':
        r = lookupName(std === 'Jan' ? SHORT_MONTHS : MONTHS, value) ?? bad();
        month = r[0] + 1;
        value = r[1];
        break;
      case 'Mon':
      case 'Monday':
        r = lookupName(std === 'Mon' ? SHORT_DAYS : WEEKDAYS, value) ?? bad();
        value = r[1];
        break;
      case '1':
      case '01':
        r = getnum(value, std === '01') ?? bad();
        [month, value] = r;
        if (month <= 0 || month > 12) fail('month out of range');
        break;
      case '2':
      case '_2':
      case '02':
        if (std === '_2' && value[0] === ' ') value = value.slice(1);
        r = getnum(value, std === '02') ?? bad();
        [day, value] = r;
        break;
      case '__2':
      case '002': {
        for (let k = 0; k < 2; k++) if (std === '__2' && value[0] === ' ') value = value.slice(1);
        const m = /^\d{1,3}/.exec(value);
        if (!m || (std === '002' && m[0].length !== 3)) bad();
        yday = Number(m![0]);
        value = value.slice(m![0].length);
        break;
      }
      case '15':
        r = getnum(value, false) ?? bad();
        [hour, value] = r;
        if (hour >= 24) fail('hour out of range');
        break;
      case '3':
      case '03':
        r = getnum(value, std === '03') ?? bad();
        [hour, value] = r;
        if (hour > 12) fail('hour out of range');
        break;
      case '4':
      case '04':
        r = getnum(value, std === '04') ?? bad();
        [min, value] = r;
        if (min >= 60) fail('minute out of range');
        break;
      case '5':
      case '05': {
        r = getnum(value, std === '05') ?? bad();
        [sec, value] = r;
        if (sec >= 60) fail('second out of range');
        // A fraction after the seconds is read even when the layout has none.
        if (value.length >= 2 && (value[0] === '.' || value[0] === ',') && /\d/.test(value[1]!)) {
          const next = nextStdChunk(layout)?.std ?? '';
          if (/^[.,](0+|9+)$/.test(next)) break;
          let n = 2;
          while (n < value.length && /\d/.test(value[n]!)) n++;
          nsec = parseNanos(value, n) ?? bad();
          value = value.slice(n);
        }
        break;
      }
      case 'PM':
      case 'pm': {
        if (value.length < 2) bad();
        const p = value.slice(0, 2);
        value = value.slice(2);
        if (p === (std === 'PM' ? 'PM' : 'pm')) pmSet = true;
        else if (p === (std === 'PM' ? 'AM' : 'am')) amSet = true;
        else bad();
        break;
      }
      case 'MST': {
        if (value.startsWith('UTC')) {
          value = value.slice(3);
          zoneUTC = true;
          break;
        }
        const n = parseTimeZone(value);
        if (n === 0) bad();
        // Only GMT±h is a known offset; see the function's comment. The instant does not move.
        value = value.slice(n);
        break;
      }
      default: {
        if (std[0] === '.' || std[0] === ',') {
          if (std[1] === '0') {
            const ndigit = std.length;
            if (value.length < ndigit) bad();
            nsec = parseNanos(value, ndigit) ?? bad();
            value = value.slice(ndigit);
          } else {
            if (value.length < 2 || (value[0] !== '.' && value[0] !== ',') || !/\d/.test(value[1]!)) break;
            let i = 0;
            while (i + 1 < value.length && /\d/.test(value[i + 1]!)) i++;
            nsec = parseNanos(value, 1 + i) ?? bad();
            value = value.slice(1 + i);
          }
          break;
        }
        // Zone offsets: Z07:00 and friends accept "Z"; -07:00 and friends do not.
        if (std[0] === 'Z' && value[0] === 'Z') {
          value = value.slice(1);
          zoneUTC = true;
          break;
        }
        const form = std.slice(1);
        let sign: string;
        let hh: string;
        let mm = '00';
        let ss = '00';
        if (form === '07:00') {
          if (value.length < 6 || value[3] !== ':') bad();
          [sign, hh, mm] = [value[0]!, value.slice(1, 3), value.slice(4, 6)];
          value = value.slice(6);
        } else if (form === '07') {
          if (value.length < 3) bad();
          [sign, hh] = [value[0]!, value.slice(1, 3)];
          value = value.slice(3);
        } else if (form === '07:00:00') {
          if (value.length < 9 || value[3] !== ':' || value[6] !== ':') bad();
          [sign, hh, mm, ss] = [value[0]!, value.slice(1, 3), value.slice(4, 6), value.slice(7, 9)];
          value = value.slice(9);
        } else if (form === '070000') {
          if (value.length < 7) bad();
          [sign, hh, mm, ss] = [value[0]!, value.slice(1, 3), value.slice(3, 5), value.slice(5, 7)];
          value = value.slice(7);
        } else {
          if (value.length < 5) bad();
          [sign, hh, mm] = [value[0]!, value.slice(1, 3), value.slice(3, 5)];
          value = value.slice(5);
        }
        const h = getnum(hh, true);
        const m = h && getnum(mm, true);
        const s2 = m && getnum(ss, true);
        if (!h || !m || !s2) bad();
        if (h![0] > 24) fail('time zone offset hour out of range');
        if (m![0] > 60) fail('time zone offset minute out of range');
        if (s2![0] > 60) fail('time zone offset second out of range');
        const offset = (h![0] * 60 + m![0]) * 60 + s2![0];
        if (sign! === '+') zoneOffset = offset;
        else if (sign! === '-') zoneOffset = -offset;
        else bad();
      }
    }
  }
  if (pmSet && hour < 12) hour += 12;
  else if (amSet && hour === 12) hour = 0;
  if (yday >= 0) {
    let d = 0;
    let m = 0;
    if (isLeap(year)) {
      if (yday === 31 + 29) {
        m = 2;
        d = 29;
      } else if (yday > 31 + 29) yday--;
    }
    if (yday < 1 || yday > 365) fail('day-of-year out of range');
    if (m === 0) {
      m = Math.floor((yday - 1) / 31) + 1;
      if (DAYS_BEFORE[m]! < yday) m++;
      d = yday - DAYS_BEFORE[m - 1]!;
    }
    if (month >= 0 && month !== m) fail('day-of-year does not match month');
    month = m;
    if (day >= 0 && day !== d) fail('day-of-year does not match day');
    day = d;
  } else {
    if (month < 0) month = 1;
    if (day < 0) day = 1;
  }
  if (day < 1 || day > daysInMonth(year, month)) fail('day out of range');
  const seconds = BigInt(daysFromCivil(year, month, day)) * 86_400n + BigInt(hour * 3600 + min * 60 + sec);
  return (seconds - BigInt(zoneUTC ? 0 : (zoneOffset ?? 0))) * NS_PER_SECOND + BigInt(nsec);
}

/** The decision's instant: the server-set `now` of the input (RFC 3339), read once per evaluation. */
export function decisionNow(context: EvaluationContext): bigint {
  if (context.input === undefined && context.inputJson !== undefined)
    context.input = JSON.parse(context.inputJson);
  const now = (context.input as { now?: unknown } | null | undefined)?.now;
  const nanos = rfc3339Nanos(now);
  if (nanos === undefined) {
    throw new Error(
      'time.now_ns: the input has no RFC 3339 `now` (Verdict answers time.now_ns with the decision time the server sets in input.now, so that a replay gives the same answer)',
    );
  }
  return nanos;
}

/** A deterministic digest of the evaluation's input and a builtin's arguments (replayable "randomness"). */
export function inputSeed(context: EvaluationContext, ...parts: string[]): Buffer {
  const hash = createHash('sha256').update(context.inputJson ?? '');
  for (const part of parts) hash.update('\0').update(part);
  return hash.digest();
}

/** The time builtins. */
export const TIME_BUILTINS: Record<string, HostBuiltin> = {
  'time.now_ns': (_args, context) => decisionNow(context),
  'time.parse_rfc3339_ns': ([value]) => {
    const nanos = rfc3339Nanos(str(value));
    if (nanos === undefined) fail(`parsing time ${JSON.stringify(value)} as RFC 3339`);
    return nanos;
  },
  'time.date': ([x]) => {
    const { nanos, zone } = instant(x);
    const c = civil(nanos, zone);
    return [c.year, c.month, c.day];
  },
  'time.clock': ([x]) => {
    const { nanos, zone } = instant(x);
    const c = civil(nanos, zone);
    return [c.hour, c.minute, c.second];
  },
  'time.weekday': ([x]) => {
    const { nanos, zone } = instant(x);
    return WEEKDAYS[civil(nanos, zone).weekday];
  },
  'time.add_date': ([ns, years, months, days]) => {
    const { nanos } = instant(ns);
    const result = addDate(nanos, int(years), int(months), int(days));
    if (result < INT64_MIN || result > INT64_MAX) fail('time outside of valid range');
    return result;
  },
  'time.diff': ([a, b]) => {
    const first = instant(a);
    const second = instant(b);
    // The algorithm OPA takes from icza/gox (Apache 2.0): both in the first one's zone.
    let t1 = { nanos: first.nanos, c: civil(first.nanos, first.zone) };
    let t2 = { nanos: second.nanos, c: civil(second.nanos, first.zone) };
    if (t1.nanos > t2.nanos) [t1, t2] = [t2, t1];
    let year = t2.c.year - t1.c.year;
    let month = t2.c.month - t1.c.month;
    let day = t2.c.day - t1.c.day;
    let hour = t2.c.hour - t1.c.hour;
    let minute = t2.c.minute - t1.c.minute;
    let second_ = t2.c.second - t1.c.second;
    if (second_ < 0) {
      second_ += 60;
      minute--;
    }
    if (minute < 0) {
      minute += 60;
      hour--;
    }
    if (hour < 0) {
      hour += 24;
      day--;
    }
    if (day < 0) {
      // Days in t1's month, as Go's time.Date(y1, M1, 32) normalises.
      day += daysInMonth(t1.c.year, t1.c.month);
      month--;
    }
    if (month < 0) {
      month += 12;
      year--;
    }
    return [year, month, day, hour, minute, second_];
  },
  'time.parse_duration_ns': ([value]) => parseExtendedDuration(str(value)),
  'time.parse_ns': ([layout, value]) => {
    const text = str(layout, 'layout');
    const nanos = parseLayout(NAMED_LAYOUTS[text] ?? text, str(value, 'value'));
    if (nanos < INT64_MIN || nanos > INT64_MAX) fail('time outside of valid range');
    return nanos;
  },
  'time.format': ([x]) => {
    const { nanos, zone, layout } = instant(x);
    const c = civil(nanos, zone);
    return formatLayout(c, layout === undefined ? RFC3339_NANO : (NAMED_LAYOUTS[layout] ?? layout));
  },
};
