/**
 * `verdict mcp-proxy --wait-for-approval` end to end (issue 24): the MCP SDK's client, the proxy over
 * stdio, a real MCP server and a whole Verdict (Postgres, grants). A high-risk call denied with an
 * approval request is held, with progress notifications, until a human (a token with principal_type
 * human and approvals:grant) decides it through the API: approved, the call goes through; denied,
 * or the request expired, or no one decided in time, the host gets the tool error.
 */
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Approval, VerdictClient } from '../../packages/sdk/src/index.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';
import { connectOpsHost, type OpsHost } from './ops-host.ts';

let verdict: TestVerdict;
let human: VerdictClient;
const hosts: OpsHost[] = [];

beforeAll(async () => {
  verdict = await startTestVerdict('mcp_wait_approval');
  human = new VerdictClient({
    url: verdict.url,
    token: verdict.token('sam', ['approvals:grant'], true),
    throwOnError: true,
  });
});
afterAll(async () => {
  await Promise.allSettled(hosts.map((h) => h.close()));
  await verdict?.close();
});

/** A host connected through a proxy that waits up to `wait` for approvals, for user `user`. */
async function host(user: string, wait: string) {
  const opsHost = await connectOpsHost(verdict, { user, waitForApproval: wait });
  hosts.push(opsHost);
  return { client: opsHost.client, seen: () => opsHost.served().map((call) => call.tool) };
}

/** The pending approval request of `user`'s agent, once it exists. */
async function pendingOf(user: string): Promise<Approval> {
  let found: Approval | undefined;
  await expect
    .poll(
      async () => {
        const { approvals } = await human.listApprovals({ state: 'pending' });
        found = approvals.find((a) => a.on_behalf_of === user);
        return found;
      },
      { timeout: 10_000, interval: 100 },
    )
    .toBeTruthy();
  return found!;
}

const text = (result: Record<string, unknown>) =>
  (result.content as { text?: string }[]).map((c) => c.text ?? '').join('\n');

describe('mcp-proxy --wait-for-approval', () => {
  it('holds a denied call while a human decides, then forwards it once approved', async () => {
    const { client, seen } = await host('user:approve', '30s');
    const progress: Progress[] = [];
    const call = client.callTool({ name: 'deploy_service', arguments: { service: 'billing' } }, undefined, {
      onprogress: (p) => progress.push(p),
      timeout: 40_000,
    });
    const request = await pendingOf('user:approve');
    // The approver sees what they approve.
    expect(request.arguments).toEqual({ service: 'billing' });
    expect(request.tool).toBe('deploy_service');
    await expect.poll(() => progress.length, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(seen()).toEqual([]);

    expect((await human.decideApproval(request.id, 'approve', 'CHG-7')).state).toBe('granted');
    const result = await call;
    expect(result.isError).toBeFalsy();
    expect(text(result)).toBe('deployed billing');
    expect(seen()).toEqual(['deploy_service']);
    expect(progress[0]!.message).toContain(request.id);
    expect(progress[0]!.total).toBe(30_000);
    // The approval was used once.
    expect((await human.getApproval(request.id)).uses).toBe(1);
  });

  it('answers the tool error when the human denies', async () => {
    const { client, seen } = await host('user:deny', '30s');
    const call = client.callTool({ name: 'deploy_service', arguments: { service: 'ledger' } }, undefined, {
      timeout: 40_000,
    });
    const request = await pendingOf('user:deny');
    await human.decideApproval(request.id, 'deny', 'not during the freeze');
    const result = await call;
    expect(result.isError).toBe(true);
    expect(text(result)).toContain(`a human denied approval ${request.id} by sam: not during the freeze`);
    expect(result._meta?.['verdict/approval']).toEqual({ id: request.id, state: 'denied' });
    expect(seen()).toEqual([]);
  });

  it('answers the tool error when the request expires while the call waits', async () => {
    const { client, seen } = await host('user:expire', '30s');
    const call = client.callTool({ name: 'deploy_service', arguments: { service: 'search' } }, undefined, {
      timeout: 40_000,
    });
    const request = await pendingOf('user:expire');
    // The request lapses (its TTL is minutes; here its expiry is moved to the past in the database).
    await verdict.database.db.query({
      text: "UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1",
      values: [request.id],
    });
    const result = await call;
    expect(result.isError).toBe(true);
    expect(text(result)).toContain(`approval request ${request.id} expired`);
    expect(seen()).toEqual([]);
  });

  it('never forwards a held call the host cancelled, even when a human approves it later', async () => {
    const { client, seen } = await host('user:cancel', '30s');
    const abort = new AbortController();
    const call = client.callTool({ name: 'deploy_service', arguments: { service: 'cache' } }, undefined, {
      signal: abort.signal,
      timeout: 40_000,
    });
    const request = await pendingOf('user:cancel');
    abort.abort('the user gave up');
    await expect(call).rejects.toThrow();
    await human.decideApproval(request.id, 'approve');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(seen()).toEqual([]);
    expect((await human.getApproval(request.id)).uses).toBe(0);
  });

  it('answers the tool error when no one decides within the wait', async () => {
    const { client, seen } = await host('user:timeout', '2s');
    const started = Date.now();
    const result = await client.callTool({ name: 'deploy_service', arguments: { service: 'mail' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(result.isError).toBe(true);
    expect(text(result)).toMatch(/no human decided approval request apr_\S+ within 2 s/);
    expect(seen()).toEqual([]);
  });
});
