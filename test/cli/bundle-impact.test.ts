/**
 * `verdict bundle impact` and `verdict bundle push --impact` against a real Verdict (real Postgres,
 * real OPA builds): the progress line, the report, exit 0 when done and 2 when the run cannot start.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/verdict.ts';
import { opaBuild, scratchDir, writePolicy } from '../support/signed-bundle.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

let live: TestVerdict;
let denyFile: string;

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    env: { VERDICT_URL: live.url, VERDICT_TOKEN: live.token('pipeline', ['bundles:write', 'bundles:read']) },
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    fetch,
    readFile: (file) => readFile(file),
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  const dir = scratchDir('cli-impact');
  const seed = opaBuild(writePolicy(dir), path.join(dir, 'seed.tar.gz'), { revision: 'seed' });
  denyFile = opaBuild(writePolicy(dir, { allow: false }), path.join(dir, 'deny.tar.gz'), {
    revision: 'deny',
  });
  live = await startTestVerdict('cli_impact', { bundle: seed });
  const token = live.token('agent', ['decisions:evaluate']);
  for (const id of ['a', 'b', 'c']) {
    const res = await live.verdict.app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers: { authorization: `Bearer ${token}` },
      payload: {
        subject: { type: 'agent', id },
        action: { name: 'tool.call' },
        resource: { type: 'tool', id: 'x' },
      },
    });
    expect(res.json().allow).toBe(true);
  }
}, 60_000);

afterAll(async () => {
  await live?.close();
});

describe('verdict bundle impact', () => {
  it('push --impact uploads, runs the impact, shows progress and the report; exit 0', async () => {
    const out = await cli(['bundle', 'push', denyFile, '--impact', '--filter', 'action=tool.call']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^uploaded sha256:[0-9a-f]{64}/);
    expect(out.stdout).toMatch(/: done in [\d.]+ s/);
    expect(out.stdout).toMatch(/allow_to_deny: 3 {2}e\.g\./);
    expect(out.stderr).toMatch(/impact: 3 of 3 records \([\d,]+\/s/);
  }, 60_000);

  it('prints the run as JSON with --json, and exits 2 when the run cannot start', async () => {
    const digest = /sha256:([0-9a-f]{64})/.exec(
      (await cli(['bundle', 'push', denyFile])).stdout,
    )?.[1] as string;
    const json = await cli(['bundle', 'impact', digest, '--json', '--filter', 'subject_id=a']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      state: 'done',
      total: 1,
      flips: [{ count: 1 }, { count: 0 }],
    });
    const missing = await cli(['bundle', 'impact', digest, '--filter', 'entrypoint=verdict/nowhere']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/impact_missing_entrypoint/);
    const usage = await cli(['bundle', 'impact', digest, '--filter', 'nonsense']);
    expect(usage.code).toBe(2);
  }, 60_000);
});
