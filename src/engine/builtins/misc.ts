/**
 * OPA's remaining host builtins that Verdict provides: numbers.range_step, json.patch, trace and
 * print (no-ops: a decision's only output is its value), and the two "random" builtins, which
 * Verdict answers from a digest of the evaluation's input so that a replay gives the same answer.
 */
import { compareValues, RegoNumber, RegoSet } from '../rego-value.ts';
import { inputSeed } from './time.ts';
import { fail, type HostBuiltin, int } from './types.ts';

/** A JSON Patch path: a JSON pointer ("/a/0", `~0` `~1` escapes) or an array of segments. */
function pathSegments(path: unknown): string[] {
  if (Array.isArray(path)) return path.map((p) => (typeof p === 'string' ? p : JSON.stringify(p)));
  if (typeof path !== 'string') fail('invalid patch path');
  if (path === '') return [];
  if (!path.startsWith('/')) fail(`invalid JSON pointer ${path}`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function clone(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone);
  if (value instanceof RegoSet) return new RegoSet(value.members.map(clone));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clone(v)]));
  }
  return value;
}

function arrayIndex(segment: string, length: number, forAdd: boolean): number {
  if (forAdd && segment === '-') return length;
  if (!/^(0|[1-9]\d*)$/.test(segment)) fail(`invalid array index ${segment}`);
  const i = Number(segment);
  if (i > length || (!forAdd && i === length)) fail(`array index ${segment} out of range`);
  return i;
}

/** Applies one operation to `doc`, returning the new document (containers are modified in place). */
function walkTo(doc: unknown, segments: string[]): unknown {
  let node = doc;
  for (const s of segments) {
    if (Array.isArray(node)) node = node[arrayIndex(s, node.length, false)];
    else if (
      typeof node === 'object' &&
      node !== null &&
      !(node instanceof RegoSet) &&
      Object.hasOwn(node, s)
    ) {
      node = (node as Record<string, unknown>)[s];
    } else fail(`path /${segments.join('/')} does not exist`);
  }
  return node;
}

function add(doc: unknown, segments: string[], value: unknown): unknown {
  if (segments.length === 0) return value;
  const parent = walkTo(doc, segments.slice(0, -1));
  const last = segments.at(-1)!;
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, true), 0, value);
  else if (typeof parent === 'object' && parent !== null && !(parent instanceof RegoSet)) {
    (parent as Record<string, unknown>)[last] = value;
  } else fail('cannot add into a scalar or a set');
  return doc;
}

function remove(doc: unknown, segments: string[]): unknown {
  if (segments.length === 0) fail('cannot remove the root');
  const parent = walkTo(doc, segments.slice(0, -1));
  const last = segments.at(-1)!;
  if (Array.isArray(parent)) parent.splice(arrayIndex(last, parent.length, false), 1);
  else if (
    typeof parent === 'object' &&
    parent !== null &&
    !(parent instanceof RegoSet) &&
    Object.hasOwn(parent, last)
  ) {
    delete (parent as Record<string, unknown>)[last];
  } else fail(`path /${segments.join('/')} does not exist`);
  return doc;
}

/** RFC 6902 over Rego values; any failed operation (a `test` too) is an error, so undefined. */
function patch(target: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) fail('operand 2 must be an array');
  let doc = clone(target);
  for (const op of operations) {
    if (typeof op !== 'object' || op === null || Array.isArray(op))
      fail('a patch operation must be an object');
    const o = op as Record<string, unknown>;
    const path = pathSegments(o.path);
    switch (o.op) {
      case 'add':
        if (!Object.hasOwn(o, 'value')) fail('add needs a value');
        doc = add(doc, path, clone(o.value));
        break;
      case 'remove':
        doc = remove(doc, path);
        break;
      case 'replace':
        if (!Object.hasOwn(o, 'value')) fail('replace needs a value');
        walkTo(doc, path);
        doc = add(path.length === 0 ? doc : remove(doc, path), path, clone(o.value));
        break;
      case 'move': {
        const from = pathSegments(o.from);
        const value = walkTo(doc, from);
        doc = add(remove(doc, from), path, value);
        break;
      }
      case 'copy': {
        const value = clone(walkTo(doc, pathSegments(o.from)));
        doc = add(doc, path, value);
        break;
      }
      case 'test':
        if (compareValues(walkTo(doc, path), o.value) !== 0) fail('test failed');
        break;
      default:
        fail(`unknown patch operation ${JSON.stringify(o.op)}`);
    }
  }
  return doc;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof RegoSet);
const equal = (a: unknown, b: unknown) => compareValues(a, b) === 0;
const setHas = (set: RegoSet, x: unknown) => set.members.some((m) => equal(m, x));

/** OPA's objectSubset (topdown/subset.go): recursive on objects, sets and arrays. */
function objectSubset(sup: Record<string, unknown>, sub: Record<string, unknown>): boolean {
  for (const [key, subValue] of Object.entries(sub)) {
    if (!Object.hasOwn(sup, key)) return false;
    const supValue = sup[key];
    if (equal(subValue, supValue)) continue;
    if (isObject(supValue) && isObject(subValue)) {
      if (!objectSubset(supValue, subValue)) return false;
    } else if (supValue instanceof RegoSet && subValue instanceof RegoSet) {
      if (!subValue.members.every((m) => setHas(supValue, m))) return false;
    } else if (Array.isArray(supValue) && Array.isArray(subValue)) {
      if (!arraySubset(supValue, subValue)) return false;
    } else return false;
  }
  return true;
}

/** OPA's arraySubset: `sub` appears contiguously in `sup`. */
function arraySubset(sup: unknown[], sub: unknown[]): boolean {
  if (sub.length > sup.length) return false;
  if (equal(sub, sup)) return true;
  let supCursor = 0;
  let subCursor = 0;
  for (;;) {
    if (subCursor === sub.length) return true;
    if (supCursor + subCursor === sup.length) return false;
    if (equal(sup[supCursor + subCursor], sub[subCursor])) subCursor++;
    else {
      supCursor++;
      subCursor = 0;
    }
  }
}

/**
 * OPA's arraySetSubset, as written: it counts the array's elements found in the set (a repeated
 * element counts again) and answers true once that count reaches the set's size.
 */
function arraySetSubset(sup: unknown[], sub: RegoSet): boolean {
  let unmatched = sub.members.length;
  for (const x of sup) {
    if (setHas(sub, x)) unmatched--;
    if (unmatched === 0) return true;
  }
  return false;
}

/** The edges of a node in a graph object (OPA's graph.Get: only a string is a key from JSON). */
function edgesOf(graph: Record<string, unknown>, node: unknown): unknown[] | undefined {
  if (typeof node !== 'string' || !Object.hasOwn(graph, node)) return undefined;
  const edges = graph[node];
  if (Array.isArray(edges)) return edges;
  if (edges instanceof RegoSet) return edges.members;
  return [];
}

/** OPA's pathBuilder (topdown/reachable.go). */
function pathBuilder(
  graph: Record<string, unknown>,
  root: unknown,
  path: unknown[],
  out: unknown[],
  reached: unknown[],
) {
  const edges = edgesOf(graph, root);
  if (edges === undefined) {
    out.push(path);
    return;
  }
  const next = [...path, root];
  if (edges.length === 0) {
    out.push(next);
    return;
  }
  const seen = [...reached, root];
  for (const neighbor of edges) {
    if (seen.some((r) => equal(r, neighbor))) out.push(next);
    else pathBuilder(graph, neighbor, next, out, seen);
  }
}

/** Bytes of a digest as a UUID of version 4 (RFC 4122 variant), as uuid.rfc4122 answers. */
function uuidFrom(bytes: Buffer): string {
  const b = Buffer.from(bytes.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The remaining builtins Verdict provides. */
export const MISC_BUILTINS: Record<string, HostBuiltin> = {
  'uuid.parse': (args) => uuidParse(args),
  'numbers.range_step': ([a, b, step]) => {
    const start = int(a, 'operand 1');
    const end = int(b, 'operand 2');
    const s = int(step, 'operand 3');
    if (s <= 0n) fail('numbers.range_step: step must be a positive integer');
    const out: bigint[] = [];
    if (start <= end) for (let x = start; x <= end; x += s) out.push(x);
    else for (let x = start; x >= end; x -= s) out.push(x);
    return out;
  },
  'json.patch': ([target, operations]) => patch(target, operations),
  'object.subset': ([sup, sub]) => {
    if (isObject(sup) && isObject(sub)) return objectSubset(sup, sub);
    if (sup instanceof RegoSet && sub instanceof RegoSet) return sub.members.every((m) => setHas(sup, m));
    if (Array.isArray(sup) && Array.isArray(sub)) return arraySubset(sup, sub);
    if (Array.isArray(sup) && sub instanceof RegoSet) return arraySetSubset(sup, sub);
    fail('both arguments object.subset must be of the same type or array and set');
  },
  // gobwas/glob QuoteMeta: a backslash before each of * ? \ [ ] { }.
  'glob.quote_meta': ([pattern]) => {
    if (typeof pattern !== 'string') fail('operand 1 must be a string');
    return pattern.replace(/[*?\\[\]{}]/g, '\\$&');
  },
  'graph.reachable_paths': ([graph, initial]) => {
    if (!isObject(graph)) fail('operand 1 must be an object');
    let queue: unknown[];
    if (Array.isArray(initial)) queue = initial;
    else if (initial instanceof RegoSet) queue = initial.members;
    else fail('operand 2 must be one of {array, set}');
    const out: unknown[] = [];
    for (const node of queue) {
      const edges = edgesOf(graph, node);
      if (edges === undefined) continue;
      if (edges.length === 0) out.push([node]);
      else for (const neighbor of edges) pathBuilder(graph, neighbor, [node], out, [node]);
    }
    return new RegoSet(out);
  },
  // A decision's only output is its value: the notes of trace and print go nowhere, as in OPA
  // without --explain or --enable-print.
  trace: () => true,
  'internal.print': () => true,
  'rand.intn': ([seed, n], context) => {
    if (typeof seed !== 'string') fail('operand 1 must be a string');
    let bound = int(n, 'operand 2');
    if (bound === 0n) return 0n;
    if (bound < 0n) bound = -bound;
    return BigInt(`0x${inputSeed(context, 'rand.intn', seed, bound.toString()).toString('hex')}`) % bound;
  },
  'uuid.rfc4122': ([seed], context) => {
    if (typeof seed !== 'string') fail('operand 1 must be a string');
    return uuidFrom(inputSeed(context, 'uuid.rfc4122', seed));
  },
};

/** Go's encoding/json string: HTML-safe (<, >, & escaped), \b \f \n \r \t, other controls \u00XX. */
function goJsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (cp < 0x20 || ch === '<' || ch === '>' || ch === '&' || cp === 0x2028 || cp === 0x2029) {
      out += `\\u${cp.toString(16).padStart(4, '0')}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** Go's json.Marshal / MarshalIndent of OPA's ast.JSON of a value (sets as sorted arrays). */
export function goJson(
  value: unknown,
  prefix = '',
  indent: string | undefined = undefined,
  depth = 0,
): string {
  if (value instanceof RegoNumber) return value.text;
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean' || typeof value === 'number' || typeof value === 'bigint')
    return String(value);
  if (typeof value === 'string') return goJsonString(value);
  const newline = (d: number) => (indent === undefined ? '' : `\n${prefix}${indent.repeat(d)}`);
  const items = value instanceof RegoSet ? value.members : Array.isArray(value) ? value : undefined;
  if (items) {
    if (items.length === 0) return '[]';
    return `[${items.map((v) => newline(depth + 1) + goJson(v, prefix, indent, depth + 1)).join(',')}${newline(depth)}]`;
  }
  // Go sorts map keys by their bytes.
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  if (entries.length === 0) return '{}';
  const sep = indent === undefined ? ':' : ': ';
  return `{${entries
    .map(([k, v]) => newline(depth + 1) + goJsonString(k) + sep + goJson(v, prefix, indent, depth + 1))
    .join(',')}${newline(depth)}}`;
}

/** OPA's json.marshal_with_options (topdown/encoding.go): prefix, indent, pretty. */
export const marshalWithOptions: HostBuiltin & { rawNumbers: true } = Object.assign(
  ([value, options]: unknown[]) => {
    if (!isObject(options)) fail('operand 2 must be an object');
    let indent = '\t';
    let prefix = '';
    let implicit = false;
    let explicit: boolean | undefined;
    for (const [key, v] of Object.entries(options)) {
      if (key === 'prefix' || key === 'indent') {
        if (typeof v !== 'string') fail(`key ${key} failed cast to string`);
        if (key === 'prefix') prefix = v;
        else indent = v;
        implicit = true;
      } else if (key === 'pretty') {
        if (typeof v !== 'boolean') fail(`key ${key} failed cast to bool`);
        explicit = v;
      } else fail(`object contained unknown key ${key}`);
    }
    const pretty = explicit ?? implicit;
    return pretty ? prefix + goJson(value, prefix, indent) : goJson(value, prefix, undefined);
  },
  { rawNumbers: true as const },
);

/** google/uuid's Parse (v1.6): 36 characters, a 9-byte `urn:uuid:` prefix, any 2-character frame, or 32 hex. */
function parseUuid(text: string): Buffer | undefined {
  let s = Buffer.from(text);
  const hex = (i: number) => {
    const pair = s.subarray(i, i + 2).toString('latin1');
    return /^[0-9a-fA-F]{2}$/.test(pair) ? Number.parseInt(pair, 16) : undefined;
  };
  const out = Buffer.alloc(16);
  if (s.length === 32) {
    for (let i = 0; i < 16; i++) {
      const b = hex(i * 2);
      if (b === undefined) return undefined;
      out[i] = b;
    }
    return out;
  }
  if (s.length === 45) {
    if (s.subarray(0, 9).toString('latin1').toLowerCase() !== 'urn:uuid:') return undefined;
    s = s.subarray(9);
  } else if (s.length === 38) s = s.subarray(1);
  else if (s.length !== 36) return undefined;
  if (s[8] !== 0x2d || s[13] !== 0x2d || s[18] !== 0x2d || s[23] !== 0x2d) return undefined;
  const offsets = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
  for (const [i, x] of offsets.entries()) {
    const b = hex(x);
    if (b === undefined) return undefined;
    out[i] = b;
  }
  return out;
}

// 100-ns intervals between 1582-10-15 and 1970-01-01 (google/uuid g1582ns100).
const G1582_NS100 = 122_192_928_000_000_000n;

/** OPA's uuid.parse (internal/uuid fillMap): version, variant and, for v1/v2, time, node, clock. */
export function uuidParse([value]: unknown[]): unknown {
  if (typeof value !== 'string') fail('operand 1 must be a string');
  const u = parseUuid(value);
  // OPA answers undefined (no error) for what does not parse.
  if (!u) return undefined;
  const version = u[6]! >> 4;
  const v8 = u[8]!;
  const variant =
    (v8 & 0xc0) === 0x80
      ? 'RFC4122'
      : (v8 & 0xe0) === 0xc0
        ? 'Microsoft'
        : (v8 & 0xe0) === 0xe0
          ? 'Future'
          : 'Reserved';
  const out: Record<string, unknown> = { version, variant };
  if (version === 1 || version === 2) {
    const t =
      BigInt(u.readUInt32BE(0)) |
      (BigInt(u.readUInt16BE(4)) << 32n) |
      (BigInt(u.readUInt16BE(6) & 0xfff) << 48n);
    const since = t - G1582_NS100;
    // Go's int64 arithmetic: truncating division, and wrapping on overflow.
    const sec = since / 10_000_000n;
    const nsec = (since % 10_000_000n) * 100n;
    out.time = BigInt.asIntN(64, sec * 1_000_000_000n + nsec);
    const node = u.subarray(10, 16);
    out.nodeid = [...node].map((b) => b.toString(16).padStart(2, '0')).join('-');
    const first = node[0]!;
    out.macvariables =
      (first & 3) === 3
        ? 'local:multicast'
        : (first & 1) === 1
          ? 'global:multicast'
          : (first & 2) === 2
            ? 'local:unicast'
            : 'global:unicast';
    out.clocksequence = u.readUInt16BE(8) & 0x3fff;
    if (version === 2) {
      out.id = u.readUInt32BE(0);
      const domain = u[9]!;
      out.domain =
        domain === 0 ? 'Person' : domain === 1 ? 'Group' : domain === 2 ? 'Org' : `Domain${domain}`;
    }
  }
  return out;
}
