import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { impactPageSql } from '../../src/audit/decision-log.ts';
import { verifyEvents } from '../../src/audit/event-log.ts';
import { parseFilter } from '../../src/audit/queries.ts';
import { ImpactAnalyzer } from '../../src/bundles/impact.ts';
import { insertImpactRunSql } from '../../src/bundles/impact-sql.ts';
import { RevisionStore } from '../../src/bundles/revisions.ts';
import { canonicalJson, inputDigest } from '../../src/decisions/canonical-json.ts';
import type { Database, PostgresConnection, Queryable, Sql } from '../../src/store/types.ts';
import { generateEnvelopes } from '../support/envelopes.ts';
import { startOpaServer } from '../support/opa-server.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

// Integration, against the real OPA CLI: decisions recorded by a Verdict on its own database, a
// candidate built by `opa build` from a changed copy of policies/, and the report checked against
// what `opa eval` computes from the very inputs the log recorded.

const root = path.resolve(import.meta.dirname, '../..');
const ENTRYPOINTS = [
  'verdict/decision',
  'verdict/tool/decision',
  'verdict/release/decision',
  'verdict/data/decision',
  'system/log/mask',
];
const RECORDS = 3_000;

type Direction = 'allow_to_deny' | 'deny_to_allow';

/** A copy of policies/ (sources only) with `change` applied to data.json, in a temp dir. */
function policyCopy(name: string, change: (data: Record<string, any>) => void): string {
  const dir = mkdtempSync(path.join(tmpdir(), `verdict-impact-${name}-`));
  const src = path.join(dir, 'policies');
  cpSync(path.join(root, 'policies'), src, {
    recursive: true,
    filter: (from) =>
      !from.includes(`${path.sep}bundle`) && !from.includes(`${path.sep}tests`) && !from.endsWith('.md'),
  });
  const data = JSON.parse(readFileSync(path.join(src, 'data.json'), 'utf8'));
  change(data);
  writeFileSync(path.join(src, 'data.json'), JSON.stringify(data));
  return src;
}

/** `opa build -t wasm` of a policy directory, with the default bundle's entrypoints. */
function opaBuild(src: string, revision: string): Buffer {
  const out = path.join(path.dirname(src), `${revision}.tar.gz`);
  writeFileSync(
    path.join(src, '.manifest'),
    JSON.stringify({ roots: ['verdict', 'verdict_data', 'system/log'] }),
  );
  const args = ['build', '-t', 'wasm', '-b', src, '--revision', revision, '-o', out];
  for (const e of ENTRYPOINTS) args.push('-e', e);
  execFileSync('opa', args, { stdio: 'pipe' });
  rmSync(path.join(src, '.manifest'));
  return readFileSync(out);
}

/**
 * What OPA itself says the candidate decides on each input: `opa run --server` on the candidate's
 * sources, one `POST /v1/data/verdict/decision` per recorded input; allow and violated controls.
 */
async function opaDecisions(
  src: string,
  inputs: { id: string; input: unknown }[],
): Promise<Map<string, { allow: boolean; controls: string[] }>> {
  const opa = await startOpaServer(src);
  try {
    const out = new Map<string, { allow: boolean; controls: string[] }>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < inputs.length) {
          const { id, input } = inputs[next++] as (typeof inputs)[number];
          const res = await fetch(`${opa.url}/v1/data/verdict/decision`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ input }),
          });
          const d = (await res.json()).result as { allow: boolean; violations: { control: string }[] };
          out.set(id, {
            allow: d.allow === true,
            controls: [...new Set(d.violations.map((v) => v.control))],
          });
        }
      }),
    );
    return out;
  } finally {
    await opa.stop();
  }
}

describe('impact analysis (issue 22)', () => {
  let tv: TestVerdict;
  let writer: string;
  let reader: string;
  let candidateSrc: string;
  let candidate: string;
  let sameAsActive: string;
  let failing: string;
  let waived: string;
  let start: string;
  /** Decisions recorded in the window (the waived one included). */
  let recorded = 1;
  /** The decision a human approval allowed (its approval is used up now). */
  let approvedId: string;

  const call = async (method: string, url: string, token: string, body?: unknown) => {
    const res = await fetch(`${tv.url}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined
          ? {}
          : { 'content-type': Buffer.isBuffer(body) ? 'application/gzip' : 'application/json' }),
      },
      body:
        body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  };
  const upload = async (bytes: Buffer) => {
    const res = await call('POST', '/v1/bundles', writer, bytes);
    expect([200, 201]).toContain(res.status);
    return (res.json.digest as string).slice(7);
  };
  const finished = async (id: string) => {
    for (let i = 0; i < 600; i++) {
      const res = await call('GET', `/v1/bundles/impact/${id}`, reader);
      expect(res.status).toBe(200);
      if (res.json.state !== 'running') return res.json;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`run ${id} did not finish`);
  };
  const run = async (digest: string, body: Record<string, unknown> = {}) => {
    const res = await call('POST', `/v1/bundles/${digest}/impact`, writer, { from: start, ...body });
    expect(res.status).toBe(202);
    expect(res.json.status_url).toBe(`/v1/bundles/impact/${res.json.id}`);
    return finished(res.json.id);
  };

  beforeAll(async () => {
    tv = await startTestVerdict('impact');
    writer = tv.token('policy-author', ['bundles:write', 'bundles:read']);
    reader = tv.token('auditor', ['audit:read']);
    const agent = tv.token('svc-agent-runtime', ['decisions:evaluate']);
    start = new Date(Date.now() - 1000).toISOString();

    // A waiver of TOOL-001 for code-agent, requested and approved by two people.
    const requester = tv.token('dev-lead@example.com', ['exceptions:request'], true);
    const approver = tv.token('ciso@example.com', ['exceptions:approve'], true);
    const created = await call('POST', '/v1/exceptions', requester, {
      control: 'TOOL-001',
      subject_id: 'code-agent',
      action: 'tool.call',
      reason: 'migration in progress',
      compensating_controls: ['sandboxed runner'],
      ticket: { system: 'jira', key: 'SEC-7' },
      expires_at: new Date(Date.now() + 5 * 86_400_000).toISOString(),
    });
    expect(created.status).toBe(201);
    const approved = await call('POST', `/v1/exceptions/${created.json.id}/approve`, approver, {
      reason: 'ok',
    });
    expect(approved.json.state).toBe('active');
    const offList = {
      subject: { type: 'agent', id: 'code-agent' },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 'search_kb', properties: {} },
      context: { session: { untrusted_content: false, tool_calls: 1 } },
    };
    let decided: { allow: boolean; decision_id: string; exceptions: string[] } | null = null;
    for (let i = 0; i < 100 && !decided?.allow; i++) {
      decided = (await call('POST', '/v1/decisions', agent, offList)).json;
      if (!decided?.allow) await new Promise((r) => setTimeout(r, 20));
    }
    expect(decided?.exceptions).toEqual([created.json.id]);
    waived = decided?.decision_id as string;

    // A human approval: denied with a request, granted, used once (allowed), then used up (denied).
    const deploy = {
      subject: { type: 'agent', id: 'ops-agent', properties: { on_behalf_of: 'user:42' } },
      action: { name: 'tool.call' },
      resource: {
        type: 'tool',
        id: 'deploy_service',
        properties: { arguments: { service: 'billing', version: '2.4.1' } },
      },
      context: { session: { tool_calls: 1 }, user: { id: 'user:42', entitlements: ['ops:deploy'] } },
    };
    const asked = (await call('POST', '/v1/decisions', agent, deploy)).json;
    expect(asked.allow).toBe(false);
    const human = tv.token('alice', ['approvals:grant'], true);
    const granted = await call('POST', `/v1/approvals/${asked.approval_request.id}/approve`, human, {
      reason: 'ok',
    });
    expect(granted.json.state).toBe('granted');
    const retry = { ...deploy, context: { ...deploy.context, approval_id: asked.approval_request.id } };
    const used = (await call('POST', '/v1/decisions', agent, retry)).json;
    expect(used.allow).toBe(true);
    approvedId = used.decision_id;
    const usedUp = (await call('POST', '/v1/decisions', agent, retry)).json;
    expect(usedUp.allow).toBe(false);
    recorded += 3;

    // Thousands of mixed decisions: agents, tools, budgets, releases, data reads, unknown actions.
    const envelopes = generateEnvelopes(RECORDS, 22);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < envelopes.length) {
          const { subject, action, resource, context } = envelopes[next++] as (typeof envelopes)[number];
          const res = await call('POST', '/v1/decisions', agent, { subject, action, resource, context });
          // Some generated envelopes are malformed on purpose: refused (400), never recorded.
          expect([200, 400]).toContain(res.status);
          if (res.status === 200) recorded += 1;
        }
      }),
    );
    // Today's grants differ from the recorded ones: the waiver is revoked.
    const revoked = await call('POST', `/v1/exceptions/${created.json.id}/revoke`, approver, {
      reason: 'done',
    });
    expect(revoked.status).toBe(200);

    // The candidate: support-bot loses send_email, research-agent gains shell, a bundled
    // waiver of TOOL-005 for code-agent, TOOL-001 unwaivable.
    candidateSrc = policyCopy('candidate', (data) => {
      const agents = data.verdict_data.agents;
      agents['support-bot'].tools = agents['support-bot'].tools.filter((t: string) => t !== 'send_email');
      agents['research-agent'].tools.push('shell');
      data.verdict_data.exceptions = [
        {
          id: 'exc-impact-candidate',
          control: 'TOOL-005',
          subject_id: 'code-agent',
          approved: true,
          expires_at: '2099-01-01T00:00:00Z',
        },
      ];
      data.verdict_data.controls['TOOL-001'].waivable = false;
    });
    candidate = await upload(opaBuild(candidateSrc, 'impact-candidate'));
    sameAsActive = await upload(
      opaBuild(
        policyCopy('same', () => {}),
        'impact-same',
      ),
    );
    // A candidate whose decision is a conflict on every input: an evaluation error, fail closed.
    const broken = policyCopy('failing', () => {});
    writeFileSync(
      path.join(broken, 'verdict.rego'),
      `${readFileSync(path.join(broken, 'verdict.rego'), 'utf8')}
# impact test: a second value for every decision, a conflict (an evaluation error) on every input
decision := {"allow": true, "violations": [], "obligations": [], "exceptions": ["conflict"]} if input.action
`,
    );
    failing = await upload(opaBuild(broken, 'impact-failing'));
  }, 180_000);
  afterAll(async () => {
    await tv?.close();
  });

  it('reports exactly the flips and per-control counts that OPA computes from the recorded inputs', async () => {
    const report = await run(candidate);
    const { rows } = await tv.database.db.query<{
      id: string;
      allow: boolean;
      violated_controls: string[];
      input: unknown;
      input_sha256: string;
      error: { code: string } | null;
    }>({
      text: `SELECT id::text AS id, allow, violated_controls, input, input_sha256, error FROM decision_log
             WHERE entrypoint = 'verdict/decision' AND decided_at >= $1 ORDER BY decided_at, id`,
      values: [start],
    });
    expect(rows.length).toBe(recorded);
    const opa = await opaDecisions(
      candidateSrc,
      rows.map((r) => ({ id: r.id, input: r.input })),
    );
    const flips = new Map<Direction, Set<string>>([
      ['allow_to_deny', new Set()],
      ['deny_to_allow', new Set()],
    ]);
    const byControl = new Map<string, number>();
    for (const r of rows) {
      const d = opa.get(r.id) as { allow: boolean; controls: string[] };
      if (d.allow === r.allow) continue;
      const direction: Direction = r.allow ? 'allow_to_deny' : 'deny_to_allow';
      flips.get(direction)?.add(r.id);
      const controls = r.allow
        ? d.controls
        : [...new Set(r.violated_controls)].filter((c) => !d.controls.includes(c));
      for (const c of controls)
        byControl.set(`${direction} ${c}`, (byControl.get(`${direction} ${c}`) ?? 0) + 1);
    }
    expect(report.state).toBe('done');
    expect(report).toMatchObject({ total: recorded, evaluated: recorded, skipped: 0 });
    expect(report.flips.map((f: { direction: Direction; count: number }) => [f.direction, f.count])).toEqual([
      ['allow_to_deny', flips.get('allow_to_deny')?.size],
      ['deny_to_allow', flips.get('deny_to_allow')?.size],
    ]);
    expect(report.unchanged).toBe(
      recorded - (flips.get('allow_to_deny')?.size ?? 0) - (flips.get('deny_to_allow')?.size ?? 0),
    );
    expect((flips.get('allow_to_deny')?.size ?? 0) > 0 && (flips.get('deny_to_allow')?.size ?? 0) > 0).toBe(
      true,
    );
    const reported = new Map<string, number>(
      report.by_control.map((c: { direction: string; control: string; count: number }) => [
        `${c.direction} ${c.control}`,
        c.count,
      ]),
    );
    expect(reported).toEqual(byControl);
    for (const f of report.flips)
      for (const id of f.sample_ids) expect(flips.get(f.direction)?.has(id)).toBe(true);
    // Masking is reported, never hidden: the count is the records whose stored input is not the one decided on.
    const masked = rows.filter(
      (r) => r.error?.code !== 'approval_unusable' && inputDigest(canonicalJson(r.input)) !== r.input_sha256,
    ).length;
    expect(report.masked).toBe(masked);
    // The decision the waiver allowed flips: the candidate no longer honours a TOOL-001 waiver.
    expect(flips.get('allow_to_deny')?.has(waived)).toBe(true);
    expect(opa.get(waived)?.controls).toContain('TOOL-001');
  }, 120_000);

  it('uses the grants recorded in the input, not today’s: the same policy flips nothing after the waiver is revoked and the approval used up', async () => {
    const report = await run(sameAsActive);
    expect(report.state).toBe('done');
    expect(report.flips.map((f: { count: number }) => f.count)).toEqual([0, 0]);
    // The approval-allowed decision is re-evaluated with the approval as recorded (granted, unused),
    // not as it is today (used up): it stays allowed.
    expect(report.unchanged).toBe(recorded);
    const approvedRecord = await call('GET', `/v1/decisions/${approvedId}`, reader);
    expect(approvedRecord.json.input.grants.approval).toMatchObject({ state: 'granted' });
  }, 60_000);

  it('counts a failing candidate’s evaluations as denies and reports the error', async () => {
    const report = await run(failing);
    expect(report.state).toBe('done');
    expect(report.errors.length).toBe(1);
    expect(report.errors[0].count).toBe(recorded);
    expect(report.flips[1].count).toBe(0);
    const allowed = report.evaluated - report.unchanged;
    expect(allowed).toBeGreaterThan(0);
    expect(report.by_control).toEqual([
      expect.objectContaining({ direction: 'allow_to_deny', control: 'EVAL-ERROR', count: allowed }),
    ]);
  }, 60_000);

  it('answers an empty window and a window of another entrypoint with nothing evaluated', async () => {
    const empty = await run(candidate, { from: '2020-01-01T00:00:00Z', to: '2020-02-01T00:00:00Z' });
    expect(empty).toMatchObject({ state: 'done', total: 0, evaluated: 0, skipped: 0, unchanged: 0 });
    const other = await run(candidate, { filters: { entrypoint: 'verdict/release/decision' } });
    expect(other).toMatchObject({
      state: 'done',
      total: 0,
      evaluated: 0,
      entrypoint: 'verdict/release/decision',
    });
    const narrowed = await run(candidate, { filters: { subject_id: 'code-agent', action: 'tool.call' } });
    expect(narrowed.total).toBeGreaterThan(0);
    expect(narrowed.total).toBeLessThan(recorded);
  }, 60_000);

  it('refuses a candidate without the entrypoint (400), an unknown digest (404) and a bad window (400)', async () => {
    const missing = await call('POST', `/v1/bundles/${candidate}/impact`, writer, {
      filters: { entrypoint: 'verdict/nowhere' },
    });
    expect(missing.status).toBe(400);
    expect(missing.json.code).toBe('impact_missing_entrypoint');
    const unknown = await call('POST', `/v1/bundles/${'0'.repeat(64)}/impact`, writer, {});
    expect(unknown.status).toBe(404);
    expect(unknown.json.code).toBe('bundle_not_found');
    const window = await call('POST', `/v1/bundles/${candidate}/impact`, writer, { from: 'yesterday' });
    expect(window.status).toBe(400);
    // The body is a JSON object, `{}` for the defaults.
    const bodiless = await call('POST', `/v1/bundles/${candidate}/impact`, writer);
    expect(bodiless.status).toBe(400);
    expect(bodiless.json.code).toBe('invalid_request');
    const scope = await call('POST', `/v1/bundles/${candidate}/impact`, reader, {});
    expect(scope.status).toBe(403);
  });

  it('records the start and the end of every run as chained policy events', async () => {
    const report = await run(candidate, { filters: { subject_type: 'agent' } });
    const events = await call('GET', '/v1/bundles/events?action=impact_finish', reader);
    const finish = events.json.events.find(
      (e: { payload: { run_id: string } }) => e.payload.run_id === report.id,
    );
    expect(finish).toMatchObject({ actor: 'policy-author', subject: `sha256:${candidate}` });
    expect(finish.payload).toMatchObject({ state: 'done', evaluated: report.evaluated });
    const starts = await call('GET', '/v1/bundles/events?action=impact_start', reader);
    const begun = starts.json.events.find(
      (e: { payload: { run_id: string } }) => e.payload.run_id === report.id,
    );
    expect(begun.payload).toMatchObject({ from: start, filters: { subject_type: 'agent' } });
    expect((await verifyEvents(tv.database.db)).ok).toBe(true);
    const listed = await call('GET', `/v1/bundles/impact?digest=${candidate}`, reader);
    expect(listed.json.runs.map((r: { id: string }) => r.id)).toContain(report.id);
  }, 60_000);

  describe('on a second, slow replica (small pages, one worker)', () => {
    const slow = (id: string) =>
      new ImpactAnalyzer({
        db: tv.database.db,
        revisions: new RevisionStore(tv.database.db),
        replicaId: id,
        defaultEntrypoint: 'verdict/decision',
        workers: 1,
        pageSize: 5,
        progressMs: 0,
      });

    it('pages by stored bytes as well as by count: a budget below one record (one record a page) reports what the defaults report', async () => {
      const filters = { subject_id: 'code-agent' };
      const whole = await run(candidate, { filters });
      expect(whole.evaluated).toBeGreaterThan(7);
      // The byte budget cuts the page: 7 records read, the first kept (one record always fits).
      const filter = parseFilter({ ...filters, from: start, to: new Date().toISOString() });
      filter.entrypoint = 'verdict/decision';
      const { rows } = await tv.database.db.query<{ scanned: number; count: number; records: string }>(
        impactPageSql(filter, null, 7, 1),
      );
      expect(rows[0]).toMatchObject({ scanned: 7, count: 1 });
      expect(JSON.parse(rows[0]?.records ?? '[]')).toHaveLength(1);
      const analyzer = new ImpactAnalyzer({
        db: tv.database.db,
        revisions: new RevisionStore(tv.database.db),
        replicaId: 'replica-bytes',
        defaultEntrypoint: 'verdict/decision',
        workers: 1,
        pageSize: 7,
        pageBytes: 1,
      });
      const begun = await analyzer.start({
        digest: `sha256:${candidate}`,
        from: start,
        to: whole.to,
        filters,
        actor: 'tester',
      });
      await analyzer.settled();
      const paged = await analyzer.get(begun.id);
      await analyzer.close();
      expect(paged).toMatchObject({
        state: 'done',
        total: whole.total,
        evaluated: whole.evaluated,
        skipped: whole.skipped,
        unchanged: whole.unchanged,
      });
      expect(paged?.flips.map((f) => [f.direction, f.count, f.sampleIds])).toEqual(
        whole.flips.map((f: { direction: string; count: number; sample_ids: string[] }) => [
          f.direction,
          f.count,
          f.sample_ids,
        ]),
      );
    }, 60_000);

    it('reads the pages in the worker threads on Postgres: this thread runs no page query, and the report is the one its own reads give', async () => {
      const filters = { subject_id: 'code-agent' };
      const whole = await run(candidate, { filters });
      // The analyzer's database as this thread sees it: every statement run here is logged.
      const watched = (connection: PostgresConnection | null) => {
        const texts: string[] = [];
        const inner = tv.database.db;
        const log = (q: Queryable): Queryable => ({
          query: (sql: Sql) => {
            texts.push(sql.text);
            return q.query(sql);
          },
          exec: (script) => q.exec(script),
        });
        const direct = log(inner);
        const db = {
          kind: inner.kind,
          connection,
          query: direct.query,
          exec: direct.exec,
          transaction: (work) => inner.transaction((tx) => work(log(tx))),
          ping: () => inner.ping(),
          close: async () => {},
        } as Database;
        return { db, texts };
      };
      const analysed = async (connection: PostgresConnection | null, workers = 2) => {
        const { db, texts } = watched(connection);
        const analyzer = new ImpactAnalyzer({
          db,
          revisions: new RevisionStore(db),
          replicaId: `replica-reads-${connection ? 'workers' : 'main'}-${workers}`,
          defaultEntrypoint: 'verdict/decision',
          workers,
          pageSize: 3,
          progressMs: 50,
        });
        const begun = await analyzer.start({
          digest: `sha256:${candidate}`,
          from: start,
          to: whole.to,
          filters,
          actor: 'tester',
        });
        await analyzer.settled();
        const report = await analyzer.get(begun.id);
        await analyzer.close();
        expect(report).toMatchObject({
          state: 'done',
          total: whole.total,
          evaluated: whole.evaluated,
          skipped: whole.skipped,
          unchanged: whole.unchanged,
        });
        // Pages of 3 over two workers: the samples are still the window's first flips, in order.
        expect(report?.flips.map((f) => [f.direction, f.count, f.sampleIds])).toEqual(
          whole.flips.map((f: { direction: string; count: number; sample_ids: string[] }) => [
            f.direction,
            f.count,
            f.sample_ids,
          ]),
        );
        return texts.filter((text) => text.includes('json_agg(page')).length;
      };
      expect(tv.database.db.connection).toMatchObject({ url: tv.database.url });
      // The workers read over connections of their own: no page query on this thread.
      expect(await analysed(tv.database.db.connection)).toBe(0);
      // One worker: each read starts while it evaluates the page before; the same pages, the same report.
      expect(await analysed(tv.database.db.connection, 1)).toBe(0);
      // The same database without a connection for other threads (as PGlite): this thread reads
      // every page, and the log above sees them.
      expect(await analysed(null)).toBeGreaterThanOrEqual(Math.ceil(whole.evaluated / 3));
    }, 60_000);

    it('runs one at a time per replica (409 impact_busy) and is cancelled from another replica', async () => {
      const analyzer = slow('replica-b');
      const first = await analyzer.start({ digest: `sha256:${candidate}`, from: start, actor: 'tester' });
      await expect(
        analyzer.start({ digest: `sha256:${candidate}`, from: start, actor: 'tester' }),
      ).rejects.toMatchObject({ code: 'impact_busy', kind: 'conflict' });
      const cancelled = await call('DELETE', `/v1/bundles/impact/${first.id}`, writer);
      expect(cancelled.status).toBe(200);
      expect(cancelled.json.state).toBe('cancelled');
      await analyzer.settled();
      const after = await call('GET', `/v1/bundles/impact/${first.id}`, reader);
      expect(after.json).toMatchObject({ state: 'cancelled', error: { code: 'impact_cancelled' } });
      expect(after.json.evaluated).toBeLessThan(recorded);
      const again = await call('DELETE', `/v1/bundles/impact/${first.id}`, writer);
      expect(again.status).toBe(409);
      expect(again.json.code).toBe('impact_not_running');
      await analyzer.close();
    }, 60_000);

    it('marks a run failed when its replica stops, and when a replica dies its lease expires', async () => {
      const analyzer = slow('replica-c');
      const begun = await analyzer.start({ digest: `sha256:${candidate}`, from: start, actor: 'tester' });
      await analyzer.close();
      const stopped = await call('GET', `/v1/bundles/impact/${begun.id}`, reader);
      expect(stopped.json).toMatchObject({ state: 'failed', error: { code: 'replica_stopped' } });

      // A replica that died mid-run: its row says running, its heartbeat is an hour old.
      const id = '01890000-0000-7000-8000-000000000022';
      await tv.database.db.query(
        insertImpactRunSql({
          id,
          digest: `sha256:${candidate}`,
          actor: 'tester',
          replicaId: 'replica-dead',
          from: start,
          to: new Date().toISOString(),
          filters: {},
          entrypoint: 'verdict/decision',
        }),
      );
      await tv.database.db.query({
        text: `UPDATE impact_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1`,
        values: [id],
      });
      const lost = await call('GET', `/v1/bundles/impact/${id}`, reader);
      expect(lost.json).toMatchObject({ state: 'failed', error: { code: 'replica_lost' } });
      const events = await call('GET', '/v1/bundles/events?action=impact_finish', reader);
      expect(
        events.json.events.some(
          (e: { actor: string; payload: { run_id: string } }) =>
            e.payload.run_id === id && e.actor === 'system',
        ),
      ).toBe(true);
    }, 60_000);
  });
});
