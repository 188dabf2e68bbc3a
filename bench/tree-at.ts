/**
 * Another commit's tree for an A/B run (bench/request-ab.ts, bench/request-inject.ts): the files a
 * server and the engine need, taken with `git archive` into `.bench-old/<sha>/` once per commit.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const PATHS = ['src', 'migrations', 'policies', 'packages/sdk/src', 'bench', 'test/support', 'package.json'];

export function treeAt(ref: string): { dir: string; sha: string } {
  const sha = execFileSync('git', ['rev-parse', '--short', `${ref}^{commit}`], {
    cwd: ROOT,
    encoding: 'utf8',
  }).trim();
  const dir = path.join(ROOT, '.bench-old', sha);
  if (!existsSync(path.join(dir, 'src', 'main.ts'))) {
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', sha, ...PATHS], { cwd: ROOT, maxBuffer: 1 << 28 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  return { dir, sha };
}
