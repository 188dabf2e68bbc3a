/**
 * SIEM export on real Postgres: `format=ocsf` (OCSF API Activity, the required fields checked) and
 * `format=splunk-hec`; and the forwarder against a local receiver that fails and drops connections
 * at random — every record arrives, in order per writer, duplicates are only re-sends, and a
 * restarted forwarder resumes from the cursor stored in Postgres.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SiemForwarder } from '../../src/audit/siem-forwarder.ts';
import type { Caller } from '../../src/decisions/types.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { ocsfValidator } from '../support/ocsf.ts';
import { type AuditTestApp, buildAuditApp, steppingClock } from './queries.support.ts';
import { decisionRecords, testWriter } from './records.support.ts';

const caller: Caller = {
  sub: 'svc-agent-runtime',
  iss: null,
  clientId: null,
  scopes: ['decisions:evaluate'],
};
let database: TestDatabase;
let audit: AuditTestApp;

beforeAll(async () => {
  database = await createTestDatabase('siem');
  audit = await buildAuditApp({
    db: database.db,
    bundlePath: contractFixtureBundle(),
    clock: steppingClock('2026-03-01T00:00:00.000Z'),
  });
  await audit.decisions.decideMany([
    {
      surface: 'native',
      entrypoint: 'verdict/decision',
      input: {
        subject: { type: 'agent', id: 'support-bot' },
        action: { name: 'tool.call' },
        resource: {
          type: 'tool',
          id: 'send_email',
          properties: { model: { name: 'llama-3.1-8b', provider: 'Meta' } },
        },
      },
      caller,
      traceId: 'trace-1',
    },
    {
      surface: 'native',
      entrypoint: 'verdict/decision',
      input: {
        subject: { type: 'user', id: 'u1' },
        action: { name: 'data.read' },
        resource: { type: 'dataset', id: 'd1' },
      },
      caller,
      traceId: null,
    },
  ]);
}, 60_000);

afterAll(async () => {
  await audit?.close();
  await database?.drop();
});

// The schema's own definitions, vendored from ocsf/ocsf-schema (test/fixtures/ocsf-1.9.0/README.md).
const apiActivity = ocsfValidator('api_activity');

const lines = (text: string) =>
  text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, any>);

describe('GET /v1/audit/export?format=ocsf', () => {
  it('answers OCSF API Activity events with every required field, the decision in actor.authorizations', async () => {
    const response = await audit.inject({ method: 'GET', url: '/v1/audit/export?format=ocsf' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('application/x-ndjson');
    expect(response.headers['content-disposition']).toContain('decisions.ocsf.ndjson');
    const events = lines(response.body);
    const records = lines((await audit.inject({ method: 'GET', url: '/v1/audit/export' })).body);
    expect(events).toHaveLength(records.length);
    expect(events.length).toBeGreaterThanOrEqual(2);
    events.forEach((event, i) => {
      const record = records[i]!;
      // Base event and classification: required of every OCSF event.
      expect(event.class_uid).toBe(6003);
      expect(event.category_uid).toBe(6);
      expect(Number.isInteger(event.activity_id)).toBe(true);
      expect(event.type_uid).toBe(event.class_uid * 100 + event.activity_id);
      expect(Number.isInteger(event.severity_id)).toBe(true);
      expect(event.time).toBe(Date.parse(record.decided_at));
      expect(event.metadata.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(event.metadata.product.name).toBe('Verdict');
      expect(event.metadata.uid).toBe(record.id);
      // API Activity: actor, api.operation and src_endpoint are required.
      expect(event.actor.user.uid).toBe(caller.sub);
      expect(event.api.operation).toBe(record.action_name);
      expect(event.src_endpoint).toBeTypeOf('object');
      expect(Object.keys(event.src_endpoint).length).toBeGreaterThan(0);
      expect(event.actor.authorizations).toEqual([
        {
          decision: record.allow ? 'allow' : 'deny',
          policy: { name: record.entrypoint, uid: record.bundle_digest, version: record.bundle_revision },
        },
      ]);
      expect(event.disposition_id).toBe(record.allow ? 1 : 2);
      expect(event.resources).toEqual([{ type: record.resource_type, uid: record.resource_id }]);
    });
    const agentEvent = events.find((e) => e.ai_agent)!;
    expect(agentEvent.ai_agent).toEqual({
      uid: 'support-bot',
      name: 'support-bot',
      ai_model: { name: 'llama-3.1-8b', ai_provider: 'Meta' },
    });
    expect(agentEvent.metadata.profiles).toEqual(['security_control', 'record_integrity', 'ai_operation']);
    expect(agentEvent.metadata.correlation_uid).toBe('trace-1');
    // No agent, no model named: no AI fields invented.
    const userEvent = events.find((e) => e.actor && !e.ai_agent)!;
    expect(userEvent.ai_model).toBeUndefined();
    expect(userEvent.metadata.profiles).toEqual(['security_control', 'record_integrity']);
  });

  it('exports OCSF 1.9.0: every event is valid API Activity with its profiles, the chain hash its integrity proof', async () => {
    const events = lines((await audit.inject({ method: 'GET', url: '/v1/audit/export?format=ocsf' })).body);
    const records = lines((await audit.inject({ method: 'GET', url: '/v1/audit/export' })).body);
    expect(events.some((e) => e.ai_agent?.ai_model)).toBe(true);
    events.forEach((event, i) => {
      const record = records[i]!;
      expect(event.metadata.version).toBe('1.9.0');
      expect(apiActivity.validate(event)).toEqual([]);
      // record_integrity: the decision's place in its writer's hash chain and its chain hash.
      expect(event.attestation_list).toEqual([
        {
          uid: `${record.writer_id}:${record.seq}`,
          chain_uid: record.writer_id,
          fingerprint: {
            algorithm_id: 3,
            algorithm: 'SHA-256',
            encoding_id: 1,
            encoding: 'Hex',
            value: record.hash,
          },
        },
      ]);
    });
  });

  it('the OCSF validator refuses what the 1.9.0 definitions refuse (planted violations)', async () => {
    const events = lines((await audit.inject({ method: 'GET', url: '/v1/audit/export?format=ocsf' })).body);
    const valid = events.find((e) => e.ai_agent?.ai_model)!;
    const planted = (change: (event: Record<string, any>) => void) => {
      const event = structuredClone(valid);
      change(event);
      return apiActivity.validate(event);
    };
    expect(planted(() => {})).toEqual([]);
    expect(planted((e) => (e.verdict = 1))).toEqual(['verdict: not an attribute of api_activity']);
    // The development branch's name for the model's name.
    expect(
      planted((e) => {
        e.ai_agent.ai_model.model_name = e.ai_agent.ai_model.name;
        delete e.ai_agent.ai_model.name;
      }),
    ).toEqual([
      'ai_agent.ai_model.model_name: not an attribute of ai_model',
      'ai_agent.ai_model.name: required by ai_model',
      'ai_agent.ai_model: needs at least one of name, uid',
    ]);
    expect(planted((e) => delete e.api.operation)).toEqual(['api.operation: required by api']);
    expect(planted((e) => delete e.src_endpoint)).toEqual(['src_endpoint: required by api_activity']);
    expect(planted((e) => (e.disposition_id = 77))).toContainEqual(
      expect.stringMatching(/^disposition_id: 77 is not one of /),
    );
    expect(planted((e) => (e.severity = 'High'))).toEqual([
      "severity: must be 'Informational' (the caption of severity_id 1)",
    ]);
    expect(planted((e) => (e.time = new Date(e.time).toISOString()))).toEqual([
      'time: must be an integer (timestamp_t)',
    ]);
    expect(planted((e) => (e.metadata.profiles = ['security_control', 'record_integrity']))).toEqual([
      'ai_agent: belongs to the ai_operation profile, which the event does not declare',
    ]);
    expect(planted((e) => (e.metadata.profiles = [...e.metadata.profiles, 'firewall']))).toEqual([
      "metadata.profiles: api_activity has no profile 'firewall'",
    ]);
    expect(planted((e) => delete e.attestation_list[0].fingerprint)).toEqual([
      'attestation_list[0]: needs at least one of fingerprint, signatures',
    ]);
    expect(planted((e) => (e.type_uid = 600301))).toEqual([
      'type_uid: must be class_uid * 100 + activity_id (600399)',
    ]);
    expect(planted((e) => (e.actor.authorizations = { decision: 'allow' }))).toEqual([
      'actor.authorizations: must be an array',
    ]);
  });

  it('answers Splunk HEC events for format=splunk-hec, and 400 for an unknown format', async () => {
    const response = await audit.inject({ method: 'GET', url: '/v1/audit/export?format=splunk-hec' });
    expect(response.statusCode).toBe(200);
    const events = lines(response.body);
    const records = lines((await audit.inject({ method: 'GET', url: '/v1/audit/export' })).body);
    events.forEach((event, i) => {
      expect(Object.keys(event).sort()).toEqual(['event', 'fields', 'host', 'source', 'sourcetype', 'time']);
      expect(event.time).toBe(Date.parse(records[i]!.decided_at) / 1000);
      expect(event.source).toBe('verdict');
      expect(event.sourcetype).toBe('verdict:decision');
      expect(event.host).toBeTypeOf('string');
      expect(event.event).toEqual(records[i]);
      expect(event.fields.decision_id).toBe(records[i]!.id);
      for (const value of Object.values(event.fields)) expect(value).toBeTypeOf('string');
    });
    const bad = await audit.inject({ method: 'GET', url: '/v1/audit/export?format=xml' });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toContain('application/problem+json');
    expect(bad.json().code).toBe('invalid_request');
  });
});

/** A receiver that fails: 500s, connections destroyed before reading, and after reading (the batch
 * then arrived but the sender cannot know: it re-sends). Records every event that arrived. */
async function flakyReceiver(faultRate: () => number) {
  const arrived: { id: string; writer: string; seq: number }[] = [];
  const auth: (string | undefined)[] = [];
  /** What the OCSF validator found wrong in the OCSF events that arrived. */
  const ocsfProblems: string[] = [];
  const server = http.createServer((req, res) => {
    const roll = Math.random();
    const rate = faultRate();
    if (roll < rate / 3) {
      req.socket.destroy();
      return;
    }
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      if (roll < (2 * rate) / 3) {
        res.statusCode = 503;
        res.end();
        return;
      }
      for (const event of lines(body)) {
        // OCSF carries the id in metadata.uid, HEC in fields.decision_id.
        const record = event.unmapped?.verdict ?? event.event;
        if (event.class_uid !== undefined) ocsfProblems.push(...apiActivity.validate(event));
        arrived.push({
          id: event.metadata?.uid ?? event.fields.decision_id,
          writer: record.writer_id,
          seq: record.seq,
        });
      }
      auth.push(req.headers.authorization);
      if (roll < rate) {
        // Taken in, but the answer is lost.
        req.socket.destroy();
        return;
      }
      res.statusCode = 200;
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`,
    arrived,
    auth,
    ocsfProblems,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function until(check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('SiemForwarder', () => {
  it('delivers every record at least once, in order per writer, through failures, and resumes from its cursor', async () => {
    await database.db.exec('DELETE FROM decision_log; DELETE FROM chain_heads; DELETE FROM siem_cursors');
    const writers = [testWriter(database.db), testWriter(database.db), testWriter(database.db)];
    for (const [i, writer] of writers.entries()) {
      for (let b = 0; b < 6; b += 1) await writer.record(decisionRecords(7 + i, b * 10));
    }
    const expected = new Set(
      (await database.db.query<{ id: string }>({ text: 'SELECT id::text FROM decision_log' })).rows.map(
        (r) => r.id,
      ),
    );
    expect(expected.size).toBe(6 * (7 + 8 + 9));

    let faults = 0.6;
    const receiver = await flakyReceiver(() => faults);
    const options = {
      db: database.db,
      url: receiver.url,
      format: 'ocsf' as const,
      token: 'secret-token',
      batchMax: 10,
      pollMs: 5,
      maxBackoffMs: 20,
      sink: 'test-sink',
    };
    const first = new SiemForwarder(options);
    first.start();
    await until(() => new Set(receiver.arrived.map((a) => a.id)).size === expected.size);
    await until(() => first.stats().lagRecords === 0);
    await first.close();
    expect(first.stats().failures).toBeGreaterThan(0);
    // Every record, none other; duplicates exist only as re-sends of what arrived.
    expect(new Set(receiver.arrived.map((a) => a.id))).toEqual(expected);
    // The forwarder sends the export's OCSF events: valid OCSF 1.9.0 too.
    expect(receiver.ocsfProblems).toEqual([]);
    expect(receiver.auth.every((header) => header === 'Bearer secret-token')).toBe(true);
    // In order per writer: each writer's first arrivals come in seq order, without gaps.
    const firstSeen = new Map<string, number[]>();
    const seen = new Set<string>();
    for (const a of receiver.arrived) {
      if (seen.has(a.id)) continue;
      seen.add(a.id);
      firstSeen.set(a.writer, [...(firstSeen.get(a.writer) ?? []), a.seq]);
    }
    for (const [writer, seqs] of firstSeen) {
      expect(seqs, writer).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    }
    // The cursor is in Postgres.
    const cursors = await database.db.query<{ writer_id: string; seq: string }>({
      text: `SELECT writer_id, seq::text FROM siem_cursors WHERE sink = 'test-sink'`,
    });
    expect(cursors.rows).toHaveLength(3);

    // Restart: more records meanwhile, a healthy receiver; the new forwarder sends only what is new.
    faults = 0;
    const before = receiver.arrived.length;
    for (const writer of writers) await writer.record(decisionRecords(5, 100));
    const second = new SiemForwarder(options);
    second.start();
    await until(() => receiver.arrived.length - before === 15);
    await until(() => second.stats().lagRecords === 0);
    await second.close();
    const resent = receiver.arrived.slice(before);
    expect(resent).toHaveLength(15);
    for (const a of resent) expect(expected.has(a.id)).toBe(false);
    for (const writer of writers) await writer.close();
    await receiver.close();
  }, 60_000);

  it('lets one replica forward a sink at a time (lease)', async () => {
    const receiver = await flakyReceiver(() => 0);
    const a = new SiemForwarder({
      db: database.db,
      url: receiver.url,
      format: 'splunk-hec',
      sink: 'lease-sink',
      token: 't',
    });
    const b = new SiemForwarder({
      db: database.db,
      url: receiver.url,
      format: 'splunk-hec',
      sink: 'lease-sink',
    });
    await a.pass();
    expect(a.stats().leader).toBe(true);
    expect(await b.pass()).toBe(0);
    expect(b.stats().leader).toBe(false);
    await a.close();
    await b.pass();
    expect(b.stats().leader).toBe(true);
    await b.close();
    await receiver.close();
  });

  it('reports the lag only while it holds the lease (a process group sums its workers)', async () => {
    const down = await flakyReceiver(() => 1);
    const up = await flakyReceiver(() => 0);
    const fast = { pollMs: 20, maxBackoffMs: 40, sink: 'lag-sink', format: 'splunk-hec' as const };
    const a = new SiemForwarder({ db: database.db, url: down.url, ...fast });
    const b = new SiemForwarder({ db: database.db, url: up.url, ...fast });
    try {
      // A leads and cannot deliver: it measures the lag of every record.
      a.start();
      await until(() => a.stats().leader && a.stats().lagRecords > 0);
      // Its lease lapses (a stall) and B takes the sink over and catches up. A keeps polling, and any
      // forwarder may take a lapsed lease, so A can renew it between the lapse and B's pass: lapse it
      // again until B is the one that takes it.
      await until(async () => {
        await database.db.query({
          text: `UPDATE siem_leases SET expires_at = now() - interval '1 second' WHERE sink = 'lag-sink'`,
        });
        await b.pass();
        return b.stats().leader;
      });
      expect(b.stats()).toMatchObject({ leader: true, lagRecords: 0 });
      // A, no longer leading, stops reporting the lag it last measured.
      await until(() => !a.stats().leader);
      expect(a.stats()).toMatchObject({ lagRecords: 0, lagSeconds: 0 });
    } finally {
      await a.close();
      await b.close();
      await down.close();
      await up.close();
    }
  });
});
