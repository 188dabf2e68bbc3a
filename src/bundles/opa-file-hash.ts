import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';

/**
 * The per-file digests of OPA's bundle signature format (`.signatures.json`), computed the way OPA
 * computes them so that bundles signed by `opa sign` / `opa build --signing-key` verify here.
 *
 * Why hand-written: no npm package implements OPA's structured-document hash. What OPA documents and
 * does (open-policy-agent/opa, bundle/hash.go and bundle/verify.go):
 * - a file whose base name is `data.json`, `data.yaml`, `.manifest` or `.signatures.json` is a
 *   structured document: it is parsed, and the digest covers a canonical text of the value — an
 *   object as `{` + members sorted by key (byte order), each `key:value`, joined by `,` + `}`, an
 *   array as `[` + items joined by `,` + `]`, a scalar as Go's JSON encoder writes it (numbers keep
 *   their literal text because OPA decodes them as json.Number);
 * - any other file is hashed as its bytes.
 */

/** The hashing algorithms OPA accepts in a signature's file list, by the name it writes. */
export const FILE_HASH_ALGORITHMS: Record<string, string> = {
  MD5: 'md5',
  'SHA-1': 'sha1',
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA-512-224': 'sha512-224',
  'SHA-512-256': 'sha512-256',
};

const STRUCTURED = new Set(['data.json', 'data.yaml', '.manifest', '.signatures.json']);

/** True for the files OPA hashes as parsed documents rather than as bytes. */
export function isStructuredFile(name: string): boolean {
  return STRUCTURED.has(name.slice(name.lastIndexOf('/') + 1));
}

/** A JSON number kept as the literal text it was written with (OPA's json.Number). */
class NumberLiteral {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

// NOTE: JSON.parse's reviver receives the source text of each primitive (TC39 "JSON.parse source
// text access", in V8 since Node 21), which keeps `1.0` and `1e3` as written rather than as 1 and 1000.
const keepNumberLiterals: Reviver = (_key, value, context) =>
  typeof value === 'number' && context?.source !== undefined ? new NumberLiteral(context.source) : value;

// Go's encoding/json with SetEscapeHTML(false): like JSON.stringify, except that U+2028 and U+2029
// are escaped and invalid UTF-16 becomes U+FFFD.
function goString(value: string): string {
  return JSON.stringify(value.toWellFormed()).replaceAll('\u2028', '\\u2028').replaceAll('\u2029', '\\u2029');
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function canonical(value: unknown, out: string[]): void {
  if (value instanceof NumberLiteral) out.push(value.text);
  else if (typeof value === 'number') out.push(JSON.stringify(value));
  else if (typeof value === 'string') out.push(goString(value));
  else if (typeof value === 'boolean' || value === null || value === undefined)
    out.push(String(value ?? null));
  else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i > 0) out.push(',');
      canonical(item, out);
    });
    out.push(']');
  } else if (value instanceof Date) out.push(goString(value.toISOString()));
  else {
    const record = value as Record<string, unknown>;
    out.push('{');
    Object.keys(record)
      .sort(byteOrder)
      .forEach((key, i) => {
        if (i > 0) out.push(',');
        out.push(goString(key), ':');
        canonical(record[key], out);
      });
    out.push('}');
  }
}

/** The canonical text OPA hashes for a structured document. Throws when the file does not parse. */
export function structuredText(name: string, content: Buffer): string {
  const text = content.toString('utf8');
  const value = name.endsWith('.yaml') ? parseYaml(text) : JSON.parse(text, keepNumberLiterals as never);
  const out: string[] = [];
  canonical(value, out);
  return out.join('');
}

/** Hex digest of one bundle file as OPA computes it. Throws on an unknown algorithm or a bad document. */
export function opaFileHash(name: string, content: Buffer, algorithm: string): string {
  const nodeAlgorithm = FILE_HASH_ALGORITHMS[algorithm];
  if (nodeAlgorithm === undefined) throw new Error(`unsupported hashing algorithm ${algorithm}`);
  const hash = createHash(nodeAlgorithm);
  hash.update(isStructuredFile(name) ? structuredText(name, content) : content);
  return hash.digest('hex');
}
