/**
 * Rego values as the wasm module writes and reads them in its "value" format (`opa_value_dump`,
 * `opa_value_parse`): JSON, plus sets (`{1, 2}`, the empty one `set()`) and objects whose keys are
 * not strings. The JSON format (`opa_json_dump`) loses the difference between a set and an array and
 * writes a set's members in hash order, where OPA writes them sorted; so the engine reads the value
 * format and sorts every set here, with OPA's order of values (`ast.Compare`).
 */

/** A Rego set handed to or returned by a builtin; serialised as a set, sorted as OPA sorts. */
export class RegoSet {
  readonly members: unknown[];
  constructor(members: Iterable<unknown>) {
    const sorted = [...members].sort(compareValues);
    this.members = sorted.filter((m, i) => i === 0 || compareValues(sorted[i - 1], m) !== 0);
  }
}

/** A number as its exact decimal text (Go's big.Rat printed), which a JS number would round. */
export class RegoNumber {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

function kind(value: unknown): number {
  if (value === null || value === undefined) return 0;
  switch (typeof value) {
    case 'boolean':
      return 1;
    case 'number':
    case 'bigint':
      return 2;
    case 'string':
      return 3;
  }
  if (Array.isArray(value)) return 4;
  if (value instanceof RegoSet) return 6;
  return 5;
}

/** Go compares strings by their UTF-8 bytes, which is the order of code points (not UTF-16 units). */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function compareSequences(a: readonly unknown[], b: readonly unknown[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareValues(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length === 0 ? 0 : a.length < b.length ? -1 : 1;
}

/** OPA's total order of values: null < booleans < numbers < strings < arrays < objects < sets. */
export function compareValues(a: unknown, b: unknown): number {
  const ka = kind(a);
  const kb = kind(b);
  if (ka !== kb) return ka < kb ? -1 : 1;
  switch (ka) {
    case 0:
      return 0;
    case 1:
      return a === b ? 0 : a ? 1 : -1;
    case 2:
      // biome-ignore lint/suspicious/noDoubleEquals: a number and a bigint compare by value
      return (a as number) == (b as number) ? 0 : (a as number) < (b as number) ? -1 : 1;
    case 3:
      return compareStrings(a as string, b as string);
    case 4:
      return compareSequences(a as unknown[], b as unknown[]);
    case 6:
      return compareSequences((a as RegoSet).members, (b as RegoSet).members);
  }
  // Objects: key by key in sorted key order (key, then value), then the shorter first.
  const oa = a as Record<string, unknown>;
  const ob = b as Record<string, unknown>;
  const keysA = Object.keys(oa).sort(compareStrings);
  const keysB = Object.keys(ob).sort(compareStrings);
  const n = Math.min(keysA.length, keysB.length);
  for (let i = 0; i < n; i++) {
    const c = compareStrings(keysA[i]!, keysB[i]!) || compareValues(oa[keysA[i]!], ob[keysB[i]!]);
    if (c !== 0) return c;
  }
  return keysA.length === keysB.length ? 0 : keysA.length < keysB.length ? -1 : 1;
}

/** How a parse represents what JSON cannot hold. */
export interface ParseOptions {
  /** Keep sets as RegoSet (for builtin arguments that need to tell); otherwise sorted arrays. */
  sets: boolean;
  /** Integers beyond 2^53 as BigInt (builtin arguments: nanoseconds); otherwise JS numbers. */
  exactIntegers: boolean;
  /** Every number as RegoNumber, its text as written (`1.0` is not `1` to Go's sprintf). */
  rawNumbers?: boolean;
}

const NUMBER = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;

/** A hand-written parser for the value format: JSON.parse cannot read sets. */
class ValueParser {
  private i = 0;
  private readonly text: string;
  private readonly options: ParseOptions;
  constructor(text: string, options: ParseOptions) {
    this.text = text;
    this.options = options;
  }

  parse(): unknown {
    const value = this.value();
    this.space();
    if (this.i !== this.text.length) this.fail();
    return value;
  }

  private fail(): never {
    throw new Error(`cannot read the wasm module's value at offset ${this.i}`);
  }

  private space(): void {
    while (this.i < this.text.length) {
      const c = this.text.charCodeAt(this.i);
      if (c !== 32 && c !== 10 && c !== 13 && c !== 9) return;
      this.i++;
    }
  }

  private value(): unknown {
    this.space();
    const c = this.text[this.i];
    if (c === '{') return this.braces();
    if (c === '[') {
      this.i++;
      const items: unknown[] = [];
      this.space();
      if (this.text[this.i] === ']') {
        this.i++;
        return items;
      }
      for (;;) {
        items.push(this.value());
        this.space();
        const d = this.text[this.i++];
        if (d === ']') return items;
        if (d !== ',') this.fail();
      }
    }
    if (c === '"') return this.string();
    if (this.text.startsWith('set()', this.i)) {
      this.i += 5;
      return this.options.sets ? new RegoSet([]) : [];
    }
    for (const [word, literal] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return literal;
      }
    }
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.text);
    if (!m) this.fail();
    this.i += m[0].length;
    if (this.options.rawNumbers) return new RegoNumber(m[0]);
    const n = Number(m[0]);
    if (this.options.exactIntegers && !Number.isSafeInteger(n) && m[1] === undefined && m[2] === undefined) {
      return BigInt(m[0]);
    }
    return n;
  }

  private string(): string {
    const start = this.i;
    this.i++;
    while (this.i < this.text.length) {
      const c = this.text[this.i];
      if (c === '\\') this.i += 2;
      else if (c === '"') {
        this.i++;
        return JSON.parse(this.text.slice(start, this.i));
      } else this.i++;
    }
    this.fail();
  }

  private braces(): unknown {
    this.i++;
    this.space();
    if (this.text[this.i] === '}') {
      this.i++;
      return {};
    }
    const first = this.value();
    this.space();
    if (this.text[this.i] === ':') {
      const object: Record<string, unknown> = {};
      let key = first;
      for (;;) {
        this.i++; // ':'
        const value = this.value();
        // NOTE: OPA writes a non-string key as its JSON text when it serialises an object to JSON.
        object[typeof key === 'string' ? key : JSON.stringify(plain(key))] = value;
        this.space();
        const d = this.text[this.i++];
        if (d === '}') return object;
        if (d !== ',') this.fail();
        key = this.value();
        this.space();
        if (this.text[this.i] !== ':') this.fail();
      }
    }
    const members = [first];
    for (;;) {
      const d = this.text[this.i++];
      if (d === '}') break;
      if (d !== ',') this.fail();
      members.push(this.value());
      this.space();
    }
    const set = new RegoSet(members);
    return this.options.sets ? set : set.members;
  }
}

/** Parses the module's value text. */
export function parseValue(text: string, options: ParseOptions): unknown {
  return new ValueParser(text, options).parse();
}

/** A value with its sets as sorted arrays and its BigInts as numbers: what JSON can carry. */
export function plain(value: unknown): unknown {
  if (value instanceof RegoSet) return value.members.map(plain);
  if (value instanceof RegoNumber) return Number(value.text);
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

/** Writes a value in the format `opa_value_parse` reads: sets stay sets, BigInts stay exact. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`a builtin produced the number ${value}`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
  }
  if (value instanceof RegoNumber) return value.text;
  if (value instanceof RegoSet) {
    return value.members.length === 0 ? 'set()' : `{${value.members.map(valueText).join(',')}}`;
  }
  if (Array.isArray(value)) return `[${value.map(valueText).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>);
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${valueText(v)}`).join(',')}}`;
}
