/**
 * Generated arguments for the builtins Verdict answers with OPA's own Go implementation
 * (src/engine/go-builtins.ts, ADR 0022), for the differential test against `opa eval`
 * (test/differential/builtins.test.ts): real certificates, requests and keys made by `openssl` in
 * a temporary directory, GraphQL schemas and queries, JSON schemas, globs, Rego modules, templates
 * and URIs — valid, invalid and at the edges — plus fast-check samples. Deterministic apart from
 * the keys and certificates, which are fresh on each run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';

const SEED = 20261208;
let run = 0;

function sample<T>(arbitrary: fc.Arbitrary<T>, count: number): T[] {
  run += 1;
  return fc.sample(arbitrary, { numRuns: count, seed: SEED + run });
}

export interface Pki {
  caCert: string;
  leafCert: string;
  otherCert: string;
  csr: string;
  rsaPkcs1: string;
  rsaPkcs8: string;
  ecKey: string;
  edKey: string;
  leafKey: string;
}

/** A CA, a leaf it signs (with SANs), an unrelated self-signed certificate, a CSR and keys. */
export function pki(): Pki {
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-go-builtins-pki-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const read = (file: string) => readFileSync(path.join(dir, file), 'utf8');
  ssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  ssl(
    'req',
    '-x509',
    '-new',
    '-key',
    'ca.key',
    '-days',
    '3650',
    '-subj',
    '/CN=Verdict Test CA/O=Verdict',
    '-out',
    'ca.pem',
  );
  ssl('genrsa', '-traditional', '-out', 'leaf.key', '2048');
  ssl('pkcs8', '-topk8', '-nocrypt', '-in', 'leaf.key', '-out', 'leaf.pk8');
  writeFileSync(
    path.join(dir, 'ext.cnf'),
    'subjectAltName=DNS:api.example.com,DNS:*.example.org,IP:10.0.0.1,email:ops@example.com,URI:spiffe://example.com/svc\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n',
  );
  ssl(
    'req',
    '-new',
    '-key',
    'leaf.key',
    '-subj',
    '/CN=api.example.com/O=Verdict/OU=PDP/C=FR',
    '-addext',
    'subjectAltName=DNS:api.example.com',
    '-out',
    'leaf.csr',
  );
  ssl(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '365',
    '-extfile',
    'ext.cnf',
    '-out',
    'leaf.pem',
  );
  ssl('genpkey', '-algorithm', 'ed25519', '-out', 'ed.key');
  ssl('req', '-x509', '-new', '-key', 'ed.key', '-days', '30', '-subj', '/CN=other', '-out', 'other.pem');
  ssl('ecparam', '-name', 'secp384r1', '-genkey', '-noout', '-out', 'ec.key');
  return {
    caCert: read('ca.pem'),
    leafCert: read('leaf.pem'),
    otherCert: read('other.pem'),
    csr: read('leaf.csr'),
    rsaPkcs1: read('leaf.key'),
    rsaPkcs8: read('leaf.pk8'),
    ecKey: read('ec.key'),
    edKey: read('ed.key'),
    leafKey: read('leaf.key'),
  };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
/** The DER of the first PEM block, base64 (OPA accepts that too). */
const derB64 = (pem: string) =>
  pem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');

const SCHEMA = `
type Query {
  user(id: ID!): User
  users(first: Int = 10, role: Role): [User!]!
}
enum Role { ADMIN VIEWER }
type User { id: ID! name: String email: String @deprecated(reason: "gone") friends: [User] }
`;

const QUERIES = [
  '{ user(id: "1") { name } }',
  'query Q($id: ID!) { user(id: $id) { id name friends { id } } }',
  '{ users(role: ADMIN) { id } }',
  '{ users(role: OWNER) { id } }',
  '{ user(id: "1") { nope } }',
  '{ user { name } }',
  '{ user(id: "1") { name }',
  'fragment F on User { name } { user(id: "1") { ...F } }',
  'fragment F on User { name } { user(id: "1") { id } }',
  'mutation { x }',
  '',
  '{ __typename }',
  'query { user(id: 1) { email } }',
];

const SCHEMAS = [
  SCHEMA,
  'type Query { a: Int }',
  'type Query { a: Unknown }',
  'type Query { a: Int',
  'schema { query: Q } type Q { x: String }',
  'type Query { a: Int } type Query { b: Int }',
  '',
  'interface Node { id: ID! } type Query implements Node { id: ID! }',
  'type Query { a: Int } extend type Query { b: String }',
  'input I { a: Int! } type Query { f(i: I): Int }',
];

const JSON_SCHEMAS: unknown[] = [
  {
    type: 'object',
    properties: { a: { type: 'string' }, n: { type: 'integer', minimum: 1 } },
    required: ['a'],
  },
  { type: 'array', items: { type: 'number' }, maxItems: 2 },
  { type: 'string', pattern: '^[a-z]+$', minLength: 2 },
  { enum: ['x', 1, null] },
  {
    $schema: 'http://json-schema.org/draft-07/schema#',
    definitions: { p: { type: 'integer' } },
    $ref: '#/definitions/p',
  },
  { anyOf: [{ type: 'string' }, { type: 'boolean' }] },
  { type: 'object', additionalProperties: false, properties: { a: {} } },
  { type: 'string', format: 'email' },
  { type: 'nope' },
  { type: 'string', pattern: '(' },
  { type: 'object', properties: { a: { $ref: '#/definitions/missing' } } },
  '{"type": "integer"}',
  '{"type": ',
  true,
  {},
];

const DOCS: unknown[] = [
  { a: 'x' },
  { a: 1 },
  { n: 0, a: 'é' },
  {},
  [1, 2],
  [1, 'x', 3],
  'ab',
  'a',
  'AB',
  'ops@example.com',
  'x',
  1,
  null,
  true,
  '{"a": "json text"}',
  '[1, 2',
];

const MODULES = [
  'package x\n\nallow if input.user == "alice"\n',
  'package x.y\n\nimport rego.v1\n\n# a comment\ndeny contains msg if {\n  some i\n  input.xs[i] > 2\n  msg := sprintf("%d", [i])\n}\n',
  'package x\n\nallow { true }\n',
  'package x\n\np := 1\np := 2\n',
  'package x\n\nf(a) := a * 2\n\ndefault g := false\n\ng if f(2) == 4\n',
  'package x\n\nimport data.lib.helpers as h\n\nr := {k: v | some k, v in input}\n',
  '# METADATA\n# title: T\npackage x\n\n# METADATA\n# description: d\nallow := true\n',
  'package\n',
  '',
  'not rego at all',
  'package x\n\nallow if {\n',
  'package x\n\ns := {1, 2, 3}\nt := ["a", {"b": null}]\nn := 1.50\nbig := 12345678901234567890\n',
];

const TEMPLATES: [string, unknown][] = [
  ['hello {{.name}}', { name: 'world' }],
  ['{{.n}} and {{.f}}', { n: 1, f: 1.5 }],
  ['{{range $i, $x := .xs}}{{$i}}={{$x}};{{end}}', { xs: ['a', 'b', 'c'] }],
  ['{{if .ok}}yes{{else}}no{{end}}', { ok: false }],
  ['{{.missing}}', {}],
  ['{{.a.b}}', { a: { b: [1, 2] } }],
  ['{{.obj}}', { obj: { z: 1, a: 'x' } }],
  ['{{ .x | printf "%q" }}', { x: 'q"uote' }],
  ['{{len .xs}}', { xs: [1, 2, 3] }],
  ['{{.unclosed', { a: 1 }],
  ['{{template "x"}}', {}],
  ['<b>{{.h}}</b>', { h: '<i>&' }],
  ['', {}],
  ['{{.n}}', { n: 12345678901234567890n }],
  ['{{.n}}', { n: null }],
  ['{{range .m}}{{.}}{{end}}', { m: { b: 2, a: 1 } }],
];

const URIS = [
  'https://user:pa%20ss@example.com:8443/a/b%2Fc;p?q=1&q=2&x=%zz#frag%20ment',
  'http://example.com',
  'http://[::1]:80/',
  'http://[fe80::1%25en0]/',
  'mailto:ops@example.com',
  'urn:isbn:0451450523',
  'file:///etc/passwd',
  '/relative/path?x=1',
  'relative',
  '//host/only',
  '',
  ' http://space.example.com',
  'http://exa mple.com',
  'http://example.com/%',
  'http://%41.com',
  'ht!tp://x',
  'http://x:port/',
  'http://x:99999/',
  'HTTP://EXAMPLE.COM/ÄÖ',
  'http://例え.テスト/パス',
  '?only=query',
  '#only-fragment',
  'spiffe://example.com/svc',
  'data:text/plain;base64,SGVsbG8=',
  'http://user@/path',
  'http://a/b/../c/./d',
  'https://example.com?',
  'https://example.com#',
  'javascript:alert(1)',
  'http://x/\u0000',
];

const GLOBS: [string, string][] = [
  ['a.*', 'ab*'],
  ['a.*', 'b.*'],
  ['[a-c]+', '[d-f]+'],
  ['[a-c]+', '[c-f]+'],
  ['^abc$', 'abc'],
  ['abc', 'abd'],
  ['.*', ''],
  ['(', 'a'],
  ['a', '['],
  ['x{2}', 'xx'],
  ['é+', 'é'],
  ['\\d+', '[0-9]'],
  ['a|b', 'c'],
];

const uriChars = fc.constantFrom(..."abcxyz019:/?#[]@!$&'()*+,;=%-._~ é".split(''));
const regexChars = fc.constantFrom(...'ab.*+?[]-^$|()x\\{}1'.split(''));

/** Arguments for each of the 20 builtins of OPA's Go builtins module. */
export function goBuiltinCases(): Record<string, unknown[][]> {
  const p = pki();
  const chain = p.leafCert + p.caCert;
  const now = BigInt(Date.now()) * 1_000_000n;
  const year = 365n * 86_400n * 1_000_000_000n;
  const sampledUris = sample(
    fc.array(uriChars, { maxLength: 20 }).map((cs) => cs.join('')),
    40,
  );
  const sampledGlobs = sample(
    fc.tuple(
      fc.array(regexChars, { maxLength: 6 }).map((cs) => cs.join('')),
      fc.array(regexChars, { maxLength: 6 }).map((cs) => cs.join('')),
    ),
    60,
  );
  const garbage = ['', 'not a certificate', b64('garbage'), 42, null];
  return {
    'crypto.x509.parse_certificates': [
      [p.caCert],
      [p.leafCert],
      [chain],
      [p.otherCert],
      [b64(p.leafCert)],
      [derB64(p.leafCert)],
      [b64(chain)],
      [p.csr],
      [p.rsaPkcs1],
      ...garbage.map((g) => [g]),
    ],
    'crypto.x509.parse_and_verify_certificates': [
      [p.caCert + p.leafCert],
      [chain],
      [p.caCert],
      [p.leafCert],
      [p.caCert + p.otherCert],
      [b64(p.caCert + p.leafCert)],
      ...garbage.map((g) => [g]),
    ],
    'crypto.x509.parse_and_verify_certificates_with_options': [
      [p.caCert + p.leafCert, { DNSName: 'api.example.com' }],
      [p.caCert + p.leafCert, { DNSName: 'other.example.com' }],
      [p.caCert + p.leafCert, { DNSName: 'a.example.org', KeyUsages: ['KeyUsageServerAuth'] }],
      [p.caCert + p.leafCert, { KeyUsages: ['KeyUsageClientAuth'] }],
      [p.caCert + p.leafCert, { KeyUsages: ['KeyUsageNope'] }],
      [p.caCert + p.leafCert, { CurrentTime: now + 20n * year }],
      [p.caCert + p.leafCert, { CurrentTime: now - 20n * year }],
      [p.caCert + p.leafCert, { CurrentTime: now }],
      [p.caCert + p.leafCert, { CurrentTime: 'soon' }],
      [p.caCert + p.leafCert, { MaxConstraintComparisons: 10 }],
      [p.caCert + p.leafCert, { Unknown: 1 }],
      [p.caCert + p.leafCert, {}],
      [p.caCert + p.otherCert, { DNSName: 'other' }],
      ['x', { DNSName: 'api.example.com' }],
      [p.caCert + p.leafCert, 'not an object'],
    ],
    'crypto.x509.parse_certificate_request': [
      [p.csr],
      [b64(p.csr)],
      [derB64(p.csr)],
      [p.leafCert],
      ...garbage.map((g) => [g]),
    ],
    'crypto.x509.parse_keypair': [
      [p.leafCert, p.leafKey],
      [p.leafCert, p.rsaPkcs8],
      [b64(p.leafCert), b64(p.leafKey)],
      [p.leafCert, p.ecKey],
      [p.otherCert, p.edKey],
      [p.caCert, p.leafKey],
      ['x', p.leafKey],
      [p.leafCert, 'x'],
    ],
    'crypto.x509.parse_rsa_private_key': [
      [p.rsaPkcs1],
      [p.rsaPkcs8],
      [b64(p.rsaPkcs1)],
      [p.ecKey],
      [p.edKey],
      ...garbage.map((g) => [g]),
    ],
    'crypto.parse_private_keys': [
      [p.rsaPkcs1],
      [p.rsaPkcs8],
      [p.ecKey],
      [p.edKey],
      [p.rsaPkcs1 + p.ecKey + p.edKey],
      [b64(p.ecKey)],
      [p.leafCert],
      ...garbage.map((g) => [g]),
    ],
    'graphql.is_valid': QUERIES.flatMap((q) => SCHEMAS.slice(0, 4).map((s) => [q, s])),
    'graphql.parse': QUERIES.map((q) => [q, SCHEMA]),
    'graphql.parse_and_verify': [
      ...QUERIES.map((q) => [q, SCHEMA]),
      ['{ a }', 'type Query { a: Int }'],
      ['{ a }', 'bad'],
    ],
    'graphql.parse_query': [...QUERIES.map((q) => [q]), [1]],
    'graphql.parse_schema': [...SCHEMAS.map((s) => [s]), [1]],
    'graphql.schema_is_valid': [...SCHEMAS.map((s) => [s]), [{}], [1]],
    'json.match_schema': JSON_SCHEMAS.flatMap((s) => DOCS.map((d) => [d, s])),
    'json.verify_schema': [...JSON_SCHEMAS.map((s) => [s]), [1], [null], ['not json']],
    'regex.globs_match': [...GLOBS, ...sampledGlobs],
    'rego.parse_module': [...MODULES.map((m, i) => [`m${i}.rego`, m]), ['', 'package x'], [1, 'package x']],
    'strings.render_template': [...TEMPLATES, ['x', 'not an object']],
    'uri.parse': [...URIS, ...sampledUris].map((u) => [u]),
    'uri.is_valid': [...URIS, ...sampledUris, 1, null].map((u) => [u]),
  };
}
