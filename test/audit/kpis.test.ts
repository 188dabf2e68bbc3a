/**
 * Governance KPIs on real Postgres: the rollups maintained by the batch statement equal a rebuild
 * from the log (so the incremental path and verdict_rebuild_kpi_rollups() agree), a replayed
 * duplicate batch is not counted twice, a late record earlier than what is stored moves a release's
 * first outcome, GET /v1/kpis reports the figures a hand count gives, and the human-approval KPIs
 * (requests, grants, denials, expiries, time to grant) count the approval events of their window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Chain } from '../../src/audit/chain.ts';
import { appendEvent } from '../../src/audit/event-log.ts';
import { computeKpis } from '../../src/audit/kpis.ts';
import { storeBatch } from '../../src/audit/writer.ts';
import type { DecisionRecord } from '../../src/decisions/types.ts';
import { contractFixtureBundle, DEFAULT_BUNDLE } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { buildAuditApp } from './queries.support.ts';
import { decisionRecord, testWriter } from './records.support.ts';

let test: TestDatabase;
beforeAll(async () => {
  test = await createTestDatabase('kpis');
});
afterAll(async () => test?.drop());

const T0 = Date.parse('2026-05-04T10:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

function decision(
  minutes: number,
  fields: {
    action: string;
    resource: [string, string];
    allow: boolean;
    controls?: string[];
    exceptions?: string[];
    shadow?: { allow: boolean; controls: string[] };
  },
): DecisionRecord {
  const controls = fields.controls ?? [];
  return decisionRecord(minutes, {
    decidedAt: at(minutes),
    actionName: fields.action,
    resourceType: fields.resource[0],
    resourceId: fields.resource[1],
    allow: fields.allow,
    result: {
      allow: fields.allow,
      violations: controls.map((control) => ({ control, message: 'x', severity: 'high' })),
      obligations: [],
      exceptions: fields.exceptions ?? [],
    },
    exceptions: fields.exceptions ?? [],
    shadow: fields.shadow
      ? { digest: 'sha256:s', revision: 's', ...fields.shadow, error: null, eval_micros: 1 }
      : null,
  });
}

const release = (minutes: number, id: string, allow: boolean, controls: string[] = []) =>
  decision(minutes, { action: 'release.deploy', resource: ['model_release', id], allow, controls });

async function table(name: string): Promise<unknown[]> {
  const order =
    name === 'release_gates'
      ? 'resource_type, resource_id'
      : 'bucket, entrypoint, action_name, control, writer_id';
  const { rows } = await test.db.query<Record<string, unknown>>({
    text: `SELECT * FROM ${name} ORDER BY ${order}`,
  });
  return rows.map((row) => JSON.parse(JSON.stringify(row)));
}

describe('KPI rollups', () => {
  it("two writers' batches of the same hour do not wait on each other's rollup rows", async () => {
    // Writer A stores a batch and holds its transaction open (as a commit waiting on its fsync
    // would); writer B's batch for the same hour, entrypoint and controls must still go through.
    // With rollup rows shared by every writer, B waited on A's row locks until A committed.
    const same = (minutes: number) =>
      decision(minutes, {
        action: 'tool.call',
        resource: ['tool', 'search'],
        allow: false,
        controls: ['TOOL-002'],
      });
    const a = new Chain('writer-a-rollups').append([same(300), same(301)]);
    const b = new Chain('writer-b-rollups').append([same(302)]);
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let stored!: () => void;
    const aStored = new Promise<void>((resolve) => {
      stored = resolve;
    });
    const writerA = test.db.transaction(async (tx) => {
      await storeBatch(tx, a);
      stored();
      await held;
    });
    await aStored;
    try {
      const inserted = await test.db.transaction(async (tx) => {
        await tx.query({ text: "SET LOCAL lock_timeout = '2s'" });
        return storeBatch(tx, b);
      });
      expect(inserted).toBe(1);
    } finally {
      release();
      await writerA;
    }
    const { rows } = await test.db.query<{ writer_id: string; decisions: string }>({
      text: `SELECT writer_id, decisions FROM decision_rollup_hourly
             WHERE writer_id LIKE 'writer-_-rollups' AND control = '' ORDER BY writer_id`,
    });
    expect(rows.map((r) => [r.writer_id, Number(r.decisions)])).toEqual([
      ['writer-a-rollups', 2],
      ['writer-b-rollups', 1],
    ]);
    // Out of the way of the hand-counted figures below.
    for (const table of ['decision_log', 'decision_rollup_hourly', 'chain_heads'])
      await test.db.query({ text: `DELETE FROM ${table} WHERE writer_id LIKE 'writer-_-rollups'` });
  });

  it('match a rebuild from the log, count a replayed batch once, and take a late earlier record into account', async () => {
    const writer = testWriter(test.db);
    // rel-a: denied twice (REL-002), then passes 90 minutes after its first deny.
    await writer.record([
      release(0, 'rel-a', false, ['REL-002']),
      release(30, 'rel-a', false, ['REL-002', 'REL-003']),
    ]);
    await writer.record([release(90, 'rel-a', true)]);
    // rel-b: passes at once. rel-c: passes at 200 — and a deny at 150 arrives later (below).
    await writer.record([release(100, 'rel-b', true), release(200, 'rel-c', true)]);
    // Tool calls: a deny, a waived allow, shadow results (one flip allow→deny on TOOL-002).
    await writer.record([
      decision(10, {
        action: 'tool.call',
        resource: ['tool', 'send_email'],
        allow: false,
        controls: ['TOOL-002'],
      }),
      decision(11, {
        action: 'tool.call',
        resource: ['tool', 'send_email'],
        allow: true,
        exceptions: ['exc_1'],
      }),
      decision(12, {
        action: 'tool.call',
        resource: ['tool', 'search'],
        allow: true,
        shadow: { allow: false, controls: ['TOOL-002'] },
      }),
      decision(13, {
        action: 'tool.call',
        resource: ['tool', 'search'],
        allow: true,
        shadow: { allow: true, controls: [] },
      }),
    ]);
    // Undefined OPA data-API paths (no such rule; below a rule): recorded, but no governance figure.
    await writer.record([
      decisionRecord(14, {
        decidedAt: at(14),
        surface: 'data',
        entrypoint: 'no/such/rule',
        allow: false,
        result: null,
        error: { code: 'unknown_entrypoint', message: 'entrypoint no/such/rule is not in the bundle' },
      }),
      decisionRecord(15, {
        decidedAt: at(15),
        surface: 'data',
        entrypoint: 'verdict/decision/nope',
        allow: false,
        result: null,
      }),
    ]);
    await writer.close();

    // A spool replay of a batch already stored: ON CONFLICT DO NOTHING, nothing counted again.
    const { rows: stored } = await test.db.query<Record<string, unknown>>({
      text: `SELECT * FROM decision_log WHERE resource_id = 'rel-b'`,
    });
    const { rowFromDatabase } = await import('../../src/audit/decision-log.ts');
    expect(await storeBatch(test.db, stored.map(rowFromDatabase))).toBe(0);

    // A late record, earlier than rel-c's stored pass: rel-c's first outcome becomes that deny.
    const late = testWriter(test.db);
    await late.record([release(150, 'rel-c', false, ['REL-004'])]);
    await late.close();

    const incremental = {
      rollups: await table('decision_rollup_hourly'),
      gates: await table('release_gates'),
    };
    await test.db.query({ text: 'SELECT verdict_rebuild_kpi_rollups()' });
    expect(await table('decision_rollup_hourly')).toEqual(incremental.rollups);
    expect(await table('release_gates')).toEqual(incremental.gates);

    const gates = (
      await test.db.query<Record<string, unknown>>({
        text: 'SELECT resource_id, first_allow, attempts::int AS attempts FROM release_gates ORDER BY resource_id',
      })
    ).rows;
    expect(gates).toEqual([
      { resource_id: 'rel-a', first_allow: false, attempts: 3 },
      { resource_id: 'rel-b', first_allow: true, attempts: 1 },
      { resource_id: 'rel-c', first_allow: false, attempts: 2 },
    ]);

    const kpis = await computeKpis(test.db, {
      from: new Date(at(0)),
      to: new Date(at(24 * 60)),
      bucket: 'hour',
    });
    expect(kpis.decisions).toMatchObject({ total: 10, denies: 4, deny_rate: 0.4 });
    expect(kpis.decisions.by_entrypoint.map((e) => e.entrypoint)).not.toContain('no/such/rule');
    expect(kpis.decisions.by_entrypoint.map((e) => e.entrypoint)).not.toContain('verdict/decision/nope');
    expect(kpis.decisions.by_control).toEqual([
      { control: 'REL-002', violations: 2, denies: 2 },
      { control: 'REL-003', violations: 1, denies: 1 },
      { control: 'REL-004', violations: 1, denies: 1 },
      { control: 'TOOL-002', violations: 1, denies: 1 },
    ]);
    expect(kpis.release_gates).toMatchObject({
      decisions: 6,
      passes: 3,
      pass_rate: 0.5,
      releases: 3,
      first_attempt_passes: 1,
    });
    expect(kpis.release_gates.first_attempt_pass_rate).toBeCloseTo(1 / 3);
    // rel-a: 90 min from first deny to first allow; rel-c: 50 min.
    expect(kpis.release_gates.time_to_remediate_seconds).toEqual({ count: 2, median: 70 * 60, p90: 86 * 60 });
    expect(kpis.waivers).toMatchObject({ allows: 6, allows_with_waiver: 1 });
    expect(kpis.waivers.share_of_allows_with_waiver).toBeCloseTo(1 / 6);
    expect(kpis.shadow).toEqual({
      evaluated: 2,
      flips: 1,
      flip_rate: 0.5,
      by_control: [{ control: 'TOOL-002', flips: 1, flip_rate: 0.5 }],
    });
    // Hourly series: the points of the hours that had decisions, summing to the totals.
    expect(kpis.series.map((p) => p.start)).toEqual([at(0), at(60), at(120), at(180)]);
    expect(kpis.series.reduce((sum, p) => sum + p.decisions, 0)).toBe(10);
    expect(kpis.series[0]).toMatchObject({
      decisions: 6,
      denies: 3,
      release_decisions: 2,
      release_passes: 0,
    });
  });
});

describe('GET /v1/kpis', () => {
  it('counts a control once per record, however many of its violations the record holds', async () => {
    const writer = testWriter(test.db);
    const dup = (minutes: number, controls: string[]) =>
      decision(minutes, { action: 'tool.dup', resource: ['tool', 'dup'], allow: false, controls });
    await writer.record([
      dup(6000, ['CONTENT-004', 'CONTENT-004']),
      dup(6001, ['CONTENT-004', 'TOOL-002', 'CONTENT-004']),
      dup(6002, ['TOOL-002']),
      dup(6003, []),
    ]);
    await writer.close();
    const counted = async () =>
      (
        await test.db.query<{ control: string; decisions: string }>({
          text: `SELECT control, sum(decisions)::text AS decisions FROM decision_rollup_hourly
                  WHERE action_name = 'tool.dup' GROUP BY control ORDER BY control`,
        })
      ).rows;
    expect(await counted()).toEqual([
      { control: '', decisions: '4' },
      { control: 'CONTENT-004', decisions: '2' },
      { control: 'TOOL-002', decisions: '2' },
    ]);
    // The rebuild from the log counts the same.
    await test.db.query({ text: 'SELECT verdict_rebuild_kpi_rollups()' });
    expect(await counted()).toEqual([
      { control: '', decisions: '4' },
      { control: 'CONTENT-004', decisions: '2' },
      { control: 'TOOL-002', decisions: '2' },
    ]);
  });

  it('answers the report for audit:read, 400 on a bad window or bucket, 403 without the scope', async () => {
    const audit = await buildAuditApp({ db: test.db, bundlePath: contractFixtureBundle() });
    try {
      const ok = await audit.inject({
        method: 'GET',
        url: `/v1/kpis?from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(24 * 60))}&bucket=day`,
      });
      expect(ok.statusCode).toBe(200);
      const body = ok.json();
      expect(body).toMatchObject({ from: at(0), to: at(24 * 60), bucket: 'day' });
      expect(body.decisions.total).toBe(10);
      expect(body.series).toHaveLength(1);
      expect(body.series[0].start).toBe('2026-05-04T00:00:00.000Z');
      for (const url of [
        '/v1/kpis?bucket=month',
        `/v1/kpis?from=${encodeURIComponent(at(60))}&to=${encodeURIComponent(at(0))}`,
        '/v1/kpis?from=2024-01-01&to=2026-01-01',
        '/v1/kpis?from=yesterday',
      ]) {
        const bad = await audit.inject({ method: 'GET', url });
        expect(bad.statusCode, url).toBe(400);
        expect(bad.headers['content-type']).toContain('application/problem+json');
        expect(['invalid_request', 'invalid_time_range', 'invalid_timestamp']).toContain(bad.json().code);
      }
      expect(
        (await audit.inject({ method: 'GET', url: '/v1/kpis' }, ['decisions:evaluate'])).statusCode,
      ).toBe(403);
    } finally {
      await audit.close();
    }
  });
});

describe('waiver KPIs from the waiver store', () => {
  it('counts requests, approvals, revocations and lapses, and the expiry compliance', async () => {
    const audit = await buildAuditApp({ db: test.db, bundlePath: DEFAULT_BUNDLE });
    try {
      const expiresAt = new Date(Date.now() + 2_500).toISOString();
      const waive = async (resource: string) => {
        const requested = await audit.inject(
          {
            method: 'POST',
            url: '/v1/exceptions',
            payload: { control: 'REL-004', resource_id: resource, reason: 'test', expires_at: expiresAt },
          },
          ['exceptions:request'],
          'owner',
        );
        expect(requested.statusCode, requested.body).toBe(201);
        const { id } = requested.json();
        const approved = await audit.inject(
          { method: 'POST', url: `/v1/exceptions/${id}/approve`, payload: {} },
          ['exceptions:approve'],
          'risk',
        );
        expect(approved.json().state).toBe('active');
        return id as string;
      };
      await waive('rel-lapses');
      const closed = await waive('rel-closed');
      const revoked = await audit.inject(
        { method: 'POST', url: `/v1/exceptions/${closed}/revoke`, payload: { reason: 'fixed' } },
        ['exceptions:approve'],
        'risk',
      );
      expect(revoked.statusCode, revoked.body).toBe(200);
      // Let both reach their expiry: one lapsed, one closed before it.
      await new Promise((resolve) => setTimeout(resolve, Date.parse(expiresAt) - Date.now() + 200));
      const kpis = (await audit.inject({ method: 'GET', url: '/v1/kpis?bucket=day' })).json();
      expect(kpis.waivers).toMatchObject({
        requested: 2,
        approved: 2,
        revoked: 1,
        expired: 1,
        expiry_compliance: 0.5,
      });
      expect(kpis.waivers.approval_latency_seconds.count).toBe(2);
    } finally {
      await audit.close();
    }
  });
});

describe('human-approval KPIs from the approval events', () => {
  // A day of its own, far from the other suites' data: 2026-06-01 (UTC).
  const DAY = Date.parse('2026-06-01T00:00:00.000Z');
  const on = (hhmm: string, dayOffset = 0) => {
    const [h, m] = hhmm.split(':').map(Number) as [number, number];
    return new Date(DAY + dayOffset * 86_400_000 + (h * 60 + m) * 60_000);
  };
  /** Appends the approval events in time order, each at its own time, on the grants writer's chain. */
  async function approvalEvents(events: [Date, string, string, string?][]) {
    const sorted = [...events].sort((a, b) => a[0].getTime() - b[0].getTime());
    for (const [when, action, subject, actor = 'alice@example.com'] of sorted) {
      await test.db.transaction((tx) =>
        appendEvent(tx, 'grants-kpi-test', { kind: 'approval', action, actor, subject, payload: {} }, when),
      );
    }
  }

  beforeAll(async () => {
    await approvalEvents([
      // Granted after 2 min, and used once (a use is not a decision).
      [on('10:00'), 'request', 'apr_1', 'svc-agent'],
      [on('10:02'), 'grant', 'apr_1'],
      [on('10:05'), 'use', 'apr_1', 'svc-agent'],
      // Granted after 10 min.
      [on('10:10'), 'request', 'apr_2', 'svc-agent'],
      [on('10:20'), 'grant', 'apr_2'],
      // Denied.
      [on('10:30'), 'request', 'apr_3', 'svc-agent'],
      [on('10:31'), 'deny', 'apr_3'],
      // Lapsed without a decision: expired when its binding was asked again.
      [on('10:40'), 'request', 'apr_4', 'svc-agent'],
      [on('11:40'), 'expire', 'apr_4', 'system'],
      // Still pending.
      [on('11:00'), 'request', 'apr_5', 'svc-agent'],
      // Requested the evening before, granted in the window after 2 h: a grant and a latency of the
      // window, not a request of it.
      [on('23:00', -1), 'request', 'apr_6', 'svc-agent'],
      [on('01:00'), 'grant', 'apr_6'],
      // Requested in the window, granted the day after: a request of the window only.
      [on('23:30'), 'request', 'apr_7', 'svc-agent'],
      [on('00:30', 1), 'grant', 'apr_7'],
    ]);
    // A waiver's events are not approvals.
    await test.db.transaction((tx) =>
      appendEvent(
        tx,
        'grants-kpi-test',
        { kind: 'exception', action: 'request', actor: 'owner', subject: 'exc_1', payload: {} },
        on('12:00'),
      ),
    );
  });

  it('counts requests, grants, denials and expiries of the window, and the time to grant', async () => {
    const kpis = await computeKpis(test.db, { from: on('00:00'), to: on('00:00', 1), bucket: 'day' });
    expect(kpis.approvals).toEqual({
      requested: 6,
      granted: 3,
      denied: 1,
      expired: 1,
      // Request → grant of apr_1, apr_2, apr_6: 120 s, 600 s, 7200 s (percentile_cont interpolates).
      latency_seconds: { count: 3, median: 600, p90: 600 + 0.8 * (7200 - 600) },
    });
  });

  it('takes the window in whole hours, and an empty window answers zeros and null percentiles', async () => {
    // 10:15–10:35 widens to 10:00–11:00: apr_1..apr_4 requested, apr_1 and apr_2 granted, apr_3 denied
    // (apr_4 expires at 11:40, outside).
    const hour = await computeKpis(test.db, {
      from: new Date(on('10:15').getTime()),
      to: new Date(on('10:35').getTime()),
      bucket: 'hour',
    });
    expect(hour.from).toBe(on('10:00').toISOString());
    expect(hour.to).toBe(on('11:00').toISOString());
    expect(hour.approvals).toEqual({
      requested: 4,
      granted: 2,
      denied: 1,
      expired: 0,
      latency_seconds: { count: 2, median: 360, p90: 120 + 0.9 * (600 - 120) },
    });
    const empty = await computeKpis(test.db, { from: on('00:00', 3), to: on('00:00', 4), bucket: 'day' });
    expect(empty.approvals).toEqual({
      requested: 0,
      granted: 0,
      denied: 0,
      expired: 0,
      latency_seconds: { count: 0, median: null, p90: null },
    });
  });

  it('GET /v1/kpis reports the same approval figures', async () => {
    const audit = await buildAuditApp({ db: test.db, bundlePath: contractFixtureBundle() });
    try {
      const from = encodeURIComponent(on('00:00').toISOString());
      const to = encodeURIComponent(on('00:00', 1).toISOString());
      const response = await audit.inject({
        method: 'GET',
        url: `/v1/kpis?from=${from}&to=${to}&bucket=day`,
      });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().approvals).toMatchObject({
        requested: 6,
        granted: 3,
        denied: 1,
        expired: 1,
        latency_seconds: { count: 3, median: 600 },
      });
    } finally {
      await audit.close();
    }
  });
});
