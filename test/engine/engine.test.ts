import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { rfc3339Nanos, VERDICT_BUILTINS } from '../../src/engine/builtins.ts';
import { BundleError, parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { contractFixtureBundle, DEFAULT_BUNDLE } from '../support/bundle.ts';
import { generateEnvelopes } from '../support/envelopes.ts';

const bytes = () => readFileSync(contractFixtureBundle());

describe('parseBundle', () => {
  it('reads the manifest, the wasm module and a digest of the bytes', () => {
    const bundle = parseBundle(bytes());
    expect(bundle.revision).toMatch(/^fixture-contract-/);
    expect(bundle.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(bundle.wasm.byteLength).toBeGreaterThan(1000);
  });

  it.each([
    ['not gzip, not tar', Buffer.from('hello world')],
    ['gzip of garbage', gzipSync(Buffer.from('garbage'.repeat(100)))],
    ['empty', Buffer.alloc(0)],
  ])('refuses %s with a BundleError', (_name, input) => {
    expect(() => parseBundle(input)).toThrow(BundleError);
  });
});

describe('PolicyEngine', () => {
  const engine = PolicyEngine.fromBundle(parseBundle(bytes()));

  it('lists the entrypoints compiled into the module', () => {
    expect(engine.entrypoints).toContain('verdict/decision');
    expect(engine.hasEntrypoint('verdict/nope')).toBe(false);
  });

  it('evaluates to the entrypoint value', () => {
    const evaluation = engine.evaluate('verdict/decision', { action: { name: 'read' } });
    expect(evaluation.error).toBeNull();
    expect(evaluation.defined).toBe(true);
    expect((evaluation.value as { allow: boolean }).allow).toBe(true);
  });

  it.each([false, 0, '', null])('passes the falsy input %j to the policy instead of dropping it', (input) => {
    const evaluation = engine.evaluate('verdict/echo', input);
    expect(evaluation.defined).toBe(true);
    expect(evaluation.value).toBe(input);
  });

  it('grows linear memory for a large multi-byte input and hands it over byte-exact', () => {
    const before = engine.memoryBytes;
    // 3- and 4-byte UTF-8 sequences, ~2 MiB of input: far beyond the initial 320 KiB of memory.
    const input = { text: '€𝄞é'.repeat(200_000), n: [1, 2.5, -3] };
    const evaluation = engine.evaluate('verdict/echo', input);
    expect(evaluation.error).toBeNull();
    expect(evaluation.value).toEqual(input);
    expect(engine.memoryBytes).toBeGreaterThan(before);
    expect(engine.evaluate('verdict/echo', { small: 'ü' }).value).toEqual({ small: 'ü' });
  });

  it('an evaluation without input leaves the module intact for the next ones', () => {
    const policy = PolicyEngine.fromBundle(parseBundle(readFileSync(DEFAULT_BUNDLE)));
    // White box: the module's static memory and the loaded data sit below the SDK's dataHeapPtr
    // (the shadow stack lives below 64 KiB and may change). An input-less call that put its heap at
    // address 0 overwrote ~4.5 KB of it; nothing there may change.
    const sdk = (policy as unknown as { policy: { mem: WebAssembly.Memory; dataHeapPtr: number } }).policy;
    const stackTop = 64 * 1024;
    const region = () => Buffer.from(sdk.mem.buffer.slice(0, sdk.dataHeapPtr)).subarray(0, stackTop - 4096);
    const inputs = generateEnvelopes(40, 7).map((e) => JSON.stringify({ ...e, now: '2026-11-26T12:00:00Z' }));
    const answers = () =>
      inputs.map((json) => {
        const { defined, value, error } = policy.evaluateJson('verdict/decision', json);
        return JSON.stringify({ defined, value, error });
      });
    const before = answers();
    const memory = region();
    for (let i = 0; i < 5; i++) {
      expect(policy.evaluateJson('verdict/decision', undefined).error).toBeNull();
    }
    expect(region().equals(memory)).toBe(true);
    expect(answers()).toEqual(before);
    expect(before.some((a) => a.includes('"allow":true'))).toBe(true);
  });

  it('evaluates a module of ABI 1.0/1.1 through the SDK, with the same answers as the direct call', () => {
    const inputs = [
      ...generateEnvelopes(40, 11).map((e) => JSON.stringify({ ...e, now: '2026-11-26T12:00:00Z' })),
      undefined,
    ];
    const answers = (policy: PolicyEngine, entrypoint: string, jsons: (string | undefined)[]) =>
      jsons.map((json) => {
        const { defined, value, error } = policy.evaluateJson(entrypoint, json);
        return { defined, value, error };
      });
    const direct = PolicyEngine.fromBundle(parseBundle(readFileSync(DEFAULT_BUNDLE)));
    const older = PolicyEngine.fromBundle(parseBundle(readFileSync(DEFAULT_BUNDLE)));
    // White box: the pinned OPA only builds ABI 1.2+, so the older ABI is simulated by the version
    // the engine reads; the SDK's multi-call evaluation works on every ABI version.
    const sdk = (older as unknown as { policy: { minorVersion: number; evaluate: unknown } }).policy;
    sdk.minorVersion = 1;
    let sdkCalls = 0;
    const evaluate = sdk.evaluate as (...args: unknown[]) => unknown;
    sdk.evaluate = (...args: unknown[]) => {
      sdkCalls += 1;
      return evaluate.apply(sdk, args);
    };
    const expected = answers(direct, 'verdict/decision', inputs);
    expect(answers(older, 'verdict/decision', inputs)).toEqual(expected);
    expect(sdkCalls).toBe(inputs.length);
    expect(expected.some((a) => (a.value as { allow?: boolean })?.allow === true)).toBe(true);
    expect(expected.some((a) => (a.value as { allow?: boolean })?.allow === false)).toBe(true);
  });

  it('reports an undefined result as not defined', () => {
    const evaluation = engine.evaluate('verdict/never', {});
    expect(evaluation).toMatchObject({ defined: false, value: undefined, error: null });
  });

  it('turns an evaluation abort into an error value and keeps working', () => {
    const evaluation = engine.evaluate('verdict/conflict', {});
    expect(evaluation.error?.code).toBe('evaluation_error');
    expect(engine.evaluate('verdict/decision', { action: { name: 'read' } }).defined).toBe(true);
  });

  it('reports an unknown entrypoint without throwing', () => {
    expect(engine.evaluate('verdict/nope', {}).error?.code).toBe('unknown_entrypoint');
  });
});

// Expected values were checked against `opa eval 'time.parse_rfc3339_ns(…)'` with the pinned OPA.
describe('time.parse_rfc3339_ns (Go time.Parse RFC 3339 semantics)', () => {
  it.each([
    ['2026-11-26T12:00:00Z', 1795694400000000000n],
    ['2026-11-26T13:00:00.123+01:00', 1795694400123000000n],
    ['2026-11-26T12:00:00,5Z', 1795694400500000000n],
    ['2026-11-26T12:00:00.1234567891Z', 1795694400123456789n],
    ['1970-01-01T00:00:00Z', 0n],
    ['1969-12-31T23:59:59Z', -1_000_000_000n],
    ['2024-02-29T00:00:00Z', 1709164800000000000n],
    ['2026-11-26T2:00:00Z', 1795658400000000000n],
    ['2026-11-26T12:00:00+24:59', 1795604460000000000n],
    ['2026-11-26T12:00:00+23:60', 1795608000000000000n],
    ['2026-11-26T12:00:00-00:00', 1795694400000000000n],
    ['1677-09-21T00:12:44Z', -9223372036000000000n],
    ['2262-04-11T23:47:16Z', 9223372036000000000n],
  ])('parses %s', (value, expected) => {
    expect(rfc3339Nanos(value)).toBe(expected);
  });

  it.each([
    '2026-11-26',
    '2026-11-26 12:00:00Z',
    '2026-11-26t12:00:00Z',
    '2026-11-26T12:00:00z',
    '2026-13-01T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '2026-11-26T24:00:00Z',
    '2026-11-26T12:60:00Z',
    '2026-11-26T12:00:60Z',
    '2026-11-26T12:00:00+25:00',
    '2026-11-26T12:00:00+00:99',
    '2026-11-26T12:00:00.Z',
    '2026-11-26T12:00:00+0100',
    '1677-09-21T00:12:43Z',
    '2262-04-11T23:47:17Z',
    '0000-01-01T00:00:00Z',
    '2026-11-26T12:00:00',
    '',
    42,
    null,
  ])('refuses %j', (value) => {
    expect(rfc3339Nanos(value)).toBeUndefined();
  });

  it('hands the module an exact integer (no float rounding)', () => {
    const out = VERDICT_BUILTINS['time.parse_rfc3339_ns']!('2026-11-26T12:00:00.123456789Z') as ArrayBuffer;
    expect(Buffer.from(out).toString()).toBe('1795694400123456789');
  });
});
