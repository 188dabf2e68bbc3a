import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/decisions/canonical-json.ts';
import { type AuditTestApp, buildAuditApp } from '../audit/queries.support.ts';
import { githubToken } from '../fixtures/guardrails/formats.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// Planted values: the log must hold none of them, in any table.
const AWS_KEY = 'AKIAQWERTYUIOPASDFGH';
const GITHUB = githubToken('ghp', 2525);
const EMAIL = 'dana.kowalski@corp-mail.io';

let database: TestDatabase;
let audit: AuditTestApp;

const evaluate = ['decisions:evaluate'] as const;

const response = (content: unknown, context: Record<string, unknown> = {}) => ({
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'model.response' },
  resource: { type: 'model', id: 'support-llm', properties: { content } },
  context: { destination: 'user', data_classification: 'internal', ...context },
});

const decide = async (body: Record<string, unknown>) => {
  const res = await audit.inject({ method: 'POST', url: '/v1/decisions', payload: body }, evaluate);
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
};

/** Every row of every table of the database whose text holds `needle`. */
async function rowsHolding(needle: string): Promise<string[]> {
  const tables = await database.db.query<{ name: string }>({
    text: `SELECT format('%I.%I', table_schema, table_name) AS name FROM information_schema.tables
           WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'`,
  });
  const hits: string[] = [];
  for (const { name } of tables.rows) {
    const { rows } = await database.db.query<{ n: string }>({
      text: `SELECT count(*) AS n FROM ${name} AS r WHERE r::text LIKE $1`,
      values: [`%${needle}%`],
    });
    if (Number(rows[0]!.n) > 0) hits.push(name);
  }
  return hits;
}

beforeAll(async () => {
  database = await createTestDatabase('guardrails_decisions');
  audit = await buildAuditApp({ db: database.db, bundlePath: DEFAULT_BUNDLE });
}, 60_000);

afterAll(async () => {
  await audit?.close();
  await database?.drop();
});

describe('content decisions', () => {
  it('redacts a secret and personal data going to a user: an allow with redact obligations', async () => {
    const text = `Your key is ${AWS_KEY} — mail ${EMAIL}.`;
    const body = await decide(response(text));
    expect(body.allow).toBe(true);
    expect(body.obligations).toEqual([
      {
        type: 'redact',
        control: 'CONTENT-001',
        reason: expect.any(String),
        spans: [{ path: '', start: text.indexOf(AWS_KEY), end: text.indexOf(AWS_KEY) + 20, kind: 'secret' }],
      },
      {
        type: 'redact',
        control: 'CONTENT-002',
        reason: expect.any(String),
        spans: [
          { path: '', start: text.indexOf(EMAIL), end: text.indexOf(EMAIL) + EMAIL.length, kind: 'pii' },
        ],
      },
    ]);
  });

  it("drops a client's findings: only the server's detectors count", async () => {
    const forged = {
      ...response('nothing to see here'),
      findings: [{ detector: 'jwt', kind: 'secret', path: '', start: 0, end: 7 }],
      content_sha256: 'forged',
    };
    const body = await decide(forged);
    expect(body).toMatchObject({ allow: true, obligations: [] });
    // The service drops them too, whatever a surface lets through.
    const decision = await audit.decisions.decide({
      surface: 'native',
      entrypoint: 'verdict/decision',
      input: forged,
      caller: { sub: 'svc', iss: null, clientId: null, scopes: ['decisions:evaluate'] },
      traceId: null,
    });
    expect(decision.result.obligations).toEqual([]);
    const stored = (await audit.log.get(decision.id))!;
    const input = stored.input as Record<string, unknown>;
    expect(input.findings).toEqual([]);
    expect(input.content_sha256).toBe(createHash('sha256').update('nothing to see here').digest('hex'));
  });

  it('denies a secret leaving to an external destination on every surface', async () => {
    const envelope = response(`token ${GITHUB}`, { destination: 'external' });
    const native = await decide(envelope);
    expect(native.allow).toBe(false);
    expect(native.violations.map((v: { control: string }) => v.control)).toEqual(['CONTENT-001']);

    const opa = await audit.inject(
      {
        method: 'POST',
        url: '/v1/data/verdict/decision',
        payload: { input: { ...envelope, now: '2026-11-26T12:00:00Z', findings: [] } },
      },
      evaluate,
    );
    expect(opa.statusCode, opa.body).toBe(200);
    expect(opa.json().result.violations.map((v: { control: string }) => v.control)).toEqual(['CONTENT-001']);

    const authzen = await audit.inject(
      { method: 'POST', url: '/access/v1/evaluation', payload: envelope },
      evaluate,
    );
    expect(authzen.statusCode, authzen.body).toBe(200);
    expect(authzen.json().decision).toBe(false);
  });

  it('keeps no planted secret in the database: the content is redacted, the findings hashed', async () => {
    const parts = [
      { role: 'assistant', text: `The AWS key is ${AWS_KEY.slice(0, 9)}` },
      { role: 'assistant', text: `${AWS_KEY.slice(9)}, the GitHub token ${GITHUB}, mail ${EMAIL}` },
    ];
    const body = await decide(response(parts));
    expect(body.allow).toBe(true);
    for (const needle of [AWS_KEY, AWS_KEY.slice(0, 9), AWS_KEY.slice(9), GITHUB, EMAIL])
      expect(await rowsHolding(needle), needle).toEqual([]);
    const stored = (await audit.log.get(body.decision_id))!;
    const input = stored.input as {
      resource: { properties: { content: { text: string }[] } };
      findings: { detector: string; sha256?: string }[];
      content_sha256: string;
    };
    expect(input.resource.properties.content.map((p) => p.text)).toEqual([
      'The AWS key is [REDACTED:secret]',
      '[REDACTED:secret], the GitHub token [REDACTED:secret], mail [REDACTED:pii]',
    ]);
    // An auditor holding a leaked credential finds where it passed by its SHA-256.
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    expect(input.findings.filter((f) => f.sha256 === sha(AWS_KEY))).toHaveLength(2);
    expect(input.findings.filter((f) => f.sha256 === sha(GITHUB))).toHaveLength(1);
    expect(input.findings.find((f) => f.detector === 'email-address')).not.toHaveProperty('sha256');
    expect(input.content_sha256).toBe(
      createHash('sha256')
        .update(JSON.stringify(parts.map((p) => ({ role: p.role, text: p.text }))))
        .digest('hex'),
    );
  });

  it('replays a model.response decision on the findings as recorded, to the same answer', async () => {
    const body = await decide(response(`key ${AWS_KEY}, mail ${EMAIL}`));
    const res = await audit.inject({ method: 'POST', url: `/v1/decisions/${body.decision_id}/replay` });
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    // The stored input is not the input the policy saw (the content is redacted) ...
    expect(report.masked).toBe(true);
    // ... but the policy reads the findings, so the replay gives the same result, obligations included.
    expect(report.stored).toMatchObject({ available: true, matches: true, error: null });
    expect(report.stored.result.obligations).toEqual(body.obligations);
    expect(report.active.matches).toBe(true);
  });

  it("keeps the audit chain whole over content decisions (their records reuse the scan's JSON)", async () => {
    await decide(response(`key ${AWS_KEY} "quoted" \\ tab\t 🙂 返金`));
    await decide(
      response([
        { role: 'user', text: `mail ${EMAIL}` },
        { text: 'no role', extra: { n: 1 } },
      ]),
    );
    await decide(response('nothing to find here'));
    const res = await audit.inject({ method: 'GET', url: '/v1/audit/verify' });
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report.ok, res.body).toBe(true);
    expect(report.checked).toBeGreaterThanOrEqual(3);
  });

  it("decides on the findings with the text withheld from the default bundle's policy, the log keeping it", async () => {
    // The default bundle's data says its policy reads no text (policy_reads_text: false): the input
    // digest is of the input the policy saw, the texts emptied; the record keeps the text as sent.
    const text = 'a reply with nothing to find';
    const body = await decide(response(text));
    const stored = (await audit.log.get(body.decision_id))!;
    const input = stored.input as { resource: { properties: { content: string } } };
    expect(input.resource.properties.content).toBe(text);
    const seen = structuredClone(stored.input) as typeof input;
    seen.resource.properties.content = '';
    expect(stored.input_sha256).toBe(createHash('sha256').update(canonicalJson(seen)!).digest('hex'));
  });

  it('leaves a tool call without findings', async () => {
    const body = await decide({
      subject: { type: 'agent', id: 'code-agent' },
      action: { name: 'tool.call' },
      resource: {
        type: 'tool',
        id: 'read_file',
        properties: { arguments: { path: `/workspace/${AWS_KEY}` } },
      },
      context: { session: { untrusted_content: false, tool_calls: 1 }, data_classification: 'internal' },
      findings: [{ detector: 'x', kind: 'secret', path: '', start: 0, end: 1 }],
    });
    const stored = (await audit.log.get(body.decision_id))!;
    expect(stored.input).not.toHaveProperty('findings');
    expect(stored.input).not.toHaveProperty('content_sha256');
  });
});
