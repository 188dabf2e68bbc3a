/**
 * The human-approval round trip through `verdict mcp-proxy` over stdio, on a whole Verdict (Postgres,
 * Redis bus, grants): a high-risk call is denied with the approval request in the tool error, never
 * reaching the server; a human grants it through the API; the same call retried goes through once.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerdictClient } from '../../packages/sdk/src/index.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

const root = path.resolve(import.meta.dirname, '../..');
let verdict: TestVerdict;
let client: Client;
let countFile: string;

beforeAll(async () => {
  verdict = await startTestVerdict('mcp_approval', { bus: 'redis' });
  countFile = path.join(mkdtempSync(path.join(tmpdir(), 'verdict-mcp-approval-')), 'calls.ndjson');
  writeFileSync(countFile, '');
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [
      path.join(root, 'src/cli/verdict.ts'),
      'mcp-proxy',
      '--agent',
      'ops-agent',
      '--on-behalf-of',
      'user:42',
      '--context',
      JSON.stringify({ user: { id: 'user:42', entitlements: ['ops:deploy'] } }),
      '--',
      process.execPath,
      path.join(root, 'test/mcp/counting-server.ts'),
    ],
    env: {
      ...(process.env as Record<string, string>),
      VERDICT_URL: verdict.url,
      VERDICT_TOKEN: verdict.token('ops-runtime', ['decisions:evaluate']),
      COUNT_FILE: countFile,
    },
    stderr: 'pipe',
  });
  client = new Client({ name: 'host', version: '1.0.0' });
  await client.connect(transport);
});
afterAll(async () => {
  await client?.close();
  await verdict?.close();
});

const seen = () =>
  readFileSync(countFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line).tool as string);
const text = (result: Record<string, unknown>) =>
  (result.content as { text?: string }[]).map((c) => c.text ?? '').join('\n');

describe('an approval round trip through the proxy', () => {
  it('denies with the approval request, and lets the same call through once a human granted it', async () => {
    const { tools } = await client.listTools();
    // TOOL-003 is decided per call (an approval may satisfy it): deploy_service stays listed.
    expect(tools.map((t) => t.name)).toContain('deploy_service');

    const call = { name: 'deploy_service', arguments: { service: 'billing' } };
    const denied = await client.callTool(call);
    expect(denied.isError).toBe(true);
    expect(text(denied)).toContain('TOOL-003');
    const request = (
      (denied._meta?.['verdict/decision'] ?? {}) as { approval_request?: { id: string; status_url: string } }
    ).approval_request;
    expect(request?.id).toMatch(/^apr_/);
    expect(text(denied)).toContain(`A human approval was requested: ${request!.id}`);

    // Retried before anyone approved: still denied, the same request, nothing forwarded.
    const early = await client.callTool(call);
    expect(early.isError).toBe(true);
    expect(seen()).toEqual([]);

    const human = new VerdictClient({
      url: verdict.url,
      token: verdict.token('sam', ['approvals:grant'], true),
    });
    expect((await human.decideApproval(request!.id, 'approve', 'change ticket CHG-1')).state).toBe('granted');

    const allowed = await client.callTool(call);
    expect(allowed.isError).toBeFalsy();
    expect(text(allowed)).toBe('deployed billing');
    expect(seen()).toEqual(['deploy_service']);

    // Another deployment is another approval.
    const other = await client.callTool({ name: 'deploy_service', arguments: { service: 'ledger' } });
    expect(other.isError).toBe(true);
    expect(seen()).toEqual(['deploy_service']);
  });
});
