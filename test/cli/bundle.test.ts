/**
 * `verdict bundle …` against a real Verdict listening on a port (real Postgres): push, push
 * --activate, shadow, shadow --off, activate, rollback, status; every refusal exits 1 with its
 * code and reason; usage mistakes exit 2. One run goes through the real process (`node
 * src/cli/verdict.ts`) to check the entry point and its exit code.
 */
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/auth/caller.ts';
import { runCli } from '../../src/cli/verdict.ts';
import type { Verdict } from '../../src/create-verdict.ts';
import { opaBuild, scratchDir, writePolicy } from '../support/signed-bundle.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

const root = path.resolve(import.meta.dirname, '../..');
let dir: string;
let live: TestVerdict;
let verdict: Verdict;
let url: string;
let denyFile: string;
let allowFile: string;

const token = (scopes: readonly Scope[] = ['bundles:write', 'bundles:read']) =>
  live.token('pipeline', scopes);

async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    env: { VERDICT_URL: url, VERDICT_TOKEN: token(), ...env },
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

const decide = async () =>
  (
    await verdict.app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers: { authorization: `Bearer ${live.token('ci', ['decisions:evaluate'])}` },
      payload: {
        subject: { type: 'agent', id: 'a' },
        action: { name: 'x' },
        resource: { type: 't', id: 'r' },
      },
    })
  ).json() as { allow: boolean; policy: { revision: string } };

beforeAll(async () => {
  dir = scratchDir('cli');
  const seed = opaBuild(writePolicy(dir), path.join(dir, 'seed.tar.gz'), { revision: 'seed' });
  denyFile = opaBuild(writePolicy(dir, { allow: false }), path.join(dir, 'deny.tar.gz'), {
    revision: 'deny-1',
  });
  allowFile = opaBuild(
    writePolicy(dir, { allow: true, files: { 'data.json': '{"v":3}' } }),
    path.join(dir, 'allow.tar.gz'),
    {
      revision: 'allow-3',
    },
  );
  live = await startTestVerdict('cli', { bundle: seed });
  ({ verdict, url } = live);
});

afterAll(async () => {
  await live?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('verdict bundle', () => {
  let denyDigest: string;

  it('pushes a bundle, then says the same bytes are already stored', async () => {
    const pushed = await cli(['bundle', 'push', denyFile, '--reason', 'tighten']);
    expect(pushed).toMatchObject({ code: 0, stderr: '' });
    expect(pushed.stdout).toMatch(
      /^uploaded sha256:[0-9a-f]{64} \(revision deny-1, \d+ bytes\); state: inactive/,
    );
    denyDigest = /sha256:[0-9a-f]{64}/.exec(pushed.stdout)![0];
    const again = await cli(['bundle', 'push', denyFile, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ digest: denyDigest, uploaded_by: 'pipeline' });
  });

  it('exits 1 with the code and reason on any refusal', async () => {
    const garbage = path.join(dir, 'garbage.tar.gz');
    writeFileSync(garbage, 'not a bundle');
    const refused = await cli(['bundle', 'push', garbage]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^verdict: refused \(400\): bundle_invalid: /);
    const missing = await cli(['bundle', 'push', path.join(dir, 'nope.tar.gz')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/unreadable_file/);
    const forbidden = await cli(['bundle', 'push', denyFile], { VERDICT_TOKEN: token(['bundles:read']) });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/\(403\): insufficient_scope/);
    const conflict = await cli(['bundle', 'activate', denyDigest, '--expect', denyDigest]);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/\(409\): activation_conflict/);
    const unreachable = await cli(['bundle', 'status'], { VERDICT_URL: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/unreachable/);
  });

  it('exits 2 on a usage mistake', async () => {
    expect((await cli(['bundle', 'activate', 'xyz'])).code).toBe(2);
    expect((await cli(['bundle', 'status'], { VERDICT_TOKEN: '' })).stderr).toMatch(/no token/);
    expect((await cli(['bundle', 'frobnicate'])).code).toBe(2);
    expect((await cli(['bundle', 'push', '--bogus'])).code).toBe(2);
    expect((await cli(['nothing'])).code).toBe(2);
    expect((await cli(['--help'])).stdout).toMatch(/bundle\s+ship policy bundles/);
  });

  it('shadows, activates, reports status and rolls back', async () => {
    expect((await cli(['bundle', 'shadow', denyDigest])).stdout).toBe(`shadow: ${denyDigest}\n`);
    await verdict.replica!.sync();
    expect(verdict.replica!.shadow.current()?.bundle.digest).toBe(denyDigest);
    expect((await cli(['bundle', 'shadow', '--off'])).stdout).toBe('shadow: off\n');

    const activated = await cli(['bundle', 'activate', denyDigest, '--reason', 'ship']);
    expect(activated.stdout).toMatch(new RegExp(`^active: ${denyDigest}`));
    await verdict.replica!.sync();
    expect((await decide()).policy.revision).toBe('deny-1');

    const status = await cli(['bundle', 'status']);
    expect(status.stdout).toContain(`active: ${denyDigest}`);
    expect(status.stdout).toMatch(/replicas: 1\n {2}\S+ \(.+, pid \d+\): active sha256:[0-9a-f]{12}/);

    const rollback = await cli(['bundle', 'rollback']);
    expect(rollback.code).toBe(0);
    expect(rollback.stdout).toMatch(/^rolled back: sha256:[0-9a-f]{12} → sha256:/);
    await verdict.replica!.sync();
    expect((await decide()).policy.revision).toBe('seed');
  });

  it('pushes and activates in one call, through the real entry point', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(
      process.execPath,
      ['src/cli/verdict.ts', 'bundle', 'push', allowFile, '--activate'],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', VERDICT_URL: url, VERDICT_TOKEN: token() },
      },
    );
    expect(stdout).toMatch(/state: active/);
    await verdict.replica!.sync();
    expect((await decide()).policy.revision).toBe('allow-3');
    const failed = await run(
      process.execPath,
      ['src/cli/verdict.ts', 'bundle', 'push', '/nonexistent/bundle.tar.gz'],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', VERDICT_URL: url, VERDICT_TOKEN: token() },
      },
    ).catch((err: { code: number; stderr: string }) => err);
    expect((failed as { code: number }).code).toBe(1);
  });
});
