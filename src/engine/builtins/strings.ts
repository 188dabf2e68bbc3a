/**
 * OPA's string, URL-query and regular-expression builtins the wasm target leaves to the host
 * (v1/topdown/strings.go, encoding.go, regex.go), with Go's semantics: counts and indexes are in
 * runes (code points), query escaping is Go's `url.QueryEscape`, and patterns are RE2's.
 */
import { RegoSet } from '../rego-value.ts';
import { bytesOf, goString } from './encoding.ts';
import { fail, type HostBuiltin, int, str } from './types.ts';

/** A string, or the strings of an array or set (OPA's `iterableToStrings`). */
function strings(value: unknown, position: number): string[] {
  if (typeof value === 'string') return [value];
  const items = Array.isArray(value) ? value : value instanceof RegoSet ? value.members : undefined;
  if (!items) fail(`operand ${position} must be one of {string, set, array}`);
  return items.map((item) => {
    if (typeof item !== 'string') fail(`operand ${position} must contain only strings`);
    return item;
  });
}

/** Go's `url.QueryEscape`: everything but [A-Za-z0-9-_.~] as %XX, a space as '+'. */
export function queryEscape(text: string): string {
  let out = '';
  for (const byte of bytesOf(text)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Go's `url.QueryUnescape`: '+' is a space, a bad %-escape is an error. */
export function queryUnescape(text: string): string {
  const bytes: number[] = [];
  const raw = bytesOf(text);
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x25) {
      const hex = String.fromCharCode(raw[i + 1] ?? 0, raw[i + 2] ?? 0);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
        fail(`invalid URL escape ${JSON.stringify(goString(raw.subarray(i, i + 3)))}`);
      }
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(b === 0x2b ? 0x20 : b);
  }
  return goString(Uint8Array.from(bytes));
}

/** Go's `url.ParseQuery`: `&`-separated pairs, a `;` is an error, values kept in order. */
function parseQuery(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    if (pair.includes(';')) fail('invalid semicolon separator in query');
    const eq = pair.indexOf('=');
    const key = queryUnescape(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : queryUnescape(pair.slice(eq + 1));
    if (!Object.hasOwn(out, key)) out[key] = [];
    out[key]!.push(value);
  }
  return out;
}

/** Go's `strings.Count`: non-overlapping; an empty substring counts the runes plus one. */
function count(haystack: string, needle: string): number {
  if (needle === '') return [...haystack].length + 1;
  let n = 0;
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

/**
 * An RE2 pattern as a JavaScript RegExp (unicode mode), for the syntax both share. RE2 syntax that
 * JavaScript reads differently is translated (`(?P<name>`, a leading `(?flags)`, `\z`, `\A`, POSIX
 * classes); what cannot be translated is an error naming it, never a silently different match.
 */
export function re2(pattern: string, global: boolean): RegExp {
  let source = pattern;
  let flags = `u${global ? 'g' : ''}`;
  const leading = /^\(\?([imsU]+)\)/.exec(source);
  if (leading) {
    if (leading[1]!.includes('U')) fail(`regex: the RE2 flag U is not supported by Verdict: ${pattern}`);
    flags += leading[1]!;
    source = source.slice(leading[0].length);
  }
  const posix: Record<string, string> = {
    alnum: '0-9A-Za-z',
    alpha: 'A-Za-z',
    ascii: '\\x00-\\x7F',
    blank: '\\t ',
    cntrl: '\\x00-\\x1F\\x7F',
    digit: '0-9',
    graph: '!-~',
    lower: 'a-z',
    print: ' -~',
    punct: '!-\\/:-@\\[-`{-~',
    space: '\\t\\n\\v\\f\\r ',
    upper: 'A-Z',
    word: '0-9A-Za-z_',
    xdigit: '0-9A-Fa-f',
  };
  source = source
    .replace(/\(\?P</g, '(?<')
    .replace(/\\z/g, '$(?![\\s\\S])')
    .replace(/\\A/g, '^(?<![\\s\\S])')
    .replace(/\[:(\^?)([a-z]+):\]/g, (whole, negate: string, name: string) => {
      const cls = posix[name];
      if (!cls) return whole;
      if (negate) fail(`regex: negated POSIX classes are not supported by Verdict: ${pattern}`);
      return cls;
    })
    // RE2's \s is [\t\n\f\r ]; JavaScript's adds \v and the Unicode spaces.
    .replace(/(?<!\\)((?:\\\\)*)\\s/g, '$1[\\t\\n\\f\\r ]')
    .replace(/(?<!\\)((?:\\\\)*)\\S/g, '$1[^\\t\\n\\f\\r ]');
  if (/\(\?[imsU-]+[:)]|\\[QECpP]|\\x\{/.test(source)) {
    fail(`regex: this RE2 syntax is not supported by Verdict: ${pattern}`);
  }
  try {
    return new RegExp(literalBraces(source), flags);
  } catch (err) {
    fail(`error parsing regexp: ${(err as Error).message}`);
  }
}

/**
 * RE2 reads a `{` that starts no repetition (`{2}`, `{2,}`, `{2,5}`), and a `}` or `]` outside
 * one, as a literal; JavaScript's unicode mode refuses them. Escaped here, outside classes.
 */
function literalBraces(source: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      out += c + (source[i + 1] ?? '');
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
      // A ']' right after '[' or '[^' is a member, as in RE2.
      if (source[i + 1] === '^') out += source[++i];
      if (source[i + 1] === ']') out += `\\${source[++i]}`;
    } else if (c === '{') {
      const q = /^\{\d+(,\d*)?\}/.exec(source.slice(i));
      if (q) {
        out += q[0];
        i += q[0].length - 1;
      } else out += '\\{';
    } else if (c === '}' || c === ']') out += `\\${c}`;
    else out += c;
  }
  return out;
}

/** Go's `Regexp.Expand` template: `$1`, `${1}`, `$name`, `${name}`, `$$`; a name is the longest word. */
function expand(template: string, match: RegExpExecArray): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '$' || i === template.length - 1) {
      out += c;
      continue;
    }
    if (template[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    let name: string;
    let end: number;
    if (template[i + 1] === '{') {
      const close = template.indexOf('}', i + 2);
      const inner = close < 0 ? '' : template.slice(i + 2, close);
      if (close < 0 || !/^\w+$/.test(inner)) {
        out += c;
        continue;
      }
      name = inner;
      end = close;
    } else {
      const m = /^\w+/.exec(template.slice(i + 1));
      if (!m) {
        out += c;
        continue;
      }
      name = m[0];
      end = i + m[0].length;
    }
    i = end;
    if (/^\d+$/.test(name)) {
      const n = Number(name);
      out += n < match.length ? (match[n] ?? '') : '';
    } else out += match.groups?.[name] ?? '';
  }
  return out;
}

/** Go's `strings.SplitN` (n < 0: all; an empty separator splits into code points). */
function goSplitN(text: string, sep: string, n: number): string[] {
  if (n === 0) return [];
  if (sep === '') {
    const runes = [...text];
    if (n < 0 || n >= runes.length) return runes;
    return [...runes.slice(0, n - 1), runes.slice(n - 1).join('')];
  }
  const parts: string[] = [];
  let i = 0;
  while (n < 0 || parts.length < n - 1) {
    const j = text.indexOf(sep, i);
    if (j < 0) break;
    parts.push(text.slice(i, j));
    i = j + sep.length;
  }
  parts.push(text.slice(i));
  return parts;
}

/** Go's `Regexp.allMatches`: at most `limit` matches; no empty match right after a match. */
function goMatches(re: RegExp, text: string, limit: number): RegExpExecArray[] {
  const out: RegExpExecArray[] = [];
  let prevEnd = -1;
  for (let pos = 0; out.length < limit && pos <= text.length; ) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) break;
    const end = m.index + m[0].length;
    let accept = true;
    if (end === pos) {
      if (m.index === prevEnd) accept = false;
      pos += (text.codePointAt(pos) ?? 0) > 0xffff ? 2 : 1;
    } else pos = end;
    prevEnd = end;
    if (accept) out.push(m);
  }
  return out;
}

/** Go's regexp.QuoteMeta. */
function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** OPA's generateRegexTemplate (topdown/regex_template.go): delimited parts are patterns. */
function templatePattern(template: string, open: string, close: string): string {
  const idxs: number[] = [];
  let level = 0;
  let start = 0;
  for (let i = 0; i < template.length; i++) {
    if (template[i] === open) {
      level++;
      if (level === 1) start = i;
    } else if (template[i] === close) {
      level--;
      if (level === 0) idxs.push(start, i + 1);
      else if (level < 0) fail(`unbalanced braces in ${JSON.stringify(template)}`);
    }
  }
  if (level !== 0) fail(`unbalanced braces in ${JSON.stringify(template)}`);
  let pattern = '^';
  let end = 0;
  for (let i = 0; i < idxs.length; i += 2) {
    const raw = template.slice(end, idxs[i]);
    end = idxs[i + 1]!;
    const part = template.slice(idxs[i]! + 1, end - 1);
    re2(`^${part}$`, false); // each part must compile on its own
    pattern += `${quoteMeta(raw)}(${part})`;
  }
  return `${pattern + quoteMeta(template.slice(end))}$`;
}

/** The string, URL query and regex builtins. */
export const STRING_BUILTINS: Record<string, HostBuiltin> = {
  'strings.any_prefix_match': ([search, base]) => {
    const xs = strings(search, 1);
    const prefixes = strings(base, 2);
    return xs.some((x) => prefixes.some((p) => x.startsWith(p)));
  },
  'strings.any_suffix_match': ([search, base]) => {
    const xs = strings(search, 1);
    const suffixes = strings(base, 2);
    return xs.some((x) => suffixes.some((s) => x.endsWith(s)));
  },
  'strings.count': ([search, substring]) => count(str(search), str(substring)),
  // OPA's builtinSplitN: n >= 0 keeps the first n pieces of SplitN(n + 1); n < 0 the last -n of Split.
  'strings.split_n': ([text, delimiter, n]) => {
    const s = str(text);
    const d = str(delimiter);
    const limit = Number(int(n));
    if (limit >= 0) return goSplitN(s, d, limit + 1).slice(0, limit);
    const parts = goSplitN(s, d, -1);
    return parts.slice(Math.max(parts.length + limit, 0));
  },
  indexof_n: ([haystack, needle]) => {
    const base = [...str(haystack)];
    const search = [...str(needle)];
    if (search.length === 0) fail('empty search character');
    const out: number[] = [];
    for (let i = 0; i + search.length <= base.length; i++) {
      if (search.every((r, k) => base[i + k] === r)) out.push(i);
    }
    return out;
  },
  'urlquery.encode': ([x]) => queryEscape(str(x)),
  'urlquery.decode': ([x]) => queryUnescape(str(x)),
  'urlquery.encode_object': ([object]) => {
    if (typeof object !== 'object' || object === null || Array.isArray(object) || object instanceof RegoSet) {
      fail('operand 1 must be object');
    }
    // Go's url.Values.Encode: keys sorted, each value in order.
    const parts: string[] = [];
    for (const key of Object.keys(object).sort()) {
      const value = (object as Record<string, unknown>)[key];
      let values: unknown[];
      if (typeof value === 'string') values = [value];
      else if (Array.isArray(value)) values = value;
      else if (value instanceof RegoSet) values = value.members;
      else fail('encode_object: value must be a string, array or set of strings');
      for (const v of values) {
        if (typeof v !== 'string') fail('encode_object: array/set values must be strings');
        parts.push(`${queryEscape(key)}=${queryEscape(v)}`);
      }
    }
    return parts.join('&');
  },
  'urlquery.decode_object': ([x]) => parseQuery(str(x)),
  'regex.template_match': ([template, value, open, close]) => {
    const t = str(template);
    const v = str(value);
    const o = str(open);
    const c = str(close);
    if (Buffer.byteLength(o) !== 1) fail('start delimiter has to be exactly one character long');
    if (Buffer.byteLength(c) !== 1) fail('end delimiter has to be exactly one character long');
    return re2(templatePattern(t, o, c), false).test(v);
  },
  // Go's Regexp.Split(s, -1): the npm SDK's version reads its pattern as JavaScript's, not RE2's.
  'regex.split': ([pattern, value]) => {
    const re = re2(str(pattern), true);
    const text = str(value);
    if (pattern !== '' && text === '') return [''];
    const out: string[] = [];
    let beg = 0;
    let end = 0;
    for (const m of goMatches(re, text, Number.POSITIVE_INFINITY)) {
      end = m.index;
      if (m.index + m[0].length !== 0) out.push(text.slice(beg, end));
      beg = m.index + m[0].length;
    }
    if (end !== text.length) out.push(text.slice(beg));
    return out;
  },
  'regex.find_n': ([pattern, value, n]) => {
    const re = re2(str(pattern), true);
    const text = str(value);
    const limit = Number(int(n));
    return goMatches(re, text, limit < 0 ? Number.POSITIVE_INFINITY : limit).map((m) => m[0]);
  },
  'regex.replace': ([base, pattern, value]) => {
    const text = str(base);
    const re = re2(str(pattern), true);
    const template = str(value);
    // Go's Regexp.ReplaceAllString: an empty match right after a match is not replaced.
    let out = '';
    let lastEnd = 0;
    let searchPos = 0;
    while (searchPos <= text.length) {
      re.lastIndex = searchPos;
      const m = re.exec(text);
      if (!m) break;
      const start = m.index;
      const end = start + m[0].length;
      out += text.slice(lastEnd, start);
      if (end > lastEnd || start === 0) out += expand(template, m);
      lastEnd = end;
      const width = (text.codePointAt(searchPos) ?? 0) > 0xffff ? 2 : 1;
      if (searchPos + width > end) searchPos += width;
      else if (searchPos + 1 > end) searchPos++;
      else searchPos = end;
    }
    return out + text.slice(lastEnd);
  },
};
