import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvents } from '../../src/audit/event-log.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type As, overBudget, type Replica, startReplicas, within } from './replicas.support.ts';

// Integration: two replicas on one Postgres and one Redis. Polling is slowed to a minute, so a
// change seen by the other replica within a second came over the bus, not the safety net.

const requester: As = { sub: 'dev-lead@example.com', scopes: ['exceptions:request'] };
const approver: As = { sub: 'ciso@example.com', scopes: ['exceptions:approve', 'exceptions:request'] };
const approver2: As = { sub: 'cto@example.com', scopes: ['exceptions:approve'] };
const agentRuntime: As = { sub: 'svc-agent-runtime', scopes: ['decisions:evaluate'] };
const auditor: As = { sub: 'auditor', scopes: ['audit:read'] };

/** support-bot calls search_kb (allowed); as code-agent it is not on the allowlist (TOOL-001, high). */
const offList = {
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'tool.call' },
  resource: { type: 'tool', id: 'search_kb', properties: {} },
  context: { session: { untrusted_content: false, tool_calls: 1 } },
};

/** code-agent sends confidential data to an external destination (TOOL-004, critical). */
const egress = {
  subject: { type: 'agent', id: 'code-agent' },
  action: { name: 'tool.call' },
  resource: {
    type: 'tool',
    id: 'http_get',
    properties: { destination: 'external', arguments: { url: 'https://api.github.com/x' } },
  },
  context: { session: { untrusted_content: false, tool_calls: 1 }, data_classification: 'confidential' },
};

const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();

describe('waivers across two replicas (real Postgres, real Redis)', () => {
  let tdb: TestDatabase;
  let a: Replica;
  let b: Replica;
  let close: () => Promise<void>;

  beforeAll(async () => {
    tdb = await createTestDatabase('grants_exceptions');
    const started = await startReplicas(tdb.url, 2, { VERDICT_GRANTS_POLL_MS: '60000' });
    [a, b] = started.replicas as [Replica, Replica];
    close = started.close;
  });
  afterAll(async () => {
    await close?.();
    await tdb?.drop();
  });

  const decide = async (replica: Replica, envelope: unknown) => {
    const res = await replica.call('POST', '/v1/decisions', agentRuntime, envelope);
    expect(res.statusCode).toBe(200);
    return res.json();
  };
  const request = async (body: Record<string, unknown>, as: As = requester) =>
    a.call('POST', '/v1/exceptions', as, { reason: 'migration in progress', ...body });

  it('refuses unknown and unwaivable controls, unscoped waivers and bad expiries with stable codes', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ control: 'TOOL-999', subject_id: 'code-agent', expires_at: inDays(5) }, 'unknown_control'],
      [{ control: 'DEFAULT-DENY', subject_id: 'code-agent', expires_at: inDays(5) }, 'control_not_waivable'],
      [{ control: 'INPUT-001', resource_id: 'shell', expires_at: inDays(5) }, 'control_not_waivable'],
      [{ control: 'TOOL-006', expires_at: inDays(5) }, 'exception_unscoped'],
      [{ control: 'TOOL-006', subject_id: 'code-agent', expires_at: inDays(-1) }, 'expiry_in_past'],
      [{ control: 'TOOL-006', subject_id: 'code-agent', expires_at: inDays(91) }, 'expiry_too_far'],
      [{ control: 'TOOL-001', subject_id: 'code-agent', expires_at: inDays(31) }, 'expiry_too_far'],
      [{ control: 'TOOL-006', subject_id: 'code-agent', expires_at: 'next week' }, 'invalid_request'],
      [{ control: 'TOOL-006', subject_id: 'code-agent', expires_at: inDays(5), extra: 1 }, 'invalid_request'],
    ];
    for (const [body, code] of cases) {
      const res = await request(body);
      expect(res.statusCode, code).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json().code).toBe(code);
    }
    // Ids and query text that Postgres could not hold are refused before any query (found by the fuzzer).
    for (const [method, url, as] of [
      ['POST', '/v1/exceptions/%00/approve', approver],
      ['GET', '/v1/exceptions/exc%00x', requester],
      ['GET', '/v1/exceptions?control=%00', requester],
      ['POST', '/v1/approvals/%00/deny', { sub: 'alice', scopes: ['approvals:grant'], human: true }],
    ] as const) {
      const res = await a.call(method, url, as, method === 'POST' ? { reason: 'x' } : undefined);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().code, url).toBe('invalid_request');
    }
    // 90 days is the default maximum for a medium control.
    expect(
      (await request({ control: 'TOOL-006', subject_id: 'nobody', expires_at: inDays(89) })).statusCode,
    ).toBe(201);
  });

  it('refuses self-approval; an approval on A changes the next decision on B within a second; revoke reverses it', async () => {
    expect((await decide(b, overBudget)).allow).toBe(false);

    const created = await request({
      control: 'TOOL-006',
      subject_id: 'code-agent',
      action: 'tool.call',
      compensating_controls: ['sandboxed runner'],
      ticket: { system: 'jira', key: 'SEC-42' },
      expires_at: inDays(10),
    });
    expect(created.statusCode).toBe(201);
    const waiver = created.json();
    expect(waiver).toMatchObject({
      state: 'pending',
      control: 'TOOL-006',
      severity: 'medium',
      approvers_required: 1,
    });

    // The requester, even holding the approve scope, cannot approve their own waiver.
    const self = await a.call(
      'POST',
      `/v1/exceptions/${waiver.id}/approve`,
      { ...requester, scopes: ['exceptions:approve'] },
      {},
    );
    expect(self.statusCode).toBe(403);
    expect(self.json().code).toBe('self_approval');
    // Without the scope: 403 insufficient_scope.
    expect((await a.call('POST', `/v1/exceptions/${waiver.id}/approve`, requester, {})).json().code).toBe(
      'insufficient_scope',
    );
    expect((await decide(b, overBudget)).allow).toBe(false);

    const approved = await a.call('POST', `/v1/exceptions/${waiver.id}/approve`, approver, {
      reason: 'ok for the sprint',
    });
    expect(approved.statusCode).toBe(200);
    expect(approved.json().state).toBe('active');

    const elapsed = await within(1_000, async () => (await decide(b, overBudget)).allow === true);
    expect(elapsed).toBeLessThan(1_000);
    const allowed = await decide(b, overBudget);
    expect(allowed.exceptions).toEqual([waiver.id]);
    // The waived violation stays visible, marked.
    expect(allowed.violations.length).toBeGreaterThan(0);
    for (const v of allowed.violations)
      expect(v).toMatchObject({ control: 'TOOL-006', waived_by: waiver.id });

    // The decisions this waiver allowed.
    const search = await b.call('GET', `/v1/decisions?exception=${waiver.id}`, auditor);
    expect(search.statusCode).toBe(200);
    const found = search.json().items;
    expect(found.length).toBeGreaterThanOrEqual(1);
    expect(
      found.some(
        (d: { id?: string; decision_id?: string }) => (d.id ?? d.decision_id) === allowed.decision_id,
      ),
    ).toBe(true);

    // The record holds the waiver it was decided with: its replay reproduces the allow, even
    // after the waiver is revoked below (checked again at the end of this test).
    const replay = async () =>
      (await a.call('POST', `/v1/decisions/${allowed.decision_id}/replay`, auditor)).json().stored;
    expect(await replay()).toMatchObject({ allow: true, matches: true });

    // Another subject is not covered.
    expect(
      (await decide(b, { ...overBudget, subject: { type: 'agent', id: 'support-bot' } })).exceptions,
    ).toEqual([]);

    // Only an approver (or admin) may revoke.
    const stranger = await a.call('POST', `/v1/exceptions/${waiver.id}/revoke`, approver2, { reason: 'no' });
    expect(stranger.statusCode).toBe(403);
    expect(stranger.json().code).toBe('not_an_approver');
    const revoked = await b.call('POST', `/v1/exceptions/${waiver.id}/revoke`, approver, {
      reason: 'incident',
    });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json().state).toBe('revoked');
    await within(1_000, async () => (await decide(a, overBudget)).allow === false);
    expect((await decide(a, overBudget)).exceptions).toEqual([]);

    // Wrong state: 409; unknown id: 404.
    const again = await a.call('POST', `/v1/exceptions/${waiver.id}/approve`, approver2, {});
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('exception_not_pending');
    const unknown = await a.call('POST', '/v1/exceptions/exc_nope/approve', approver2, {});
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('exception_not_found');

    expect(await replay()).toMatchObject({ allow: true, matches: true });

    // The full history, each step a chained event.
    const detail = (await a.call('GET', `/v1/exceptions/${waiver.id}`, requester)).json();
    expect(detail.history.map((e: { action: string }) => e.action)).toEqual([
      'request',
      'activate',
      'revoke',
    ]);
    expect(detail.history[1].actor).toBe('ciso@example.com');
  });

  it('stops applying a waiver when its expires_at passes, with no reload, and lists it as expired', async () => {
    expect((await decide(a, offList)).allow).toBe(true);
    const denied = { ...offList, subject: { type: 'agent', id: 'code-agent' } };
    expect((await decide(a, denied)).allow).toBe(false);
    const created = (
      await request({
        control: 'TOOL-001',
        subject_id: 'code-agent',
        resource_id: 'search_kb',
        expires_at: new Date(Date.now() + 2_500).toISOString(),
      })
    ).json();
    expect((await a.call('POST', `/v1/exceptions/${created.id}/approve`, approver, {})).json().state).toBe(
      'active',
    );
    await within(1_000, async () => (await decide(b, denied)).allow === true);
    const applied = b.verdict.grants!.cache.applied;
    await within(4_000, async () => (await decide(b, denied)).allow === false);
    // Nothing reloaded: the policy judged expiry at `now`.
    expect(b.verdict.grants!.cache.applied).toBe(applied);
    const listed = (
      await a.call('GET', `/v1/exceptions?state=expired&resource_id=search_kb`, requester)
    ).json();
    expect(listed.exceptions.map((e: { id: string }) => e.id)).toContain(created.id);
    expect(listed.exceptions.find((e: { id: string }) => e.id === created.id).state).toBe('expired');
  });

  it('a critical control needs two distinct approvers', async () => {
    expect((await decide(a, egress)).allow).toBe(false);
    const created = (
      await request({
        control: 'TOOL-004',
        resource_id: 'http_get',
        subject_id: 'code-agent',
        expires_at: inDays(20),
      })
    ).json();
    expect(created).toMatchObject({ severity: 'critical', approvers_required: 2 });
    const first = await a.call('POST', `/v1/exceptions/${created.id}/approve`, approver, {});
    expect(first.json()).toMatchObject({ state: 'pending' });
    expect(first.json().approvals).toHaveLength(1);
    const twice = await a.call('POST', `/v1/exceptions/${created.id}/approve`, approver, {});
    expect(twice.statusCode).toBe(409);
    expect(twice.json().code).toBe('already_approved');
    expect((await decide(b, egress)).allow).toBe(false);
    const second = await b.call('POST', `/v1/exceptions/${created.id}/approve`, approver2, {});
    expect(second.json().state).toBe('active');
    await within(1_000, async () => (await decide(a, egress)).allow === true);

    const listed = (
      await a.call('GET', '/v1/exceptions?state=active&control=TOOL-004&expiring_within=P30D', requester)
    ).json();
    expect(listed.exceptions.map((e: { id: string }) => e.id)).toEqual([created.id]);
    expect(
      (await a.call('GET', '/v1/exceptions?control=TOOL-004&expiring_within=P1D', requester)).json()
        .exceptions,
    ).toEqual([]);
    // The gauges read the store at scrape time, on any replica.
    const metrics = await b.verdict.metrics.registry.metrics();
    expect(Number(/verdict_exceptions\{state="active"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/verdict_exceptions\{state="revoked"\} (\d+)/.exec(metrics)?.[1])).toBe(1);
    expect(Number(/verdict_exceptions\{state="expired"\} (\d+)/.exec(metrics)?.[1])).toBe(1);
    expect(metrics).toMatch(/verdict_exceptions_expiring_soon \d+/);

    const bad = await a.call('GET', '/v1/exceptions?expiring_within=7 days', requester);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('invalid_duration');
  });

  it('rejects a pending waiver, and every state change is a chained, verifiable event', async () => {
    const created = (
      await request({ control: 'TOOL-006', resource_id: 'write_file', expires_at: inDays(3) })
    ).json();
    const rejected = await b.call('POST', `/v1/exceptions/${created.id}/reject`, approver, {
      reason: 'use a sandbox',
    });
    expect(rejected.json()).toMatchObject({ state: 'rejected', closed_reason: 'use a sandbox' });
    const noReason = await b.call('POST', `/v1/exceptions/${created.id}/reject`, approver, {});
    expect(noReason.statusCode).toBe(400);

    const report = await verifyEvents(tdb.db);
    expect(report.ok).toBe(true);
    expect((await a.call('GET', '/v1/audit/verify', auditor)).json()).toMatchObject({
      ok: true,
      events: { ok: true },
    });
    expect(report.checked).toBeGreaterThanOrEqual(10);
    // Editing one waiver event is detected.
    await tdb.db.query({
      text: `UPDATE platform_events SET reason = 'forged' WHERE subject = $1 AND action = 'reject'`,
      values: [created.id],
    });
    const broken = await verifyEvents(tdb.db);
    expect(broken.ok).toBe(false);
    expect(broken.firstBroken?.reason).toBe('edited');
    // The auditor's verify route covers the event chains too.
    const verified = (await b.call('GET', '/v1/audit/verify', auditor)).json();
    expect(verified.ok).toBe(false);
    expect(verified.events).toMatchObject({ ok: false, firstBroken: { reason: 'edited' } });
  });
});
