import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

/** The committed default bundle (built from policies/ by `npm run policies:build`). */
export const DEFAULT_BUNDLE = path.join(root, 'policies/bundle/bundle.tar.gz');

/**
 * Compiles a fixture policy directory under test/fixtures/policies/ with the real OPA CLI into a
 * wasm bundle, once per content hash, and returns the bundle's path. Fails loudly without `opa`.
 */
export function buildFixtureBundle(name: string, entrypoints: string[]): string {
  const dir = path.join(root, 'test/fixtures/policies', name);
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(path.join(dir, file)));
  hash.update(entrypoints.join(','));
  const digest = hash.digest('hex').slice(0, 16);
  const outDir = path.join(tmpdir(), 'verdict-fixture-bundles');
  const out = path.join(outDir, `${name}-${digest}.tar.gz`);
  if (existsSync(out)) return out;
  mkdirSync(outDir, { recursive: true });
  // Built aside and renamed into place: test files running in parallel never read half a file.
  const staging = `${out}.${process.pid}.tmp`;
  const args = ['build', '-t', 'wasm', '--revision', `fixture-${name}-${digest}`, '-o', staging];
  for (const entrypoint of entrypoints) args.push('-e', entrypoint);
  args.push(dir);
  try {
    execFileSync('opa', args, { stdio: 'pipe' });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`opa build failed for fixture ${name} (is the OPA CLI on PATH? use npm test): ${stderr}`);
  }
  renameSync(staging, out);
  return out;
}

/** The contract fixture's decision entrypoints: verdict/decision and ones that break the contract. */
export const CONTRACT_ENTRYPOINTS = [
  'verdict/decision',
  'verdict/malformed',
  'verdict/contradictory',
  'verdict/never',
  'verdict/conflict',
  'verdict/echo',
] as const;

/** The contract fixture bundle: CONTRACT_ENTRYPOINTS plus the decision-log mask. */
export function contractFixtureBundle(): string {
  return buildFixtureBundle('contract', [...CONTRACT_ENTRYPOINTS, 'system/log/mask']);
}
