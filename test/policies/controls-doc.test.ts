import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');

describe('policies/CONTROLS.md', () => {
  it('states the number of Rego tests that `opa test policies/` runs, and they all pass', () => {
    const doc = readFileSync(path.join(root, 'policies/CONTROLS.md'), 'utf8');
    const stated = /opa test policies\/ -v\s+\((\d+) tests;/.exec(doc)?.[1];
    expect(stated, 'CONTROLS.md names the test count next to npm run policies:test').toBeDefined();
    const results = JSON.parse(
      execFileSync('opa', ['test', 'policies/', '--format', 'json'], {
        cwd: root,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      }),
    ) as { fail?: boolean; error?: unknown; skip?: boolean }[];
    expect(results.filter((r) => r.fail || r.error || r.skip)).toEqual([]);
    expect(results.length).toBe(Number(stated));
  });
});
