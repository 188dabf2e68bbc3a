import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECISION_COLUMNS } from '../../src/audit/decision-log.ts';
import { exportDecisions } from '../../src/audit/export.ts';
import { DecisionLogReader } from '../../src/audit/queries.ts';
import type { Caller } from '../../src/decisions/types.ts';
import type { Queryable } from '../../src/store/types.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { type AuditTestApp, buildAuditApp, steppingClock } from './queries.support.ts';

const TOTAL = 20_000;
const caller: Caller = { sub: 'exporter', iss: null, clientId: null, scopes: [] };
let database: TestDatabase;
let audit: AuditTestApp;
let base: string;

beforeAll(async () => {
  database = await createTestDatabase('audit_export');
  audit = await buildAuditApp({
    db: database.db,
    bundlePath: contractFixtureBundle(),
    clock: steppingClock('2026-02-01T00:00:00.000Z'),
  });
  // Awkward values for CSV: a comma, quotes and a newline; a spreadsheet formula.
  const special = [
    {
      subject: { type: 'user', id: 'a,"b"\nc' },
      action: { name: 'read' },
      resource: { type: 'doc', id: '=HYPERLINK("x")' },
    },
  ];
  const [template] = await audit.decisions.decideMany([
    { surface: 'native', entrypoint: 'verdict/decision', input: special[0], caller, traceId: null },
  ]);
  // The other records are copies made server-side (one statement instead of 20k evaluations): the
  // export reads rows, and how they were made does not matter to it. One per millisecond after the
  // first, a fifth of them writes.
  await database.db.query({
    text: `INSERT INTO decision_log (${DECISION_COLUMNS.join(', ')})
           SELECT gen_random_uuid(), d.decided_at + make_interval(secs => i / 1000.0), d.writer_id, d.seq + i,
                  d.prev_hash, d.hash, d.surface, d.caller_sub, d.caller, d.entrypoint, d.bundle_revision,
                  d.bundle_digest, 'agent', 'a' || (i % 97), CASE WHEN i % 5 = 0 THEN 'write' ELSE 'read' END,
                  'doc', 'd' || i, d.allow, d.violated_controls, d.result, d.input, d.input_sha256, d.exceptions,
                  d.shadow, d.eval_micros, d.trace_id, d.error
             FROM decision_log d, generate_series(1, $2::int) AS i WHERE d.id = $1`,
    values: [template!.id, TOTAL - 1],
  });
  const address = await audit.app.listen({ port: 0, host: '127.0.0.1' });
  base =
    typeof address === 'string' ? address : `http://127.0.0.1:${(address as unknown as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await audit?.close();
  await database?.drop();
});

async function fetchExport(query: string): Promise<{ text: string; chunks: number; type: string | null }> {
  const response = await fetch(`${base}/v1/audit/export?${query}`, {
    headers: { authorization: `Bearer ${audit.token()}` },
  });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let chunks = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks += 1;
    text += decoder.decode(value, { stream: true });
  }
  return { text, chunks, type: response.headers.get('content-type') };
}

describe('GET /v1/audit/export', () => {
  it('streams every record as NDJSON, oldest first', async () => {
    const { text, chunks, type } = await fetchExport('format=ndjson');
    expect(type).toContain('application/x-ndjson');
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(TOTAL);
    const first = JSON.parse(lines[0]!);
    expect(first.subject_id).toBe('a,"b"\nc');
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);
    const times = lines.map((line) => JSON.parse(line).decided_at as string);
    expect([...times].sort()).toEqual(times);
    // Arrived in many chunks: the response was streamed, not assembled first.
    expect(chunks).toBeGreaterThan(5);
  });

  it('streams CSV with a header row, quoting and formula escaping', async () => {
    const { text, type } = await fetchExport('format=csv');
    expect(type).toContain('text/csv');
    expect(text.startsWith('id,decided_at,surface,caller_sub,')).toBe(true);
    // The subject id with a comma, quotes and a newline is one quoted cell.
    expect(text).toContain(',"a,""b""\nc",');
    // A cell that a spreadsheet would run as a formula is defused.
    expect(text).toContain(`'=HYPERLINK`);
    // Header + one line per record (+ the one embedded newline).
    expect(text.trimEnd().split('\n')).toHaveLength(TOTAL + 2);
  });

  it('applies filters and the time window', async () => {
    const { text } = await fetchExport('format=ndjson&action=write&to=2026-02-01T00:00:05.000Z');
    const lines = text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.length).toBeGreaterThan(0);
    for (const record of lines) {
      expect(record.action_name).toBe('write');
      expect(record.decided_at < '2026-02-01T00:00:05.000Z').toBe(true);
    }
    // Decisions 0..4999 ms: 1 in 5 is a write, but for decision 0 (the special read).
    expect(lines).toHaveLength(999);
  });

  it('refuses a bad format or filter with a problem', async () => {
    const format = await audit.inject({ method: 'GET', url: '/v1/audit/export?format=xml' });
    expect(format.statusCode).toBe(400);
    const from = await audit.inject({ method: 'GET', url: '/v1/audit/export?from=soon' });
    expect(from.json().code).toBe('invalid_timestamp');
  });

  it('reads pages only as fast as the consumer takes them (constant memory)', async () => {
    let queries = 0;
    const counting: Queryable = {
      query: (sql) => {
        queries += 1;
        return database.db.query(sql);
      },
      exec: (script) => database.db.exec(script),
    };
    const stream = exportDecisions(new DecisionLogReader(counting), {}, 'ndjson', { pageSize: 500 });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    // Let the stream read ahead as far as it wants to.
    await new Promise((resolve) => setTimeout(resolve, 200));
    // One page delivered, at most one or two more buffered, out of 40.
    expect(queries).toBeLessThanOrEqual(3);
    let lines = 0;
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
      lines += String(step.value).split('\n').length - 1;
    }
    expect(lines + 500).toBe(TOTAL);
    expect(queries).toBe(TOTAL / 500 + 1);
  });
});
