import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseBundle } from '../src/engine/bundle.ts';

const root = path.resolve(import.meta.dirname, '..');
const policiesDir = path.join(root, 'policies');

/** Policy sources as scripts/build-policies.ts selects them: *.rego except tests, outside bundle/. */
function regoSources(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((entry) => {
    const relPath = path.posix.join(rel, entry.name);
    if (entry.isDirectory()) return relPath === 'bundle' ? [] : regoSources(dir, relPath);
    return entry.name.endsWith('.rego') && !entry.name.endsWith('_test.rego') ? [relPath] : [];
  });
}

/**
 * The committed bundle's policy as `opa run --server` can load it, written to a directory bundle.
 *
 * The pinned OPA CLI has no wasm runtime ("engine not found" on a bundle whose manifest lists wasm
 * modules), and a `-t wasm` bundle keeps only the Rego that was *not* compiled to wasm — the
 * entrypoint rules live only in policy.wasm. So OPA gets the Rego sources the wasm was compiled
 * from (policies/, same selection as scripts/build-policies.ts), with the committed bundle's own
 * data.json, roots and revision. OPA's Go evaluator on the sources is how `opa run --server` is
 * normally used, which is the incumbent measured here. The runner checks before measuring that
 * both systems give identical results on the benchmark inputs, so a stale bundle cannot slip by.
 */
export function opaServerBundleDir(bundlePath: string): string {
  const bundle = parseBundle(readFileSync(bundlePath));
  const sources = regoSources(policiesDir).sort();
  const hash = createHash('sha256').update(bundle.digest);
  for (const file of sources) hash.update(file).update(readFileSync(path.join(policiesDir, file)));
  const dir = path.join(tmpdir(), `verdict-bench-opa-bundle-${hash.digest('hex').slice(0, 16)}`);
  // NOTE: the directory is named by its content and appears whole or not at all (written aside,
  // then renamed), so runs and test files sharing it never see it half written or deleted.
  if (existsSync(path.join(dir, '.manifest'))) return dir;
  const staging = mkdtempSync(`${dir}.staging-`);
  for (const file of sources) {
    mkdirSync(path.dirname(path.join(staging, 'policies', file)), { recursive: true });
    copyFileSync(path.join(policiesDir, file), path.join(staging, 'policies', file));
  }
  writeFileSync(path.join(staging, 'data.json'), JSON.stringify(bundle.data));
  const manifest: Record<string, unknown> = { revision: bundle.revision };
  if (bundle.manifest.roots) manifest.roots = bundle.manifest.roots;
  writeFileSync(path.join(staging, '.manifest'), JSON.stringify(manifest));
  try {
    renameSync(staging, dir);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    // Another process renamed the same content into place first.
    if (!existsSync(path.join(dir, '.manifest'))) throw err;
  }
  return dir;
}
