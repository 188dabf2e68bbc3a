/**
 * README.md's "Ship a policy" block, run as it is written (bash, `set -euo pipefail`) against a real
 * Verdict on real Postgres, seeded with the built-in bundle: write Rego, `opa build -t wasm`, push,
 * shadow, read the report, activate, roll back. The block runs in a fresh directory that links to
 * this checkout (so `npm run verdict` works as from a clone); only `localhost:8080` is replaced by
 * the test server's address.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Verdict } from '../../src/create-verdict.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

const root = path.resolve(import.meta.dirname, '../..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
let live: TestVerdict;
let verdict: Verdict;
let work: string;
let address: string;

/** The JSON value that starts at `marker` in `text` (curl prints bodies without a newline). */
function jsonAt(text: string, marker: string): Record<string, any> {
  const start = text.indexOf(marker);
  if (start < 0) throw new Error(`no ${marker} in the output`);
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return JSON.parse(text.slice(start, i + 1));
  }
  throw new Error(`unterminated JSON after ${marker}`);
}

function shipBlock(): string {
  const start = readme.indexOf('## Ship a policy');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README.md has no sh block under "Ship a policy"');
  return block[1]!;
}

beforeAll(async () => {
  live = await startTestVerdict('readme_ship');
  verdict = live.verdict;
  address = new URL(live.url).host;
  // A fresh directory that looks like a clone to npm (package.json, scripts, src, installed modules).
  work = mkdtempSync(path.join(tmpdir(), 'verdict-ship-work-'));
  for (const name of [
    'package.json',
    'package-lock.json',
    'node_modules',
    'src',
    'scripts',
    '.tools',
    '.node-version',
    '.opa-version',
  ]) {
    symlinkSync(path.join(root, name), path.join(work, name));
  }
}, 60_000);

afterAll(async () => {
  await live?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('README: Ship a policy', () => {
  it('runs every command of the block, each with the result it states', async () => {
    const seeded = (await verdict.lifecycle!.state()).state.active;
    const script = `set -euo pipefail\n${shipBlock().replaceAll('localhost:8080', address)}`;
    writeFileSync(path.join(work, 'ship.sh'), script);
    const token = live.token('author', ['bundles:write', 'bundles:read', 'audit:read', 'decisions:evaluate']);
    const { stdout } = await promisify(execFile)('bash', ['ship.sh'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? work, TOKEN: token },
      timeout: 120_000,
    });

    // 3. push --quiet: stored, not active; only its digest is printed (captured in DIGEST), once
    expect(stdout).not.toContain('uploaded');
    const digest = /^shadow: (sha256:[0-9a-f]{64})$/m.exec(stdout)![1]!;
    expect(
      (await verdict.lifecycle!.events()).filter((e) => `${e.action}:${e.actor}` === 'upload:author'),
    ).toHaveLength(1);
    // 3b. impact on the decisions already recorded (issue 22)
    expect(stdout).toMatch(new RegExp(`impact of ${digest} on verdict/decision, .*: done in`));
    // 4. shadow, and the decision keeps the active policy's answer
    expect(stdout).toContain(`shadow: ${digest}`);
    const decision = jsonAt(stdout, '{"decision_id"');
    expect(decision.allow).toBe(true);
    // 5. the report names the flip, its sample and its control
    const report = jsonAt(stdout, '{"from"');
    expect(report.flips[0]).toEqual({
      direction: 'allow_to_deny',
      count: 1,
      sample_ids: [decision.decision_id],
    });
    expect(report.by_control).toEqual([
      { direction: 'allow_to_deny', control: 'MY-001', count: 1, sample_ids: [decision.decision_id] },
    ]);
    // 6. activated, and the status shows the replica on it
    expect(stdout).toMatch(new RegExp(`active: ${digest} \\(version \\d+\\)`));
    expect(stdout).toMatch(/replicas: 1\n/);
    // 7. rolled back to the built-in bundle
    expect(stdout).toMatch(/rolled back: sha256:[0-9a-f]{12} → sha256:/);
    expect((await verdict.lifecycle!.state()).state.active).toBe(seeded);
    const actions = (await verdict.lifecycle!.events()).map((e) => `${e.action}:${e.actor}`);
    expect(actions.slice(0, 6)).toEqual([
      'activate:author',
      'activate:author',
      'shadow_set:author',
      'impact_finish:author',
      'impact_start:author',
      'upload:author',
    ]);
    // Each npm run starts a process: on a busy 2-core host the block takes tens of seconds.
  }, 180_000);
});
