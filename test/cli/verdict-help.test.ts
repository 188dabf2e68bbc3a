/**
 * The enforcement commands in the one `verdict` CLI (test/cli/verdict.test.ts covers token, audit
 * verify and migrate): `verdict --help` lists gate and mcp-proxy beside them, and each answers its usage.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = path.resolve(import.meta.dirname, '../../src/cli/verdict.ts');

function verdict(args: string[]) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('verdict', () => {
  it('--help lists token, audit verify, bundle, gate and mcp-proxy', async () => {
    const help = await verdict(['--help']);
    expect(help.status).toBe(0);
    for (const command of ['token', 'audit', 'bundle', 'gate', 'mcp-proxy']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\s+\\S`, 'm'));
    }
    expect(help.stdout).toContain('audit verify');
    expect(help.stdout).toContain('gate release');
  });

  it('gate and mcp-proxy answer their usage', async () => {
    const gate = await verdict(['gate', '--help']);
    expect(gate.status).toBe(0);
    expect(gate.stdout).toContain('Exit codes: 0 allowed, 1 denied, 2 could not decide');
    expect((await verdict(['gate', 'deploy'])).status).toBe(2);
    const proxy = await verdict(['mcp-proxy', '--', 'node', 'server.js']);
    expect(proxy.status).toBe(2);
    expect(proxy.stderr).toContain('--agent is required');
  });
});
