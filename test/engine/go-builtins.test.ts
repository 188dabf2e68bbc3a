/**
 * OPA's Go builtins module (src/engine/go-builtins.ts, ADR 0022) beyond the differential test:
 * the one thing it reads besides its operands — the time, when x509 chain verification has no
 * `CurrentTime` — is the decision's `now`, so a replay gives the same answer whatever the wall
 * clock; it reads no file; it is loaded only for a bundle that needs it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BuiltinError } from '../../src/engine/builtins/types.ts';
import { unsupportedBuiltins } from '../../src/engine/builtins.ts';
import { parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import {
  GO_BUILTINS,
  GO_HOST_BUILTINS,
  goBuiltinsModule,
  useGoBuiltinsModule,
} from '../../src/engine/go-builtins.ts';
import { goBuiltinCases, type Pki, pki } from '../differential/go-builtin-cases.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'verdict-go-builtins-'));
let keys: Pki;
let engine: PolicyEngine;

function build(rego: string, entrypoints: string[]): PolicyEngine {
  writeFileSync(path.join(dir, 'p.rego'), rego);
  const e = entrypoints.flatMap((name) => ['-e', name]);
  execFileSync('opa', ['build', '-t', 'wasm', ...e, '-o', 'b.tar.gz', 'p.rego'], {
    cwd: dir,
    stdio: 'pipe',
  });
  return PolicyEngine.fromBundle(parseBundle(readFileSync(path.join(dir, 'b.tar.gz'))));
}

beforeAll(() => {
  keys = pki();
  engine = build(
    `package t
verified := crypto.x509.parse_and_verify_certificates(input.chain)[0]
with_time := crypto.x509.parse_and_verify_certificates_with_options(input.chain, {"CurrentTime": input.at})[0]
file_ref := json.match_schema({}, {"$ref": input.ref})
`,
    ['t/verified', 't/with_time', 't/file_ref'],
  );
}, 60_000);

describe("OPA's Go builtins module", () => {
  it('verifies a chain at the decision time (input.now), not the wall clock: a replay answers the same', () => {
    const chain = keys.caCert + keys.leafCert;
    const at = (now: string) => engine.evaluate('t/verified', { chain, now });
    const today = new Date().toISOString();
    const later = new Date(Date.now() + 2 * 365 * 86_400_000).toISOString(); // the leaf lives 1 year
    const before = new Date(Date.now() - 86_400_000).toISOString(); // issued today
    expect(at(today).value).toBe(true);
    expect(at(later).value).toBe(false);
    expect(at(before).value).toBe(false);
    // Replays: the same input gives the same answer, whichever order and however often.
    expect([at(later).value, at(today).value, at(later).value]).toEqual([false, true, false]);
  });

  it('makes verification without a decision time an evaluation error saying so, never the wall clock', () => {
    const result = engine.evaluate('t/verified', { chain: keys.caCert + keys.leafCert });
    expect(result.error?.code).toBe('evaluation_error');
    expect(result.error?.message).toContain('crypto.x509.parse_and_verify_certificates');
    expect(result.error?.message).toContain('`now`');
    // A CurrentTime option needs no decision time.
    const ns = BigInt(Date.now()) * 1_000_000n;
    const given = engine.evaluateJson(
      't/with_time',
      `{"chain": ${JSON.stringify(keys.caCert + keys.leafCert)}, "at": ${ns}}`,
    );
    expect(given.error).toBeNull();
    expect(given.value).toBe(true);
  });

  it('needs no decision time for any other call (the Go runtime reads the clock for itself)', () => {
    const readsTime = new Set([
      'crypto.x509.parse_and_verify_certificates',
      'crypto.x509.parse_and_verify_certificates_with_options',
    ]);
    const failures: string[] = [];
    let answered = 0;
    for (const [name, cases] of Object.entries(goBuiltinCases())) {
      if (readsTime.has(name)) continue;
      for (const args of cases) {
        try {
          GO_HOST_BUILTINS[name]!(args, { inputJson: '{}' });
          answered += 1;
        } catch (err) {
          if (!(err instanceof BuiltinError)) failures.push(`${name}: ${(err as Error).message}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(300);
  }, 120_000);

  it('hands Go the operands as the module holds them: a key that is not a string stays one, as in opa eval', () => {
    const rego = `package k
schema := json.match_schema({1: input.x}, {"type": "object", "properties": {"1": {"type": "integer"}}})
template := strings.render_template("{{.m}}", {"m": {1: input.x}})
`;
    const keyed = build(rego, ['k/schema', 'k/template']);
    writeFileSync(path.join(dir, 'k.json'), '{"x": "a"}');
    const opa = (rule: string) =>
      JSON.parse(
        execFileSync('opa', ['eval', '-d', 'p.rego', '-i', 'k.json', '-f', 'json', `data.k.${rule}`], {
          cwd: dir,
          encoding: 'utf8',
        }),
      ).result?.[0]?.expressions[0].value;
    expect(keyed.evaluate('k/schema', { x: 'a' }).value).toEqual(opa('schema'));
    // OPA refuses a map whose key is not a string (undefined); a key made a string would print map[1:a].
    expect(opa('template')).toBeUndefined();
    expect(keyed.evaluate('k/template', { x: 'a' })).toMatchObject({ defined: false, error: null });
    expect(
      GO_HOST_BUILTINS['strings.render_template']!(['{{.m}}', { m: { 1: 'a' } }], { inputJson: '{}' }),
    ).toBe('map[1:a]');
  });

  it('reads no file: a JSON schema $ref to a local file fails as a builtin error (undefined)', () => {
    const file = path.join(dir, 'schema.json');
    writeFileSync(file, '{"type": "object"}');
    const result = engine.evaluate('t/file_ref', { ref: `file://${file}` });
    expect(result.error).toBeNull();
    expect(result.defined).toBe(false);
  });

  it('is refused, naming each builtin, when the module named by the configuration is missing', () => {
    useGoBuiltinsModule(path.join(dir, 'missing.wasm'));
    try {
      const reason = unsupportedBuiltins(['uri.parse', 'time.now_ns', 'regex.globs_match']);
      expect(reason).toMatch(/^uri\.parse \(needs OPA's Go builtins module, which is not built/);
      expect(reason).toContain('; regex.globs_match (needs');
      expect(reason).not.toContain('time.now_ns');
      // A bundle that needs none of them never looks for the module.
      expect(unsupportedBuiltins(['time.now_ns'])).toBeNull();
    } finally {
      useGoBuiltinsModule(undefined);
    }
    expect(typeof goBuiltinsModule()).toBe('object');
    expect(GO_BUILTINS).toHaveLength(20);
  });
});
