import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/auth/caller.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import { sampleValue } from '../observability/scrape.ts';
import { contractFixtureBundle, DEFAULT_BUNDLE } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { CHILD_JWT_SECRET, type ChildService, decisionBody, request, startService } from './child-service.ts';

let database: TestDatabase;
let service: ChildService | undefined;
beforeAll(async () => {
  database = await createTestDatabase('cluster');
});
afterAll(async () => {
  if (service && service.process.exitCode === null) service.process.kill('SIGKILL');
  await database?.drop();
});

const workerPids = (logs: Record<string, unknown>[]) =>
  new Set(logs.filter((l) => l.msg === 'request completed' && l.route === '/v1/decisions').map((l) => l.pid));

describe('VERDICT_WORKERS=2 (node:cluster)', () => {
  it('spreads decisions over both workers, /metrics sums the group, a crashed worker is replaced, SIGTERM stops all with exit 0', async () => {
    service = await startService({
      VERDICT_BUNDLE: contractFixtureBundle(),
      DATABASE_URL: database.url,
      VERDICT_WORKERS: '2',
    });
    // Ready means one worker listens; wait for the second before spreading the load.
    const listening = () => service!.logs.filter((l) => String(l.msg).startsWith('Server listening')).length;
    for (let waited = 0; listening() < 2 && waited < 30_000; waited += 100)
      await new Promise((r) => setTimeout(r, 100));
    expect(listening()).toBe(2);
    const n = 40;
    const outcomes: number[] = [];
    for (let i = 0; i < n; i++) {
      outcomes.push((await request(service, 'POST', '/v1/decisions', decisionBody(i))).status);
    }
    expect(outcomes.every((s) => s === 200)).toBe(true);
    const pids = workerPids(service.logs);
    expect(pids.size).toBe(2);

    // Every scrape, whichever worker serves it, reports the whole group: the sum is n every time.
    for (let i = 0; i < 4; i++) {
      const scrape = await request(service, 'GET', '/metrics');
      expect(scrape.status).toBe(200);
      const allow = sampleValue(scrape.body, 'verdict_decisions_total', {
        entrypoint: 'verdict/decision',
        outcome: 'allow',
        control: 'none',
      });
      const deny = sampleValue(scrape.body, 'verdict_decisions_total', {
        entrypoint: 'verdict/decision',
        outcome: 'deny',
        control: 'FIX-001',
      });
      expect((allow ?? 0) + (deny ?? 0)).toBe(n);
      // decisionBody denies every third item (action "write").
      expect(deny).toBe(Math.ceil(n / 3));
      // The bundle info is a fact, not a sum: still 1 with two workers on the same revision.
      expect(scrape.body).toMatch(/verdict_bundle_info\{revision="[^"]+",digest="[^"]+"\} 1\n/);
    }

    // A worker that dies is replaced; the service keeps answering.
    const [victim] = [...pids] as number[];
    process.kill(victim!, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    while (
      !service.logs.some(
        (l) =>
          l.msg === 'Server listening at http://127.0.0.1:' + service!.port &&
          l.pid !== victim &&
          !pids.has(l.pid as number),
      )
    ) {
      if (Date.now() > deadline) throw new Error('no replacement worker started');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(service.logs.some((l) => l.msg === 'worker died; restarting' && l.worker === victim)).toBe(true);
    for (let i = 0; i < 6; i++) {
      expect((await request(service, 'POST', '/v1/decisions', decisionBody(i))).status).toBe(200);
    }

    service.process.kill('SIGTERM');
    const exit = await service.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(service.logs.filter((l) => l.msg === 'shutdown complete').length).toBe(2);
    expect(service.logs.some((l) => l.msg === 'all workers stopped' && l.failed === false)).toBe(true);
  }, 120_000);
});

describe('VERDICT_WORKERS=2: gauges of shared state', () => {
  let shared: TestDatabase | undefined;
  let group: ChildService | undefined;
  afterAll(async () => {
    if (group && group.process.exitCode === null) group.process.kill('SIGKILL');
    await shared?.drop();
  });

  it('the grant and KPI gauges, read from Postgres by every worker, are reported once, not summed', async () => {
    shared = await createTestDatabase('cluster_shared_gauges');
    group = await startService({
      VERDICT_BUNDLE: DEFAULT_BUNDLE,
      DATABASE_URL: shared.url,
      VERDICT_WORKERS: '2',
    });
    const service = group;
    const listening = () => service.logs.filter((l) => String(l.msg).startsWith('Server listening')).length;
    for (let waited = 0; listening() < 2 && waited < 30_000; waited += 100)
      await new Promise((r) => setTimeout(r, 100));
    expect(listening()).toBe(2);
    const as = (sub: string, scopes: Scope[]) => ({
      port: service.port,
      token: mintToken(CHILD_JWT_SECRET, { sub, scopes }),
    });

    // Shared state: one pending approval request (a high-risk tool call asks a human), two waivers
    // requested and one of them approved (active, expiring within 7 days).
    const asked = await request(service, 'POST', '/v1/decisions', {
      subject: { type: 'agent', id: 'code-agent', properties: { on_behalf_of: 'user:42' } },
      action: { name: 'tool.call' },
      resource: {
        type: 'tool',
        id: 'read_file',
        properties: { risk: 'high', arguments: { path: '/workspace/deploy.yaml' } },
      },
      context: { session: { untrusted_content: false, tool_calls: 1 }, data_classification: 'internal' },
    });
    expect(asked.status, asked.body).toBe(200);
    expect(JSON.parse(asked.body).approval_request.id).toMatch(/^apr_/);
    const expiresAt = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const waivers: string[] = [];
    for (const resource of ['rel-1', 'rel-2']) {
      const requested = await request(as('owner', ['exceptions:request']), 'POST', '/v1/exceptions', {
        control: 'REL-004',
        resource_id: resource,
        reason: 'test',
        expires_at: expiresAt,
      });
      expect(requested.status, requested.body).toBe(201);
      waivers.push(JSON.parse(requested.body).id);
    }
    const approved = await request(
      as('risk', ['exceptions:approve']),
      'POST',
      `/v1/exceptions/${waivers[0]}/approve`,
      {},
    );
    expect(JSON.parse(approved.body).state, approved.body).toBe('active');
    const kpis = JSON.parse((await request(as('auditor', ['audit:read']), 'GET', '/v1/kpis')).body);
    expect(kpis.waivers.requested).toBe(2);

    // Every scrape, whichever worker serves it and however the primary orders the workers.
    for (let i = 0; i < 4; i++) {
      const scrape = await request(service, 'GET', '/metrics');
      expect(scrape.status).toBe(200);
      const value = (name: string, labels: Record<string, string> = {}) =>
        sampleValue(scrape.body, name, labels);
      expect(value('verdict_approvals', { state: 'pending' })).toBe(1);
      expect(value('verdict_approvals', { state: 'granted' })).toBe(0);
      expect(value('verdict_exceptions', { state: 'pending' })).toBe(1);
      expect(value('verdict_exceptions', { state: 'active' })).toBe(1);
      expect(value('verdict_exceptions_expiring_soon')).toBe(1);
      expect(value('verdict_kpi_waivers', { state: 'requested' })).toBe(2);
      expect(value('verdict_kpi_waivers', { state: 'approved' })).toBe(1);
      expect(value('verdict_kpi_deny_rate', { entrypoint: 'verdict/decision' })).toBe(
        kpis.decisions.by_entrypoint.find((e: { entrypoint: string }) => e.entrypoint === 'verdict/decision')
          .deny_rate,
      );
    }

    service.process.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
  }, 120_000);
});
