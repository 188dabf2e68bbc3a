/**
 * Data files at any depth (`data.json`, `data.yaml`) are merged at their directory's path as OPA
 * does, reach the policy, and conflicting files refuse the bundle; a bundle without policy.wasm is
 * refused with `bundle_not_wasm` and a message that says to build with `-t wasm`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleError, MAX_UNPACKED_BYTES, parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { filesIn, opaBuild, pack, scratchDir, unpack, writePolicy } from '../support/signed-bundle.ts';

let dir: string;
let base: string;

beforeAll(() => {
  dir = scratchDir('bundle-data');
  const src = writePolicy(dir, {
    rego: `package verdict
import rego.v1
decision := {"allow": true, "violations": [], "obligations": [], "exceptions": [], "seen": data.teams}
`,
  });
  base = unpack(opaBuild(src, path.join(dir, 'base.tar.gz'), { revision: 'data-test' }), dir);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const out = path.join(dir, `tree-${Math.random().toString(36).slice(2)}`);
  mkdirSync(out, { recursive: true });
  for (const name of ['.manifest', 'policy.wasm']) copyFileSync(path.join(base, name), path.join(out, name));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(out, name)), { recursive: true });
    writeFileSync(path.join(out, name), content);
  }
  return out;
}

describe('bundle data files', () => {
  it('merges data.json and data.yaml at every depth into the data the policy reads', () => {
    const out = tree({
      'data.json': '{"teams": {"core": {"size": 3}}}',
      'teams/ml/data.json': '{"size": 5}',
      'teams/core/data.yaml': 'lead: ana\n',
      'teams/ops/oncall/data.yaml': '- bo\n- cy\n',
    });
    const bundle = parseBundle(pack(out, filesIn(out)));
    expect(bundle.data).toEqual({
      teams: { core: { size: 3, lead: 'ana' }, ml: { size: 5 }, ops: { oncall: ['bo', 'cy'] } },
    });
    const evaluation = PolicyEngine.fromBundle(bundle).evaluate('verdict/decision', {});
    expect((evaluation.value as { seen: unknown }).seen).toEqual(bundle.data.teams);
  });

  it('refuses two files that set the same value', () => {
    const out = tree({ 'data.json': '{"teams": {"ml": 1}}', 'teams/ml/data.json': '{"size": 5}' });
    expect(() => parseBundle(pack(out, filesIn(out)))).toThrow(/conflicts with data already at \/teams\/ml/);
  });

  it('refuses a data file that does not parse, naming it', () => {
    const out = tree({ 'teams/data.yaml': 'a: [unclosed\n' });
    expect(() => parseBundle(pack(out, filesIn(out)))).toThrow(/teams\/data.yaml is not valid YAML/);
  });

  it('refuses a bundle without policy.wasm and says to build it with -t wasm', () => {
    const src = writePolicy(dir);
    const rego = path.join(dir, 'rego.tar.gz');
    execFileSync('opa', ['build', '-b', '--revision', 'rego-only', '-o', rego, src], { stdio: 'pipe' });
    try {
      parseBundle(readFileSync(rego));
      throw new Error('expected a refusal');
    } catch (err) {
      expect(err).toBeInstanceOf(BundleError);
      expect((err as BundleError).code).toBe('bundle_not_wasm');
      expect((err as BundleError).message).toMatch(/opa build -t wasm/);
    }
  });

  it('refuses a small gzip that unpacks to more than the limit, without unpacking it all', () => {
    const bomb = gzipSync(Buffer.alloc(MAX_UNPACKED_BYTES + 1024));
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    expect(() => parseBundle(bomb)).toThrow(/unpacks to more than/);
  });
});
