/**
 * The human-approval round trip through `verdict mcp-proxy` over stdio, on a whole Verdict (Postgres,
 * Redis bus, grants): a high-risk call is denied with the approval request in the tool error, never
 * reaching the server; a human grants it through the API; the same call retried goes through once.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerdictClient } from '../../packages/sdk/src/index.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';
import { connectOpsHost, type OpsHost } from './ops-host.ts';

let verdict: TestVerdict;
let host: OpsHost;
let client: Client;

beforeAll(async () => {
  verdict = await startTestVerdict('mcp_approval', { bus: 'redis' });
  host = await connectOpsHost(verdict, { user: 'user:42' });
  client = host.client;
});
afterAll(async () => {
  await host?.close();
  await verdict?.close();
});

const seen = () => host.served().map((call) => call.tool);
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
