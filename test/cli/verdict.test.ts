/**
 * One `verdict` entry point: `verdict --help` lists every group, and the older scripts run through
 * it unchanged (`verdict token` mints what `npm run token` mints; an unknown command exits 2).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDecoder } from 'fast-jwt';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const env = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? tmpdir(),
  VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-cli-')),
  ...extra,
});

describe('verdict', () => {
  it('lists every command group in one --help', async () => {
    const { stdout } = await run(process.execPath, ['src/cli/verdict.ts', '--help'], {
      cwd: root,
      env: env(),
    });
    for (const group of ['bundle', 'token', 'audit', 'migrate'])
      expect(stdout).toMatch(new RegExp(`^  ${group} `, 'm'));
  });

  it('runs the token script as a group: the same token, the same exit code', async () => {
    const secret = 'verdict-cli-test-secret-0123456789abcdef';
    const { stdout } = await run(
      process.execPath,
      ['src/cli/verdict.ts', 'token', '--scope', 'bundles:read', '--sub', 'ci'],
      { cwd: root, env: env({ JWT_SECRET: secret }) },
    );
    const claims = createDecoder()(stdout.trim()) as { sub: string; scope: string };
    expect(claims).toMatchObject({ sub: 'ci', scope: 'bundles:read' });
    const bad = await run(process.execPath, ['src/cli/verdict.ts', 'token', '--scope', 'root'], {
      cwd: root,
      env: env({ JWT_SECRET: secret }),
    }).catch((err: { code: number }) => err);
    expect((bad as { code: number }).code).toBe(2);
  });

  it('exits 2 on an unknown command or audit subcommand', async () => {
    for (const args of [['nothing'], ['audit', 'frobnicate']]) {
      const failed = await run(process.execPath, ['src/cli/verdict.ts', ...args], {
        cwd: root,
        env: env(),
      }).catch((err: { code: number }) => err);
      expect((failed as { code: number }).code).toBe(2);
    }
  });
});
