import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The package names the CLI runs from: the checkout, or the `@verdict/cli` package (packages/cli). */
const CLI_PACKAGES = new Set(['verdict', '@verdict/cli']);

/**
 * `verdict --version`: the version of the package this file is part of — the checkout's
 * package.json when run from the sources, `@verdict/cli`'s when run from the installed package.
 */
export function cliVersion(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name && CLI_PACKAGES.has(pkg.name) && pkg.version) return pkg.version;
    } catch {
      // No package.json here (or not JSON): look further up.
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}
