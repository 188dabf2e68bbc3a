/**
 * Differential test of every builtin Verdict provides against the real, pinned OPA: one generated
 * policy calls each builtin on every generated argument list (test/differential/builtin-cases.ts);
 * `opa eval` evaluates its Rego in ONE process, and Verdict evaluates the `opa build -t wasm` bundle
 * of the same source, through its own loader and through the engine. Every answer must be equal —
 * the value, or undefined where OPA's builtin errors — exactly: numbers are compared as written
 * (nanoseconds beyond 2^53), sets as OPA sorts them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinSupport, HOST_BUILTINS, WASM_HOST_BUILTINS } from '../../src/engine/builtins.ts';
import { parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { parseValue } from '../../src/engine/rego-value.ts';
import { WasmPolicy } from '../../src/engine/wasm-policy.ts';
import { builtinCases } from './builtin-cases.ts';

/** Builtins that cannot be compared with `opa eval`, and what tests them instead. */
const NOT_COMPARED: Record<string, string> = {
  'time.now_ns': 'the decision time, by design (replay test in test/engine/builtins.test.ts)',
  'rand.intn': 'seeded from the input, by design (replay test)',
  'uuid.rfc4122': 'seeded from the input, by design (replay test)',
  'internal.print': 'a no-op; print() is compiled away unless enabled',
  cast_array: 'v0 Rego only (test/engine/builtins.test.ts)',
  cast_boolean: 'v0 Rego only',
  cast_null: 'v0 Rego only',
  cast_object: 'v0 Rego only',
  cast_set: 'v0 Rego only',
  cast_string: 'v0 Rego only',
  'json.is_valid': "the npm SDK's (compiled natively by OPA 1.22.3)",
};

/** JSON text of a value holding BigInts (exact integers). */
function json(value: unknown): string {
  if (value === undefined) return 'undefined';
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `\u0000${v}\u0000` : v)).replace(
    /"\\u0000(-?\d+)\\u0000"/g,
    '$1',
  );
}

const cases = builtinCases();
const names = Object.keys(cases).sort();
const dir = mkdtempSync(path.join(tmpdir(), 'verdict-builtins-diff-'));

function policy(): string {
  const lines = ['package diff', ''];
  for (const name of names) {
    const arity = Math.max(...cases[name]!.map((c) => c.length));
    const args = Array.from({ length: arity }, (_, i) => `c[${i}]`).join(', ');
    lines.push(
      `r[${JSON.stringify(name)}] := {i: v | some i, c in input[${JSON.stringify(name)}]; v := ${name}(${args})}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

let theirs: Record<string, unknown> = {};
let theirsJson: Record<string, unknown> = {};
let ours: Record<string, unknown> = {};
let oursEngine: Record<string, unknown> = {};
let inputJson = '';

beforeAll(() => {
  writeFileSync(path.join(dir, 'policy.rego'), policy());
  // `now`: the decision time that x509 chain verification reads in Verdict (the wall clock in OPA).
  inputJson = json({ ...cases, now: new Date().toISOString() });
  writeFileSync(path.join(dir, 'input.json'), inputJson);
  execFileSync('opa', ['build', '-t', 'wasm', '-e', 'diff/r', '-o', 'bundle.tar.gz', 'policy.rego'], {
    cwd: dir,
    stdio: 'pipe',
  });
  // ONE opa process evaluates every case.
  const out = execFileSync(
    'opa',
    ['eval', '-d', 'policy.rego', '-i', 'input.json', '-f', 'json', 'data.diff.r'],
    {
      cwd: dir,
      maxBuffer: 256 * 1024 * 1024,
      encoding: 'utf8',
    },
  );
  const pick = (v: unknown) =>
    (v as { result: { expressions: { value: Record<string, unknown> }[] }[] }).result[0]!.expressions[0]!
      .value;
  theirs = pick(parseValue(out, { sets: false, exactIntegers: true }));
  theirsJson = pick(JSON.parse(out));
  const bundle = parseBundle(readFileSync(path.join(dir, 'bundle.tar.gz')));
  const wasm = new WasmPolicy(
    new WebAssembly.Module(bundle.wasm),
    { initial: 5, maximum: 4096 },
    HOST_BUILTINS,
  );
  const text = wasm.evaluateText(wasm.entrypoints['diff/r']!, inputJson);
  ours = (parseValue(text, { sets: false, exactIntegers: true }) as { result: Record<string, unknown> }[])[0]!
    .result;
  const evaluation = PolicyEngine.fromBundle(bundle).evaluateJson('diff/r', inputJson);
  expect(evaluation.error).toBeNull();
  oursEngine = evaluation.value as Record<string, unknown>;
}, 120_000);

describe('differential: provided builtins vs opa eval (OPA 1.22.3)', () => {
  it('covers every provided builtin the wasm target imports, or says why not', () => {
    const provided = WASM_HOST_BUILTINS.filter((name) => builtinSupport(name).startsWith('provided'));
    const missing = provided.filter(
      (name) => !Object.hasOwn(cases, name) && !Object.hasOwn(NOT_COMPARED, name),
    );
    expect(missing).toEqual([]);
  });

  it.each(names)('%s answers as OPA does on every generated case', (name) => {
    const mine = (ours[name] ?? {}) as Record<string, unknown>;
    const opa = (theirs[name] ?? {}) as Record<string, unknown>;
    const mismatches: unknown[] = [];
    cases[name]!.forEach((args, i) => {
      const a = mine[String(i)];
      const b = opa[String(i)];
      if (!isDeepStrictEqual(a, b)) mismatches.push({ args: json(args), verdict: json(a), opa: json(b) });
    });
    expect(mismatches.slice(0, 4)).toEqual([]);
    // The engine's own path (JSON numbers, sorted sets) gives what OPA's JSON gives.
    expect(oursEngine[name] ?? {}).toEqual(theirsJson[name] ?? {});
    // A family whose every case is undefined would prove nothing.
    if (cases[name]!.length > 3) expect(Object.keys(opa).length).toBeGreaterThan(0);
  });
});
