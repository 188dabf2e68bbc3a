// prepack of @verdict/cli: copies its runtime dependencies, and theirs, from the checkout's
// node_modules into packages/cli/node_modules, in the same layout, so that `npm pack` bundles them
// (bundleDependencies) and the tarball installs with no registry (ADR 0020). The versions are the
// checkout's: test/cli/package.test.ts checks that package.json pins the same ones.
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const here = path.resolve(import.meta.dirname, '..');
const root = path.resolve(here, '../..');
const manifest = (dir) => JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));

/** Where Node resolves `name` from `dir`: the nearest node_modules/name up to the checkout. */
function locate(name, dir) {
  for (let at = dir; ; at = path.dirname(at)) {
    const candidate = path.join(at, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (at === root) throw new Error(`${name} is not installed in ${root} (npm ci there first)`);
  }
}

const copied = new Set();
function copy(dir) {
  if (copied.has(dir)) return;
  copied.add(dir);
  const nested = path.join(dir, 'node_modules');
  cpSync(dir, path.join(here, path.relative(root, dir)), {
    recursive: true,
    filter: (source) => source !== nested,
  });
  for (const name of Object.keys(manifest(dir).dependencies ?? {})) copy(locate(name, dir));
}

rmSync(path.join(here, 'node_modules'), { recursive: true, force: true });
for (const name of Object.keys(manifest(here).dependencies ?? {})) copy(locate(name, root));
process.stderr.write(`bundled ${copied.size} packages into @verdict/cli\n`);
