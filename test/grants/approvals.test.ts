import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvents } from '../../src/audit/event-log.ts';
import { SIGNATURE_HEADER, verifyWebhook } from '../../src/grants/approval-webhook.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type As, type Replica, startReplicas, within } from './replicas.support.ts';

// Integration: human approvals of agent actions on two replicas (one Postgres, one Redis), with a
// webhook receiver that fails its first attempts.

const WEBHOOK_SECRET = 'webhook-secret-for-the-approvals-suite';
const agentRuntime: As = { sub: 'svc-agent-runtime', scopes: ['decisions:evaluate'] };
const alice: As = { sub: 'alice@example.com', scopes: ['approvals:grant'], human: true };
const robot: As = { sub: 'ops-bot', scopes: ['approvals:grant'] };
const auditor: As = { sub: 'auditor', scopes: ['audit:read'] };

/** A high-risk read_file call by code-agent for user:42: TOOL-003 asks for a human approval. */
function call(path = '/workspace/deploy.yaml', extra: Record<string, unknown> = {}) {
  return {
    subject: { type: 'agent', id: 'code-agent', properties: { on_behalf_of: 'user:42' } },
    action: { name: 'tool.call' },
    resource: { type: 'tool', id: 'read_file', properties: { risk: 'high', arguments: { path } } },
    context: {
      session: { untrusted_content: false, tool_calls: 1 },
      data_classification: 'internal',
      ...extra,
    },
  };
}

interface Delivery {
  body: string;
  signature: string | undefined;
  status: number;
}

describe('human approvals of agent actions (real Postgres, real Redis, two replicas)', () => {
  let tdb: TestDatabase;
  let a: Replica;
  let b: Replica;
  let close: () => Promise<void>;
  let receiver: Server;
  const deliveries: Delivery[] = [];

  beforeAll(async () => {
    // The receiver answers 503 to the first two attempts of each request, then 204.
    const attempts = new Map<string, number>();
    receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const id = (JSON.parse(body) as { approval_id: string }).approval_id;
        const n = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, n);
        const status = n <= 2 ? 503 : 204;
        deliveries.push({ body, signature: req.headers[SIGNATURE_HEADER] as string | undefined, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const port = (receiver.address() as AddressInfo).port;
    tdb = await createTestDatabase('grants_approvals');
    const started = await startReplicas(tdb.url, 2, {
      VERDICT_GRANTS_POLL_MS: '60000',
      VERDICT_APPROVAL_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks/verdict`,
      VERDICT_APPROVAL_WEBHOOK_SECRET: WEBHOOK_SECRET,
      VERDICT_PUBLIC_URL: 'https://verdict.example.com',
    });
    [a, b] = started.replicas as [Replica, Replica];
    close = started.close;
  });
  afterAll(async () => {
    await close?.();
    await tdb?.drop();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  const decide = async (replica: Replica, envelope: unknown) => {
    const res = await replica.call('POST', '/v1/decisions', agentRuntime, envelope);
    expect(res.statusCode).toBe(200);
    return res.json();
  };

  it('deny with approval_request → a human approves → the retry with approval_id is allowed, once', async () => {
    const denied = await decide(a, call());
    expect(denied.allow).toBe(false);
    expect(denied.obligations.map((o: { type: string }) => o.type)).toContain('human_approval');
    const request = denied.approval_request;
    expect(request.id).toMatch(/^apr_/);
    expect(request.status_url).toBe(`https://verdict.example.com/v1/approvals/${request.id}`);
    expect(Date.parse(request.expires_at)).toBeGreaterThan(Date.now());

    // One pending request per binding: a repeated denial, on the other replica, returns the same one.
    expect((await decide(b, call())).approval_request.id).toBe(request.id);
    // The record keeps it too, for the auditor.
    const record = (await a.call('GET', `/v1/decisions/${denied.decision_id}`, auditor)).json();
    expect(JSON.stringify(record)).toContain(request.id);

    const pending = (await b.call('GET', '/v1/approvals?state=pending', alice)).json();
    expect(pending.approvals.map((x: { id: string }) => x.id)).toContain(request.id);
    const status = (await a.call('GET', `/v1/approvals/${request.id}`, agentRuntime)).json();
    expect(status).toMatchObject({
      state: 'pending',
      agent: 'code-agent',
      on_behalf_of: 'user:42',
      tool: 'read_file',
    });

    // A retry before the grant: still denied.
    expect((await decide(a, call('/workspace/deploy.yaml', { approval_id: request.id }))).allow).toBe(false);

    // Not a human, the agent itself, the user it acts for: refused.
    const notHuman = await b.call('POST', `/v1/approvals/${request.id}/approve`, robot, {});
    expect(notHuman.statusCode).toBe(403);
    expect(notHuman.json().code).toBe('approver_not_human');
    const asAgent = await b.call(
      'POST',
      `/v1/approvals/${request.id}/approve`,
      { ...alice, sub: 'code-agent' },
      {},
    );
    expect(asAgent.json().code).toBe('self_approval');
    const asUser = await b.call(
      'POST',
      `/v1/approvals/${request.id}/approve`,
      { ...alice, sub: 'user:42' },
      {},
    );
    expect(asUser.json().code).toBe('on_behalf_of_approval');
    const noScope = await b.call(
      'POST',
      `/v1/approvals/${request.id}/approve`,
      { ...alice, scopes: ['decisions:evaluate'] },
      {},
    );
    expect(noScope.json().code).toBe('insufficient_scope');

    const granted = await b.call('POST', `/v1/approvals/${request.id}/approve`, alice, {
      reason: 'looked at the diff',
    });
    expect(granted.statusCode).toBe(200);
    expect(granted.json()).toMatchObject({
      state: 'granted',
      decided_by: 'alice@example.com',
      max_uses: 1,
      uses: 0,
    });
    const twice = await b.call('POST', `/v1/approvals/${request.id}/approve`, alice, {});
    expect(twice.statusCode).toBe(409);
    expect(twice.json().code).toBe('approval_not_pending');

    // Another tool, other arguments, another user: still denied (and nothing consumed).
    const otherTool = call('/workspace/deploy.yaml', { approval_id: request.id });
    otherTool.resource.id = 'write_file';
    expect((await decide(a, otherTool)).allow).toBe(false);
    expect((await decide(a, call('/workspace/other.yaml', { approval_id: request.id }))).allow).toBe(false);
    const otherUser = call('/workspace/deploy.yaml', { approval_id: request.id });
    otherUser.subject.properties.on_behalf_of = 'user:7';
    expect((await decide(a, otherUser)).allow).toBe(false);

    // The matching retry, on the replica that did not grant it: allowed, naming the approval.
    const allowed = await decide(a, call('/workspace/deploy.yaml', { approval_id: request.id }));
    expect(allowed.allow).toBe(true);
    expect(allowed.approvals).toEqual([request.id]);

    // A single-use approval: the second use is denied.
    const second = await decide(b, call('/workspace/deploy.yaml', { approval_id: request.id }));
    expect(second.allow).toBe(false);

    // Its history: request, grant, one use naming the decision.
    const history = (await a.call('GET', `/v1/approvals/${request.id}`, agentRuntime)).json().history;
    expect(history.map((e: { action: string }) => e.action)).toEqual(['request', 'grant', 'use']);
    expect(history[2].payload.decision_id).toBe(allowed.decision_id);
    expect((await verifyEvents(tdb.db)).ok).toBe(true);
  });

  it('two uses racing on two replicas: exactly one allow', async () => {
    const denied = await decide(a, call('/workspace/race.yaml'));
    const id = denied.approval_request.id;
    expect((await a.call('POST', `/v1/approvals/${id}/approve`, alice, {})).statusCode).toBe(200);
    const retry = call('/workspace/race.yaml', { approval_id: id });
    const results = await Promise.all([
      decide(a, retry),
      decide(b, retry),
      decide(a, retry),
      decide(b, retry),
    ]);
    expect(results.filter((r) => r.allow)).toHaveLength(1);
  });

  it('a deny an approval could not lift opens no approval request (TOOL-005, TOOL-001, TOOL-004)', async () => {
    const untrusted = {
      session: { untrusted_content: true, tool_calls: 1 },
      data_classification: 'internal',
    };
    const envelopes = [
      // TOOL-002 asks for an approval, but `rm -rf /` (TOOL-005) is denied whatever a human says.
      {
        subject: { type: 'agent', id: 'code-agent' },
        action: { name: 'tool.call' },
        resource: { type: 'tool', id: 'shell', properties: { arguments: { command: 'rm -rf /' } } },
        context: untrusted,
      },
      // TOOL-003 asks for one, but support-bot was never granted read_file (TOOL-001).
      { ...call(), subject: { type: 'agent', id: 'support-bot' } },
      // TOOL-002 asks for one, but the mail may not leave with unclassified data (TOOL-004).
      {
        subject: { type: 'agent', id: 'support-bot' },
        action: { name: 'tool.call' },
        resource: { type: 'tool', id: 'send_email' },
        context: { session: { untrusted_content: true, tool_calls: 1 } },
      },
    ];
    for (const envelope of envelopes) {
      const denied = await decide(a, envelope);
      expect(denied.allow).toBe(false);
      expect(denied.obligations.map((o: { type: string }) => o.type)).toContain('human_approval');
      expect(denied.violations.length, JSON.stringify(denied.violations)).toBeGreaterThan(1);
      expect(denied.approval_request, JSON.stringify(denied.violations)).toBeUndefined();
    }
  });

  it('a fabricated context.approval is denied', async () => {
    const fabricated = await decide(
      a,
      call('/workspace/deploy.yaml', { approval: { approved_by: 'x', expires_at: '2099-01-01T00:00:00Z' } }),
    );
    expect(fabricated.allow).toBe(false);
    expect(fabricated.violations.map((v: { control: string }) => v.control)).toContain('TOOL-003');
    // A made-up approval id, or a client-sent `grants`, does not help either.
    expect((await decide(a, call('/workspace/deploy.yaml', { approval_id: 'apr_made_up' }))).allow).toBe(
      false,
    );
    const forged = { ...call(), grants: { legacy_client_approvals: true } };
    const res = await a.call('POST', '/v1/decisions', agentRuntime, forged);
    expect(res.statusCode === 400 || res.json().allow === false).toBe(true);
  });

  it('AuthZEN answers carry the approval request in their context, and its retry is allowed', async () => {
    const envelope = call('/workspace/authzen.yaml');
    const res = await a.call('POST', '/access/v1/evaluation', agentRuntime, envelope);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.decision).toBe(false);
    const request = body.context.approval_request;
    expect(request.id).toMatch(/^apr_/);
    expect((await b.call('POST', `/v1/approvals/${request.id}/approve`, alice, {})).statusCode).toBe(200);
    const retry = await b.call(
      'POST',
      '/access/v1/evaluation',
      agentRuntime,
      call('/workspace/authzen.yaml', { approval_id: request.id }),
    );
    expect(retry.json()).toMatchObject({ decision: true, context: { approvals: [request.id] } });
  });

  it('a denied request cannot be used, and unknown ids are 404', async () => {
    const denied = await decide(b, call('/workspace/deny-me.yaml'));
    const id = denied.approval_request.id;
    const res = await a.call('POST', `/v1/approvals/${id}/deny`, alice, { reason: 'no' });
    expect(res.json()).toMatchObject({ state: 'denied', decided_reason: 'no' });
    expect((await decide(a, call('/workspace/deny-me.yaml', { approval_id: id }))).allow).toBe(false);
    const unknown = await a.call('POST', '/v1/approvals/apr_unknown/approve', alice, {});
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('approval_not_found');
  });

  it('after a human denies a request, the next denial opens a new one (on the same replica at once)', async () => {
    const first = (await decide(a, call('/workspace/ask-again.yaml'))).approval_request.id;
    // A repeated denial reuses the pending request (answered from this replica's memo or a read).
    expect((await decide(a, call('/workspace/ask-again.yaml'))).approval_request.id).toBe(first);
    const denied = await a.call('POST', `/v1/approvals/${first}/deny`, alice, { reason: 'not now' });
    expect(denied.json().state).toBe('denied');
    const second = (await decide(a, call('/workspace/ask-again.yaml'))).approval_request.id;
    expect(second).toMatch(/^apr_/);
    expect(second).not.toBe(first);
  });

  it('the webhook receiver that fails its first attempts still gets each new request, signed', async () => {
    const denied = await decide(a, call('/workspace/webhook.yaml'));
    const id = denied.approval_request.id;
    await within(10_000, async () => deliveries.some((d) => d.status === 204 && d.body.includes(id)));
    const mine = deliveries.filter((d) => d.body.includes(id));
    expect(mine.map((d) => d.status)).toEqual([503, 503, 204]);
    for (const d of mine) expect(verifyWebhook(WEBHOOK_SECRET, d.body, d.signature)).toBe(true);
    expect(verifyWebhook('another-secret', mine[2]!.body, mine[2]!.signature)).toBe(false);
    const payload = JSON.parse(mine[2]!.body);
    expect(payload).toMatchObject({
      type: 'approval.requested',
      approval_id: id,
      who: { agent: 'code-agent', on_behalf_of: 'user:42', requested_by: 'svc-agent-runtime' },
      what: { tool: 'read_file' },
      why: { controls: ['TOOL-003'] },
      approve_url: `https://verdict.example.com/v1/approvals/${id}/approve`,
      deny_url: `https://verdict.example.com/v1/approvals/${id}/deny`,
    });
    // Failed attempts are counted.
    const metrics = await a.verdict.metrics.registry.metrics();
    expect(metrics).toMatch(/verdict_approval_webhook_failures_total \d+/);
    expect(Number(/verdict_approval_webhook_failures_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(
      2,
    );
    expect(metrics).toMatch(/verdict_approvals\{state="pending"\} \d+/);
    expect(Number(/verdict_approvals\{state="granted"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    // Grants made on either replica: each observed request → grant once, where it was granted.
    const latency = (m: string) => Number(/verdict_approval_latency_seconds_count (\d+)/.exec(m)?.[1]);
    expect(latency(metrics) + latency(await b.verdict.metrics.registry.metrics())).toBeGreaterThanOrEqual(3);
  });
});
