/**
 * Which of OPA's builtins Verdict runs, and how. OPA's wasm target compiles many builtins into the
 * module; the rest (WASM_HOST_BUILTINS: read from what `opa build -t wasm` of OPA 1.22.3 imports,
 * checked by test/engine/builtins-doc.test.ts) are calls out to the host. Verdict provides them in
 * JavaScript with OPA's (Go's) semantics (src/engine/builtins/*.ts), or — the 20 whose answers are
 * Go structures marshalled by Go — with OPA's own Go code compiled to wasm (src/engine/go-builtins.ts,
 * ADR 0022), all held to `opa eval` by test/differential/builtins.test.ts; except those a PDP must
 * not run (REFUSED_BUILTINS): a bundle that imports one, or one of the 20 when their module is not
 * built, is refused at upload, activation and boot with `bundle_unsupported_builtin`, naming them
 * (docs/builtins.md, ADR 0016).
 */
import { CRYPTO_BUILTINS } from './builtins/crypto.ts';
import { MISC_BUILTINS, marshalWithOptions } from './builtins/misc.ts';
import { NET_BUILTINS } from './builtins/net.ts';
import { SEMVER_BUILTINS } from './builtins/semver.ts';
import { sprintf } from './builtins/sprintf.ts';
import { STRING_BUILTINS } from './builtins/strings.ts';
import { rfc3339Nanos, TIME_BUILTINS } from './builtins/time.ts';
import { fail, type HostBuiltin } from './builtins/types.ts';
import { UNITS_BUILTINS } from './builtins/units.ts';
import { YAML_BUILTINS } from './builtins/yaml.ts';
import { GO_BUILTINS, GO_HOST_BUILTINS, goBuiltinsModule } from './go-builtins.ts';
import { RegoNumber, RegoSet } from './rego-value.ts';

export { rfc3339Nanos };

/** The builtins OPA 1.22.3's wasm target imports from the host (v1 and v0 Rego), sorted. */
export const WASM_HOST_BUILTINS: readonly string[] = [
  'base64url.encode_no_pad',
  'cast_array',
  'cast_boolean',
  'cast_null',
  'cast_object',
  'cast_set',
  'cast_string',
  'crypto.hmac.equal',
  'crypto.hmac.md5',
  'crypto.hmac.sha1',
  'crypto.hmac.sha256',
  'crypto.hmac.sha512',
  'crypto.md5',
  'crypto.parse_private_keys',
  'crypto.sha1',
  'crypto.sha256',
  'crypto.x509.parse_and_verify_certificates',
  'crypto.x509.parse_and_verify_certificates_with_options',
  'crypto.x509.parse_certificate_request',
  'crypto.x509.parse_certificates',
  'crypto.x509.parse_keypair',
  'crypto.x509.parse_rsa_private_key',
  'glob.quote_meta',
  'graph.reachable_paths',
  'graphql.is_valid',
  'graphql.parse',
  'graphql.parse_and_verify',
  'graphql.parse_query',
  'graphql.parse_schema',
  'graphql.schema_is_valid',
  'hex.decode',
  'hex.encode',
  'http.send',
  'indexof_n',
  'internal.print',
  'internal.test_case',
  'io.jwt.decode',
  'io.jwt.decode_verify',
  'io.jwt.encode_sign',
  'io.jwt.encode_sign_raw',
  'io.jwt.verify_eddsa',
  'io.jwt.verify_es256',
  'io.jwt.verify_es384',
  'io.jwt.verify_es512',
  'io.jwt.verify_hs256',
  'io.jwt.verify_hs384',
  'io.jwt.verify_hs512',
  'io.jwt.verify_ps256',
  'io.jwt.verify_ps384',
  'io.jwt.verify_ps512',
  'io.jwt.verify_rs256',
  'io.jwt.verify_rs384',
  'io.jwt.verify_rs512',
  'json.marshal_with_options',
  'json.match_schema',
  'json.patch',
  'json.verify_schema',
  'net.cidr_contains_matches',
  'net.cidr_expand',
  'net.cidr_is_valid',
  'net.cidr_merge',
  'net.lookup_ip_addr',
  'numbers.range_step',
  'object.subset',
  'opa.runtime',
  'providers.aws.sign_req',
  'rand.intn',
  'regex.find_n',
  'regex.globs_match',
  'regex.replace',
  'regex.split',
  'regex.template_match',
  'rego.parse_module',
  'semver.compare',
  'semver.is_valid',
  'sprintf',
  'strings.any_prefix_match',
  'strings.any_suffix_match',
  'strings.count',
  'strings.render_template',
  'strings.split_n',
  'time.add_date',
  'time.clock',
  'time.date',
  'time.diff',
  'time.format',
  'time.now_ns',
  'time.parse_duration_ns',
  'time.parse_ns',
  'time.parse_rfc3339_ns',
  'time.weekday',
  'trace',
  'units.parse',
  'units.parse_bytes',
  'uri.is_valid',
  'uri.parse',
  'urlquery.decode',
  'urlquery.decode_object',
  'urlquery.encode',
  'urlquery.encode_object',
  'uuid.parse',
  'uuid.rfc4122',
  'yaml.is_valid',
  'yaml.marshal',
  'yaml.unmarshal',
];

/** Builtins a policy decision point must not run, and why: refused at upload whatever the policy. */
export const REFUSED_BUILTINS: Readonly<Record<string, string>> = {
  'http.send': 'network: a decision must not wait on, or leak data to, another service',
  'net.lookup_ip_addr': 'network: a DNS lookup makes the answer depend on the resolver and the moment',
  'opa.runtime': "reads the host: the process's environment and configuration",
  'providers.aws.sign_req': "signs with the host's clock: a replay could not give the same answer",
  'internal.test_case': 'only for `opa test`',
};

/**
 * The one builtin of the npm SDK's own JavaScript set (sprintf, regex.split, yaml.*, json.is_valid)
 * that Verdict does not replace with OPA's semantics: OPA's `json.is_valid` is Go's `json.Valid` of
 * a string operand, false for any other operand, which `JSON.parse` matches (RFC 8259 both).
 */
const JSON_BUILTINS: Record<string, HostBuiltin> = {
  'json.is_valid': ([x]) => {
    if (typeof x !== 'string') return false;
    try {
      JSON.parse(x);
      return true;
    } catch {
      return false;
    }
  },
};

/** The builtins the npm SDK's loader brings itself (scripts/build-policies.ts, test/policies). */
const SDK_NATIVE_BUILTINS = new Set([
  'json.is_valid',
  'sprintf',
  'regex.split',
  'yaml.is_valid',
  'yaml.marshal',
  'yaml.unmarshal',
]);

/** Deprecated v0 casts (v0 bundles only): the value when it already is that type. */
const CAST_BUILTINS: Record<string, HostBuiltin> = {
  cast_array: ([x]) =>
    Array.isArray(x) ? x : x instanceof RegoSet ? x.members : fail('operand must be an array'),
  cast_set: ([x]) =>
    x instanceof RegoSet ? x : Array.isArray(x) ? new RegoSet(x) : fail('operand must be an array or set'),
  cast_boolean: ([x]) => (typeof x === 'boolean' ? x : fail('operand must be a boolean')),
  cast_null: ([x]) => (x === null ? x : fail('operand must be null')),
  cast_string: ([x]) => (typeof x === 'string' ? x : fail('operand must be a string')),
  cast_object: ([x]) =>
    typeof x === 'object' && x !== null && !Array.isArray(x) && !(x instanceof RegoSet)
      ? x
      : fail('operand must be an object'),
};

/** Every host builtin Verdict provides, by name. */
export const HOST_BUILTINS: Readonly<Record<string, HostBuiltin>> = {
  ...JSON_BUILTINS,
  ...CAST_BUILTINS,
  ...TIME_BUILTINS,
  ...CRYPTO_BUILTINS,
  ...NET_BUILTINS,
  ...SEMVER_BUILTINS,
  ...UNITS_BUILTINS,
  ...STRING_BUILTINS,
  ...MISC_BUILTINS,
  ...YAML_BUILTINS,
  sprintf,
  'json.marshal_with_options': marshalWithOptions,
  ...GO_HOST_BUILTINS,
};

/**
 * How Verdict runs a builtin a module imports: in JavaScript (`provided`), by OPA's own Go
 * implementation compiled to wasm (`provided_go`, src/engine/go-builtins.ts, ADR 0022), or not.
 */
export type BuiltinSupport = 'provided' | 'provided_go' | 'refused' | 'not_provided';

export function builtinSupport(name: string): BuiltinSupport {
  if (Object.hasOwn(REFUSED_BUILTINS, name)) return 'refused';
  if (GO_BUILTINS.includes(name)) return 'provided_go';
  return Object.hasOwn(HOST_BUILTINS, name) ? 'provided' : 'not_provided';
}

/**
 * Why a module cannot run here: one line per builtin it imports that Verdict does not run, or null.
 * A module that imports a builtin of OPA's Go builtins module loads that module here (once per
 * process); when it is not built, those builtins are refused, saying how to build it.
 */
export function unsupportedBuiltins(names: readonly string[]): string | null {
  const reasons: string[] = [];
  const go = names.filter((name) => builtinSupport(name) === 'provided_go');
  const module = go.length > 0 ? goBuiltinsModule() : undefined;
  for (const name of names) {
    const support = builtinSupport(name);
    if (support === 'refused' || support === 'not_provided') {
      reasons.push(`${name} (${REFUSED_BUILTINS[name] ?? 'not provided by Verdict'})`);
    } else if (support === 'provided_go' && typeof module === 'string') {
      reasons.push(`${name} (${module})`);
    }
  }
  return reasons.length === 0 ? null : reasons.join('; ');
}

const encoder = new TextEncoder();

/**
 * The provided builtins in the npm SDK's calling convention (plain JSON in, JSON text out), for
 * code that loads a policy through the SDK (scripts/build-policies.ts, test/policies).
 */
export const VERDICT_BUILTINS: Record<string, (...args: unknown[]) => unknown> = Object.fromEntries(
  Object.entries(HOST_BUILTINS)
    .filter(([name]) => !SDK_NATIVE_BUILTINS.has(name))
    .map(([name, impl]) => [
      name,
      (...args: unknown[]) => {
        let result: unknown;
        try {
          result = impl(args, { inputJson: undefined });
        } catch (err) {
          if (err instanceof Error && err.name === 'BuiltinError') return undefined;
          throw err;
        }
        if (result === undefined) return undefined;
        const text = JSON.stringify(result, (_k, v) =>
          typeof v === 'bigint'
            ? `\u0000${v}\u0000`
            : v instanceof RegoSet
              ? v.members
              : v instanceof RegoNumber
                ? Number(v.text)
                : v,
        ).replace(/"\\u0000(-?\d+)\\u0000"/g, '$1');
        return encoder.encode(text).buffer as ArrayBuffer;
      },
    ]),
);
