import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BundleError, parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

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
