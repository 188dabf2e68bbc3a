/**
 * The engine's side of OPA's host builtins: a bundle importing a builtin Verdict does not run is
 * refused when the engine is built for it (which upload, activation and boot all do), naming it;
 * a provided builtin's failure is an evaluation error with the engine's real message; the
 * builtins OPA answers from the moment or from randomness answer from the recorded input, so a
 * replay gives the same answer; and sets come out sorted as OPA sorts them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REFUSED_BUILTINS } from '../../src/engine/builtins.ts';
import { BundleError, parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'verdict-engine-builtins-'));
let built = 0;

/** `opa build -t wasm` of one Rego module; the bundle's bytes. */
function build(rego: string, entrypoints: string[], v0 = false): Buffer {
  built += 1;
  const file = `p${built}.rego`;
  writeFileSync(path.join(dir, file), rego);
  const out = `b${built}.tar.gz`;
  const args = ['build', ...(v0 ? ['--v0-compatible'] : []), '-t', 'wasm', '-o', out];
  for (const e of entrypoints) args.push('-e', e);
  execFileSync('opa', [...args, file], { cwd: dir, stdio: 'pipe' });
  return readFileSync(path.join(dir, out));
}

function engineOf(bytes: Buffer): PolicyEngine {
  return PolicyEngine.fromBundle(parseBundle(bytes));
}

describe('a bundle the engine cannot run', () => {
  it('is refused with bundle_unsupported_builtin, naming every builtin it needs and why', () => {
    const bytes = build(
      `package t
r1 := http.send({"method": "GET", "url": input.u})
r2 := net.lookup_ip_addr(input.h)
r3 := opa.runtime()
r4 := providers.aws.sign_req(input.a, input.b, input.c)
r5 := graphql.is_valid(input.q, input.s)
ok := true
`,
      ['t/ok', 't/r1', 't/r2', 't/r3', 't/r4', 't/r5'],
    );
    let error: unknown;
    try {
      engineOf(bytes);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BundleError);
    expect((error as BundleError).code).toBe('bundle_unsupported_builtin');
    const message = (error as BundleError).message;
    for (const name of ['http.send', 'net.lookup_ip_addr', 'opa.runtime', 'providers.aws.sign_req']) {
      expect(message).toContain(`${name} (${REFUSED_BUILTINS[name]})`);
    }
    // Provided by OPA's Go builtins module (built by scripts/tools.sh; its absence: go-builtins.test.ts).
    expect(message).not.toContain('graphql.is_valid');
  });

  it('is accepted when every builtin it imports is provided', () => {
    const bytes = build(
      'package t\nv := [semver.compare(input.a, input.b), crypto.sha256(input.a), time.weekday(0)]\n',
      ['t/v'],
    );
    const engine = engineOf(bytes);
    expect(engine.hostBuiltins).toEqual(['crypto.sha256', 'semver.compare', 'time.weekday']);
    expect(engine.evaluate('t/v', { a: '1.2.3', b: '1.10.0' }).value).toEqual([
      -1,
      createHash('sha256').update('1.2.3').digest('hex'),
      'Thursday',
    ]);
  });
});

describe('replayable builtins', () => {
  const bytes = build(
    `package t
v := {"now": time.now_ns(), "n": rand.intn("dice", 6), "u": uuid.rfc4122("req"), "m": rand.intn("dice", 1000000)}
`,
    ['t/v'],
  );

  it('answer time.now_ns with the input now, and rand/uuid from the input: a replay is the same', () => {
    const input = { now: '2026-12-07T01:00:00.123456789Z', caller: 'a', request: { x: 1 } };
    const first = engineOf(bytes).evaluate('t/v', input);
    expect(first.error).toBeNull();
    const replay = engineOf(bytes).evaluate('t/v', input);
    expect(replay.value).toEqual(first.value);
    const value = first.value as { now: number; n: number; u: string; m: number };
    expect(value.now).toBe(Number(BigInt(Date.parse('2026-12-07T01:00:00Z')) * 1_000_000n + 123_456_789n));
    expect(value.n).toBeGreaterThanOrEqual(0);
    expect(value.n).toBeLessThan(6);
    expect(value.u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Another input (another decision) draws other numbers.
    const other = engineOf(bytes).evaluate('t/v', { ...input, request: { x: 2 } }).value as typeof value;
    expect([other.u, other.m]).not.toEqual([value.u, value.m]);
  });

  it('make time.now_ns without a decision time an evaluation error with the real message', () => {
    const evaluation = engineOf(bytes).evaluate('t/v', { request: {} });
    expect(evaluation.error?.code).toBe('evaluation_error');
    expect(evaluation.error?.message).toContain('time.now_ns: the input has no RFC 3339 `now`');
    expect(evaluation.error?.message).not.toContain('[object Object]');
  });
});

describe('sets', () => {
  it('come out sorted as OPA sorts them (graph.reachable, comprehensions, nested), as opa eval answers', () => {
    const rego = `package t
v := {
  "reachable": graph.reachable(input.g, ["a"]),
  "set": {x | some x in input.xs},
  "nested": {"k": {[1], "b", 2, {"z": 1}, null, true}},
  "merged": net.cidr_merge(["10.0.1.0/24", "10.0.0.0/24", "192.168.0.0/16"]),
}
`;
    const bytes = build(rego, ['t/v']);
    const input = {
      xs: ['b', 'a', 10, 3, 'c', [1], { a: 1 }, null, true, 'aa', 'é', 'z'],
      g: { a: ['z', 'c', 'b'], c: ['y'], b: [], z: ['m'], y: [], m: [] },
    };
    writeFileSync(path.join(dir, 'sets.rego'), rego);
    writeFileSync(path.join(dir, 'sets.json'), JSON.stringify(input));
    const opa = JSON.parse(
      execFileSync('opa', ['eval', '-d', 'sets.rego', '-i', 'sets.json', '-f', 'json', 'data.t.v'], {
        cwd: dir,
        encoding: 'utf8',
      }),
    ).result[0].expressions[0].value;
    const ours = engineOf(bytes).evaluate('t/v', input).value as Record<string, unknown>;
    expect(ours).toEqual(opa);
    expect(JSON.stringify(ours.reachable)).toBe(JSON.stringify(opa.reachable));
    expect(JSON.stringify(ours.set)).toBe(JSON.stringify(opa.set));
    expect(JSON.stringify(ours.nested)).toBe(JSON.stringify(opa.nested));
  });
});

describe('deprecated v0 builtins', () => {
  it('cast_* answer as OPA does in a v0 bundle', () => {
    const rego = `package t
v = [cast_array(input.s), cast_set(input.a), cast_string("x"), cast_boolean(true), cast_null(null), cast_object({"a": 1})] { true }
`;
    const bytes = build(rego, ['t/v'], true);
    writeFileSync(path.join(dir, 'v0.rego'), rego);
    writeFileSync(path.join(dir, 'v0.json'), JSON.stringify({ s: ['b', 'a'], a: ['z', 'y', 'z'] }));
    const opa = JSON.parse(
      execFileSync(
        'opa',
        ['eval', '--v0-compatible', '-d', 'v0.rego', '-i', 'v0.json', '-f', 'json', 'data.t.v'],
        { cwd: dir, encoding: 'utf8' },
      ),
    ).result[0].expressions[0].value;
    expect(engineOf(bytes).evaluate('t/v', { s: ['b', 'a'], a: ['z', 'y', 'z'] }).value).toEqual(opa);
  });
});
