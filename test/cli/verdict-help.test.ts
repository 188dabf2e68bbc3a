/**
 * One `verdict` CLI: `verdict --help` lists token, audit verify, bundle, gate and mcp-proxy, and each
 * of those runs from it (token and audit verify as they do from their npm scripts).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const CLI = path.resolve(import.meta.dirname, '../../src/cli/verdict.ts');

function verdict(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
      (error, stdout, stderr) =>
        resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase('verdict_cli');
});
afterAll(async () => {
  await database?.drop();
});

describe('verdict', () => {
  it('--help lists every command', async () => {
    const help = await verdict(['--help']);
    expect(help.status).toBe(0);
    for (const command of ['token', 'audit', 'bundle', 'gate', 'mcp-proxy']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\s+\\S`, 'm'));
    }
    expect(help.stdout).toContain('audit verify');
  });

  it('token mints a token for the configured secret', async () => {
    const run = await verdict(['token', '--sub', 'ci', '--scope', 'decisions:evaluate', '--ttl', '5m'], {
      JWT_SECRET: 'a-test-secret-that-is-long-enough-for-hs256!',
      VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-cli-')),
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(decodeJwt(run.stdout.trim())).toMatchObject({ sub: 'ci', scope: 'decisions:evaluate' });
  });

  it('audit verify checks the chains of a database', async () => {
    const run = await verdict(['audit', 'verify'], { DATABASE_URL: database.url });
    expect(run.stdout).toMatch(/OK — 0 rows in 0 chains verified/);
    expect(run.status).toBe(0);
    expect((await verdict(['audit', 'frobnicate'])).status).toBe(2);
  });

  it('gate and mcp-proxy answer their usage', async () => {
    const gate = await verdict(['gate', '--help']);
    expect(gate.status).toBe(0);
    expect(gate.stdout).toContain('Exit codes: 0 allowed, 1 denied, 2 could not decide');
    const proxy = await verdict(['mcp-proxy', '--', 'node', 'server.js']);
    expect(proxy.status).toBe(2);
    expect(proxy.stderr).toContain('--agent is required');
  });
});
