/**
 * scripts/run.sh installs npm dependencies when node_modules is older than package-lock.json — but
 * never through a link: a scratch clone (test/deploy/readme-ship.test.ts) or a worktree whose
 * node_modules links to another checkout's would have `npm ci` empty that checkout's node_modules.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const scratch = mkdtempSync(path.join(tmpdir(), 'verdict-run-script-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('scripts/run.sh', () => {
  it('leaves a linked node_modules alone even when package-lock.json is newer', () => {
    const clone = path.join(scratch, 'clone');
    const other = path.join(scratch, 'other-checkout-node_modules');
    mkdirSync(path.join(clone, 'scripts'), { recursive: true });
    for (const file of ['scripts/run.sh', 'scripts/tools.sh', '.node-version', '.opa-version'])
      copyFileSync(path.join(root, file), path.join(clone, file));
    mkdirSync(other);
    writeFileSync(path.join(other, '.package-lock.json'), '{}');
    writeFileSync(path.join(other, 'kept'), 'a file npm ci would remove');
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(path.join(other, '.package-lock.json'), old, old);
    writeFileSync(path.join(clone, 'package-lock.json'), '{"lockfileVersion": 3}');
    symlinkSync(other, path.join(clone, 'node_modules'));
    // The Node that runs the suite is on PATH first, so tools.sh installs nothing either.
    const output = execFileSync('/bin/bash', [path.join(clone, 'scripts/run.sh'), 'echo', 'ran'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(output.trim()).toBe('ran');
    expect(existsSync(path.join(other, 'kept'))).toBe(true);
  });
});
