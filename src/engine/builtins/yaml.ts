/**
 * OPA's `yaml.*` (sigs.k8s.io/yaml over go-yaml) on the `yaml` package, already a dependency. The
 * npm SDK's versions refuse duplicate keys (Go keeps the last) and write strings Go would quote
 * as plain or single-quoted (`yes`, `1.0`): here duplicates are allowed, keys are sorted, and a
 * string that go-yaml would read back as another type is double-quoted, as Go writes it.
 */
import YAML from 'yaml';
import { plain } from '../rego-value.ts';
import { fail, type HostBuiltin, str } from './types.ts';

// What go-yaml's resolver reads as a bool, null, number, timestamp or merge key (YAML 1.1 forms).
const NON_STRING = [
  /^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/,
  /^(~|null|Null|NULL|<<)?$/,
  /^[-+]?(0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+)$/,
  /^[-+]?([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9_]+)([eE][-+]?[0-9]+)?$/,
  /^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$/,
  /^[-+]?\.(inf|Inf|INF)$/,
  /^\.(nan|NaN|NAN)$/,
  /^\d{4}-\d\d?-\d\d?/,
];

const isLetter = (c: string) => /\p{L}/u.test(c);
const isDigit = (c: string) => /\p{Nd}/u.test(c);

/** go-yaml's keyList.Less for string keys (sorter.go): letters by rune, digit runs by value. */
function goYamlKeyLess(a: string, b: string): boolean {
  const ar = [...a];
  const br = [...b];
  let digits = false;
  for (let i = 0; i < ar.length && i < br.length; i++) {
    if (ar[i] === br[i]) {
      digits = isDigit(ar[i]!);
      continue;
    }
    const al = isLetter(ar[i]!);
    const bl = isLetter(br[i]!);
    if (al && bl) return ar[i]!.codePointAt(0)! < br[i]!.codePointAt(0)!;
    if (al || bl) return digits ? al : bl;
    let an = 0;
    let bn = 0;
    if (ar[i] === '0' || br[i] === '0') {
      for (let j = i - 1; j >= 0 && isDigit(ar[j]!); j--) {
        if (ar[j] !== '0') {
          an = 1;
          bn = 1;
          break;
        }
      }
    }
    let ai = i;
    let bi = i;
    for (; ai < ar.length && isDigit(ar[ai]!); ai++) an = an * 10 + (ar[ai]!.codePointAt(0)! - 48);
    for (; bi < br.length && isDigit(br[bi]!); bi++) bn = bn * 10 + (br[bi]!.codePointAt(0)! - 48);
    if (an !== bn) return an < bn;
    if (ai !== bi) return ai < bi;
    return ar[i]!.codePointAt(0)! < br[i]!.codePointAt(0)!;
  }
  return ar.length < br.length;
}

const sortKeys = (a: { key: unknown }, b: { key: unknown }) => {
  const x = String((a.key as { value?: unknown })?.value ?? a.key);
  const y = String((b.key as { value?: unknown })?.value ?? b.key);
  return goYamlKeyLess(x, y) ? -1 : goYamlKeyLess(y, x) ? 1 : 0;
};

// Control characters but \n (a block scalar): go-yaml escapes them in a double-quoted scalar.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\t\r\x00-\x08\x0b\x0c\x0e-\x1f]/;

/** go-yaml writes these double-quoted: another type when read back, control characters, non-BMP. */
function needsDouble(text: string): boolean {
  return NON_STRING.some((re) => re.test(text)) || CONTROL.test(text) || /[\u{10000}-\u{10FFFF}]/u.test(text);
}

function parse(text: string): unknown {
  try {
    return YAML.parse(text, { uniqueKeys: false, maxAliasCount: 100 });
  } catch (err) {
    fail(`yaml: ${(err as Error).message}`);
  }
}

/** The YAML builtins. */
export const YAML_BUILTINS: Record<string, HostBuiltin> = {
  'yaml.unmarshal': ([x]) => parse(str(x)) ?? null,
  'yaml.is_valid': ([x]) => {
    if (typeof x !== 'string') return false;
    try {
      parse(x);
      return true;
    } catch {
      return false;
    }
  },
  'yaml.marshal': ([x]) => {
    const value = plain(x);
    // go-yaml indents a block scalar at the document's root too.
    if (typeof value === 'string' && value.includes('\n') && !needsDouble(value)) {
      const chomp = value.endsWith('\n\n') ? '+' : value.endsWith('\n') ? '' : '-';
      const body = value.endsWith('\n') ? value.slice(0, -1) : value;
      return `|${chomp}\n${body
        .split('\n')
        .map((line) => (line === '' ? '' : `  ${line}`))
        .join('\n')}\n`;
    }
    const doc = new YAML.Document(value, { sortMapEntries: sortKeys });
    YAML.visit(doc, {
      Scalar(_key, node) {
        if (typeof node.value !== 'string') return;
        const text = node.value;
        if (needsDouble(text)) node.type = 'QUOTE_DOUBLE';
        // go-yaml single-quotes what cannot be plain, even with a ' inside (doubled).
        else if (!text.includes('\n') && (/^['"]/.test(YAML.stringify(text)) || /^(\.\.\.|---)/.test(text))) {
          node.type = 'QUOTE_SINGLE';
        }
      },
    });
    // go-yaml writes a character outside the BMP escaped (its emitter deems it unprintable); such
    // strings are double-quoted above.
    return doc
      .toString({ singleQuote: true })
      .replace(
        /[\u{10000}-\u{10FFFF}]/gu,
        (c) => `\\U${c.codePointAt(0)!.toString(16).toUpperCase().padStart(8, '0')}`,
      );
  },
};
