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

// Go's layout tokens (time.nextStdChunk), longest first where one is a prefix of another.
const LAYOUT_TOKENS = [
  'January',
  'Jan',
  'Monday',
  'Mon',
  'MST',
  '2006',
  '002',
  '__2',
  '_2',
  '01',
  '02',
  '03',
  '04',
  '05',
  '06',
  '15',
  '1',
  '2',
  '3',
  '4',
  '5',
  'PM',
  'pm',
  'Z070000',
  'Z07:00:00',
  'Z0700',
  'Z07:00',
  'Z07',
  '-070000',
  '-07:00:00',
  '-0700',
  '-07:00',
  '-07',
];

/** Go's `time.Time.Format` for a layout (the tokens of src/time/format.go). */
export function formatLayout(c: Civil, layout: string): string {
  let out = '';
  let i = 0;
  while (i < layout.length) {
    const rest = layout.slice(i);
    // Fractional seconds: ".000" (fixed) or ".999" (trailing zeros trimmed), also after ','.
    const frac = /^[.,](0+|9+)(?!\d)/.exec(rest);
    if (frac && (i === 0 || !/\d/.test(layout[i - 1]!) || true)) {
      const digits = frac[1]!.length;
      const text = pad(c.nanos, 9).slice(0, Math.min(digits, 9));
      if (frac[1]![0] === '0') out += rest[0] + text;
      else {
        const trimmed = text.replace(/0+$/, '');
        if (trimmed !== '') out += rest[0] + trimmed;
      }
      i += frac[0].length;
      continue;
    }
    const token = LAYOUT_TOKENS.find((t) => rest.startsWith(t));
    if (!token || (token === 'Mon' && rest.startsWith('Month'))) {
      out += layout[i];
      i++;
      continue;
    }
    // Go: "Jan" and "Mon" are words only when not followed by a lower-case letter.
    if ((token === 'Jan' || token === 'Mon') && /^[a-z]/.test(rest.slice(3)) && !rest.startsWith('Monday')) {
      out += layout[i];
      i++;
      continue;
    }
    i += token.length;
    const hour12 = c.hour % 12 === 0 ? 12 : c.hour % 12;
    switch (token) {
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
        const zulu = token.startsWith('Z');
        const body = token.slice(1);
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
  return out;
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
  'time.format': ([x]) => {
    const { nanos, zone, layout } = instant(x);
    const c = civil(nanos, zone);
    return formatLayout(c, layout === undefined ? RFC3339_NANO : (NAMED_LAYOUTS[layout] ?? layout));
  },
};
