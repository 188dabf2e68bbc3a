import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const pinned = readFileSync(path.join(root, '.node-version'), 'utf8').trim();
const scratch = mkdtempSync(path.join(tmpdir(), 'verdict-tools-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A directory holding only `node` (a fake printing `version`, or none) and what tools.sh runs before its check. */
function fakeBin(version: string | null): string {
  const bin = path.join(mkdtempSync(path.join(scratch, 'case-')), 'bin');
  mkdirSync(bin);
  const script = (name: string, body: string) => {
    writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(path.join(bin, name), 0o755);
  };
  // NOTE: wrappers, not the system's bin directory on PATH: the machine's own node lives there.
  for (const tool of ['tr', 'mkdir', 'dirname']) {
    const real = execFileSync('/bin/sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    script(tool, `exec ${real} "$@"`);
  }
  if (version !== null) script('node', `echo ${version}`);
  return bin;
}

/**
 * Sources scripts/tools.sh in dry-run mode with only `bin` on PATH and returns what it said: nothing
 * when it keeps the system Node, a "would install" line when it would bring the pinned one.
 */
function bootstrap(version: string | null): string {
  const bin = fakeBin(version);
  return execFileSync('/bin/bash', ['-c', `source "${root}/scripts/tools.sh" 2>&1; echo "rc=$?"`], {
    env: {
      PATH: bin,
      VERDICT_TOOLS: path.join(bin, '..', 'tools'),
      VERDICT_TOOLS_DRY_RUN: '1',
      HOME: path.join(bin, '..'),
    },
    encoding: 'utf8',
  });
}

describe('scripts/tools.sh Node bootstrap', () => {
  it.each(['20.19.0', '22.12.0', '22.17.1', 'v22.17.99', '23.5.0'])(
    'brings the pinned Node when the system Node is %s (type stripping not on by default)',
    (version) => {
      const said = bootstrap(version);
      expect(said).toContain(`would install Node ${pinned}`);
      expect(said).toContain(`Node ${version} is not ^22.18.0 || >=23.6.0`);
      expect(said).toContain('rc=0');
    },
  );

  it.each(['22.18.0', '22.20.1', '23.6.0', '24.0.0', pinned, '26.1.0'])(
    'keeps the system Node %s (at or above the floor)',
    (version) => {
      expect(bootstrap(version).trim()).toBe('rc=0');
    },
  );

  it('brings the pinned Node when there is no node at all', () => {
    expect(bootstrap(null)).toContain(`Node none is not ^22.18.0 || >=23.6.0; would install Node ${pinned}`);
  });

  it('states the same floor as package.json engines', () => {
    const engines = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).engines.node;
    const script = readFileSync(path.join(root, 'scripts/tools.sh'), 'utf8');
    expect(engines).toBe('^22.18.0 || >=23.6.0');
    expect(script).toContain(`VERDICT_NODE_FLOOR='${engines}'`);
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
    expect(lock.packages[''].engines.node).toBe(engines);
  });
});
