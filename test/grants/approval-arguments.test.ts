/**
 * An approval request carries the call's arguments, masked exactly as the decision record's input
 * (issue 24), in the listing, the read of one and the webhook; a status read with only
 * decisions:evaluate gets no arguments. A listing decision (the MCP guard's tools/list) opens no
 * approval request. On a whole Verdict: real Postgres, the built-in bundle and its mask policy.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Approval, VerdictClient } from '../../packages/sdk/src/index.ts';
import { McpGuard } from '../../src/mcp/guard.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

let verdict: TestVerdict;
let receiver: Server;
const deliveries: Record<string, unknown>[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as AddressInfo).port;
  verdict = await startTestVerdict('approval_arguments', {
    env: {
      VERDICT_APPROVAL_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks`,
      VERDICT_APPROVAL_WEBHOOK_SECRET: 'a-webhook-secret-for-this-suite',
    },
  });
});
afterAll(async () => {
  await verdict?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

const client = (sub: string, scopes: Parameters<TestVerdict['token']>[1], human = false) =>
  new VerdictClient({ url: verdict.url, token: verdict.token(sub, scopes, human), throwOnError: true });

/**
 * deploy_service is high-risk (TOOL-003): a deny with a human_approval obligation, and nothing else
 * (a session budget, TOOL-006, is given: a deny that an approval cannot lift opens no request).
 */
function deploy(args: Record<string, unknown>, context: Record<string, unknown> = {}) {
  return {
    subject: { type: 'agent', id: 'ops-agent', properties: { on_behalf_of: 'user:42' } },
    action: { name: 'tool.call' },
    resource: { type: 'tool', id: 'deploy_service', properties: { arguments: args } },
    context: {
      user: { id: 'user:42', entitlements: ['ops:deploy'] },
      session: { tool_calls: 1 },
      ...context,
    },
  };
}

describe('the arguments of an approval request', () => {
  it('are the record input’s arguments, masked; listed, read and sent to approvers only', async () => {
    const agent = client('ops-runtime', ['decisions:evaluate']);
    const approver = client('sam', ['approvals:grant'], true);
    const auditor = client('audra', ['audit:read']);

    const args = { service: 'billing', version: '2.4.1', api_token: 'sk-live-abcdef', nested: { n: 1 } };
    const denied = await agent.decide(deploy(args));
    expect(denied.allow).toBe(false);
    const request = denied.decided ? denied.approval_request : undefined;
    expect(request?.id).toMatch(/^apr_/);

    // The decision record's input, masked by the built-in system/log/mask (api_token erased).
    const record = await auditor.getDecision(denied.decision_id!);
    const recorded = (record.input as { resource: { properties: { arguments: unknown } } }).resource
      .properties.arguments;
    expect(recorded).toEqual({ service: 'billing', version: '2.4.1', nested: { n: 1 } });

    const one = await approver.getApproval(request!.id);
    expect(one.arguments).toEqual(recorded);
    expect(one.arguments_digest).toMatch(/^[0-9a-f]{64}$/);
    const { approvals } = await approver.listApprovals({ state: 'pending' });
    expect(approvals.find((a: Approval) => a.id === request!.id)?.arguments).toEqual(recorded);

    // The agent runtime polls the status without seeing arguments.
    const status = await agent.getApproval(request!.id);
    expect(status.state).toBe('pending');
    expect(status).not.toHaveProperty('arguments');
    await expect(auditor.getApproval(request!.id)).rejects.toMatchObject({ status: 403 });

    // The webhook carries them too.
    await expect
      .poll(() => deliveries.find((d) => d.approval_id === request!.id), { timeout: 5_000 })
      .toBeTruthy();
    const delivered = deliveries.find((d) => d.approval_id === request!.id) as {
      what: { arguments: unknown; arguments_digest: string };
    };
    expect(delivered.what.arguments).toEqual(recorded);
    expect(delivered.what.arguments_digest).toBe(one.arguments_digest);
    expect(JSON.stringify(deliveries)).not.toContain('sk-live-abcdef');
  });

  it('are null when the call had none', async () => {
    const agent = client('ops-runtime', ['decisions:evaluate']);
    const envelope = deploy({});
    delete (envelope.resource.properties as { arguments?: unknown }).arguments;
    const denied = await agent.decide(envelope);
    const id = denied.decided ? denied.approval_request?.id : undefined;
    expect(id).toMatch(/^apr_/);
    expect((await client('sam', ['approvals:grant'], true).getApproval(id!)).arguments).toBeNull();
  });
});

describe('a listing decision', () => {
  it('opens no approval request (context.listing), while the call itself does', async () => {
    const approver = client('sam', ['approvals:grant'], true);
    const pendingFor = async (user: string) =>
      (await approver.listApprovals({ state: 'pending' })).approvals.filter((a) => a.on_behalf_of === user);

    const listingEnvelope = deploy({}, { listing: true });
    listingEnvelope.subject.properties.on_behalf_of = 'user:list';
    delete (listingEnvelope.resource.properties as { arguments?: unknown }).arguments;
    const listing = await client('lister', ['decisions:evaluate']).decide(listingEnvelope);
    expect(listing.allow).toBe(false);
    expect(listing.obligations.some((o) => o.type === 'human_approval')).toBe(true);
    expect(listing.decided && listing.approval_request).toBeFalsy();
    expect(await pendingFor('user:list')).toEqual([]);

    // The MCP guard's tools/list: TOOL-003 keeps the tool listed, and no request is opened.
    const guard = new McpGuard({
      agent: 'ops-agent',
      onBehalfOf: 'user:guard',
      context: { user: { id: 'user:guard', entitlements: ['ops:deploy'] } },
      verdict: { url: verdict.url, token: verdict.token('guard-runtime', ['decisions:evaluate']) },
    });
    const listed = await guard.filterTools([{ name: 'deploy_service' }]);
    expect(listed.map((t) => t.name)).toEqual(['deploy_service']);
    expect(await pendingFor('user:guard')).toEqual([]);

    const call = await guard.authorizeCall('deploy_service', { service: 'billing' });
    expect(call.allow).toBe(false);
    const pending = await pendingFor('user:guard');
    expect(pending).toHaveLength(1);
    expect(pending[0]!.arguments).toEqual({ service: 'billing' });
  });
});
