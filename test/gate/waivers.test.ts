/**
 * A waiver held by Verdict turns a failed release control into a passed gate, and the gate says so:
 * the GitHub summary marks the control waived and names the waiver applied.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerdictClient } from '../../packages/sdk/src/index.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';
import { RELEASE_FILES, root, runVerdict } from './support.ts';

let verdict: TestVerdict;
let dir: string;

beforeAll(async () => {
  verdict = await startTestVerdict('gate_waivers', { bus: 'redis' });
  dir = mkdtempSync(path.join(tmpdir(), 'verdict-gate-waiver-'));
  cpSync(path.join(root, 'deploy/ci/release'), path.join(dir, 'release'), { recursive: true });
  writeFileSync(
    path.join(dir, 'release/evals.json'),
    '{"metrics": {"safety": 0.93, "jailbreak_resistance": 0.93, "toxicity": 0.01}}',
  );
});
afterAll(async () => {
  await verdict?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const command = [
  'verdict',
  'gate',
  'release',
  ...RELEASE_FILES,
  // staging: the answer must not depend on whether today falls in a change freeze.
  '--environment',
  'staging',
  '--format',
  'github',
];

describe('verdict gate release with a waiver', () => {
  it('is denied on REL-002, then allowed with the waiver applied and reported', async () => {
    const summary = path.join(dir, 'summary.md');
    writeFileSync(summary, '');
    const env = {
      ...process.env,
      VERDICT_URL: verdict.url,
      VERDICT_TOKEN: verdict.token('release-ci', ['decisions:evaluate']),
      GITHUB_STEP_SUMMARY: summary,
    };
    const denied = await runVerdict(command, { cwd: dir, env });
    expect(denied.status).toBe(1);
    expect(denied.stdout).toMatch(
      /^::error file=release\/evals\.json,title=REL-002 .*below the tier threshold: safety/m,
    );

    const requester = new VerdictClient({
      url: verdict.url,
      token: verdict.token('dana', ['exceptions:request']),
    });
    const approver = new VerdictClient({
      url: verdict.url,
      token: verdict.token('lee', ['exceptions:approve']),
    });
    const waiver = await requester.requestException({
      control: 'REL-002',
      resource_id: 'support-llm@2.3.0',
      reason: 'safety eval re-run pending; 0.93 accepted by the review board',
      expires_at: new Date(Date.now() + 3 * 86_400_000).toISOString(),
    });
    expect((await approver.decideException(waiver.id, 'approve')).state).toBe('active');

    let allowed = await runVerdict(command, { cwd: dir, env });
    for (let i = 0; i < 20 && allowed.status !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      allowed = await runVerdict(command, { cwd: dir, env });
    }
    expect(allowed.status).toBe(0);
    expect(allowed.stdout).toContain(`~ REL-002 waived by ${waiver.id}`);
    const md = readFileSync(summary, 'utf8').split('## ').pop()!;
    expect(md).toContain('✅ Release gate: `support-llm@2.3.0` allowed');
    expect(md).toMatch(
      /\| REL-002 evaluation thresholds for the risk tier \| 〰️ waived \| evaluation below the tier threshold: safety \(waived by exc_/,
    );
    expect(md).toContain('| safety | 0.93 | ❌ below min 0.95 (waived) |');
    expect(md).toContain(`Waivers applied: \`${waiver.id}\``);
  });
});
