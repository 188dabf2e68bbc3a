/**
 * The SDK (packages/sdk) against a real Verdict on a real Postgres, over HTTP on 127.0.0.1: decisions,
 * AuthZEN, the audit API, the token provider, traceparent — and fail closed: unreachable, 5xx and a
 * timeout are denies that say why, never allows, and a POST decision is never sent twice.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Decided, PDP_UNAVAILABLE, VerdictClient, VerdictError } from '../../packages/sdk/src/index.ts';
import { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { SCOPES } from '../../src/auth/caller.ts';
import type { DecisionRecord, DecisionRecorder } from '../../src/decisions/types.ts';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { freePort } from '../support/net.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

const searchKb = {
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'tool.call' },
  resource: { type: 'tool', id: 'search_kb', properties: { arguments: { query: 'refunds' } } },
  context: { session: { tool_calls: 2 }, data_classification: 'internal' },
};
const rmRf = {
  ...searchKb,
  subject: { type: 'agent', id: 'code-agent' },
  resource: { type: 'tool', id: 'shell', properties: { arguments: { command: 'rm -rf /' } } },
};

async function listen(app: { listen: (o: { port: number; host: string }) => Promise<string> }) {
  return app.listen({ port: 0, host: '127.0.0.1' });
}

describe('the SDK against a real Verdict with its audit trail', () => {
  let verdict: TestVerdict;
  let url: string;
  let client: VerdictClient;

  beforeAll(async () => {
    verdict = await startTestVerdict('sdk');
    url = verdict.url;
    client = new VerdictClient({ url, token: verdict.token('auditor', SCOPES) });
  });
  afterAll(async () => {
    await verdict?.close();
  });

  it('decides: an allow and a deny with its violations, both recorded with the caller’s trace id', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const allowed = await client.decide(searchKb, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    expect(allowed).toMatchObject({ decided: true, allow: true, violations: [] });
    const denied = await client.decide(rmRf);
    expect(denied.allow).toBe(false);
    expect(denied.decided).toBe(true);
    expect(denied.violations.map((v) => v.control)).toContain('TOOL-005');

    const record = await client.getDecision((allowed as Decided).decision_id);
    expect(record).toMatchObject({ allow: true, resource_id: 'search_kb', trace_id: traceId });
  });

  it('on Node speaks node:http, not fetch, with a body of any characters intact; a caller’s fetch is used', async () => {
    const platformFetch = globalThis.fetch;
    const fetched: string[] = [];
    globalThis.fetch = (() => {
      throw new Error('the SDK used fetch');
    }) as typeof fetch;
    let record: unknown;
    try {
      // Multi-byte text (the body's length is counted in bytes, not UTF-16 units): the record keeps it.
      const id = 'søk_kb_📚_检索';
      const decided = await client.decide({ ...searchKb, resource: { ...searchKb.resource, id } });
      expect(decided.decided).toBe(true);
      record = await client.getDecision((decided as Decided).decision_id);
      expect(record).toMatchObject({ resource_id: id });
    } finally {
      globalThis.fetch = platformFetch;
    }
    const withFetch = new VerdictClient({
      url,
      token: verdict.token('auditor', SCOPES),
      fetch: (input, init) => {
        fetched.push(String(input));
        return platformFetch(input, init);
      },
    });
    expect((await withFetch.decide(searchKb)).allow).toBe(true);
    expect(fetched).toEqual([`${url}/v1/decisions`]);
  });

  it('decides many in one request, in item order', async () => {
    const results = await client.decideMany([{ resource: searchKb.resource }, { resource: rmRf.resource }], {
      defaults: { subject: searchKb.subject, action: searchKb.action, context: searchKb.context },
    });
    expect(results.map((r) => r.allow)).toEqual([true, false]);
    expect(results.every((r) => r.decided && typeof r.decision_id === 'string')).toBe(true);
  });

  it('speaks AuthZEN: evaluation, evaluations and search', async () => {
    const one = await client.evaluation(searchKb);
    expect(one.decision).toBe(true);
    expect(typeof one.context?.decision_id).toBe('string');
    const many = await client.evaluations({
      subject: searchKb.subject,
      action: searchKb.action,
      context: searchKb.context,
      evaluations: [{ resource: searchKb.resource }, { resource: rmRf.resource, subject: rmRf.subject }],
    });
    expect('evaluations' in many && many.evaluations.map((e) => e.decision)).toEqual([true, false]);
    const search = await client.search('resource', {
      subject: searchKb.subject,
      action: searchKb.action,
      resource: { type: 'tool' },
      context: searchKb.context,
    });
    expect(Array.isArray(search.results)).toBe(true);
    expect(typeof search.context?.decision_id).toBe('string');
  });

  it('searches, pages, exports and verifies the audit trail', async () => {
    const page = await client.searchDecisions({ resource_id: 'shell', allow: 'false' });
    expect(page.items.length).toBeGreaterThanOrEqual(2);
    expect(page.items.every((r) => r.resource_id === 'shell' && !r.allow)).toBe(true);
    const all: string[] = [];
    for await (const record of client.allDecisions({ limit: '1' })) all.push(record.id);
    const exported: string[] = [];
    for await (const record of client.exportAudit()) exported.push(record.id);
    expect(exported.length).toBeGreaterThanOrEqual(6);
    expect(all).toEqual(exported);
    const csv = await client.exportAuditCsv({ resource_id: 'search_kb' });
    expect(csv.split('\n')[0]).toContain('decided_at');
    expect((await client.verifyAudit()).ok).toBe(true);
  });

  it('asks a token provider again once after a 401, and fails closed when the fresh one is refused too', async () => {
    const asked: boolean[] = [];
    const refreshing = new VerdictClient({
      url,
      token: ({ refresh }) => {
        asked.push(refresh);
        return refresh ? verdict.token('auditor', SCOPES) : 'expired.token.value';
      },
    });
    expect((await refreshing.decide(searchKb)).allow).toBe(true);
    expect((await refreshing.decide(searchKb)).allow).toBe(true);
    expect(asked).toEqual([false, true]); // cached after the refresh

    let calls = 0;
    const refused = new VerdictClient({
      url,
      token: () => {
        calls += 1;
        return 'not-a-token';
      },
    });
    const denied = await refused.decide(searchKb);
    expect(denied).toMatchObject({ decided: false, allow: false, error: { kind: 'rejected', status: 401 } });
    expect(calls).toBe(2);
    await expect(refused.searchDecisions()).rejects.toMatchObject({ status: 401, code: 'invalid_token' });
  });
});

describe('fail closed', () => {
  it('refuses a URL that is not http(s) at construction, naming it, instead of denying every call later', () => {
    for (const url of ['not a url', '', 'ftp://verdict:8080', 'verdict:8080'])
      expect(() => new VerdictClient({ url, token: 't' })).toThrow(
        new TypeError(`VerdictClient: url ${JSON.stringify(url)} is not an http(s) URL`),
      );
    expect(() => new VerdictClient({ url: 'https://verdict.example.com/', token: 't' })).not.toThrow();
  });

  it('an unreachable Verdict is a deny that says so (or a throw, when asked)', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const client = new VerdictClient({ url, token: 't' });
    const denied = await client.decide(searchKb);
    expect(denied).toMatchObject({
      decided: false,
      allow: false,
      decision_id: null,
      error: { kind: 'network' },
    });
    expect(denied.violations[0]?.control).toBe(PDP_UNAVAILABLE);
    expect((await client.decideMany([searchKb, searchKb])).map((r) => r.allow)).toEqual([false, false]);
    expect((await client.evaluation(searchKb)).decision).toBe(false);
    const many = await client.evaluations({ evaluations: [searchKb, searchKb] });
    expect('evaluations' in many && many.evaluations.map((e) => e.decision)).toEqual([false, false]);
    await expect(client.decide(searchKb, { throwOnError: true })).rejects.toBeInstanceOf(VerdictError);
    await expect(client.searchDecisions()).rejects.toMatchObject({ kind: 'network' });
  });

  it('a 5xx from Verdict (the decision could not be recorded) is a deny, and the POST is not sent again', async () => {
    const recorder = new MemoryRecorder();
    let attempts = 0;
    const counting: DecisionRecorder = {
      record: (records: DecisionRecord[]) => {
        attempts += 1;
        return recorder.record(records);
      },
      close: () => recorder.close(),
    };
    recorder.failWith = new Error('database and spool down');
    const built = await buildTestApp({ bundlePath: DEFAULT_BUNDLE, recorder: counting });
    try {
      const url = await listen(built.app);
      const client = new VerdictClient({ url, token: built.token(), retries: 5 });
      const denied = await client.decide(searchKb);
      expect(denied).toMatchObject({
        decided: false,
        allow: false,
        error: { kind: 'server', status: 503, code: 'audit_unavailable' },
      });
      expect(denied.violations[0]?.control).toBe(PDP_UNAVAILABLE);
      expect(attempts).toBe(1);
      recorder.failWith = null;
      expect((await client.decide(searchKb)).allow).toBe(true);
    } finally {
      await built.close();
    }
  });

  it('a Verdict slower than the timeout is a deny, within the timeout', async () => {
    const hanging: DecisionRecorder = { record: () => new Promise(() => {}), close: async () => {} };
    const built = await buildTestApp({ bundlePath: DEFAULT_BUNDLE, recorder: hanging });
    try {
      const url = await listen(built.app);
      const client = new VerdictClient({ url, token: built.token(), timeoutMs: 300 });
      const started = Date.now();
      const denied = await client.decide(searchKb);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(denied).toMatchObject({ decided: false, allow: false, error: { kind: 'timeout' } });
      await expect(client.decide(searchKb, { timeoutMs: 100, throwOnError: true })).rejects.toMatchObject({
        kind: 'timeout',
      });
    } finally {
      await built.app.server.closeAllConnections();
      await built.close();
    }
  });

  it('does not follow a redirect: a 3xx is an error naming it, and a decision is a deny', async () => {
    const seen: string[] = [];
    const server: Server = createServer((request, response) => {
      seen.push(`${request.method} ${request.url?.split('?')[0]}`);
      response.writeHead(301, { location: 'http://127.0.0.1:1/elsewhere' });
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = new VerdictClient({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 't',
      });
      await expect(client.searchDecisions()).rejects.toMatchObject({ kind: 'rejected', status: 301 });
      const denied = await client.decide(searchKb);
      expect(denied).toMatchObject({
        decided: false,
        allow: false,
        error: { kind: 'rejected', status: 301 },
      });
      expect(seen).toEqual(['GET /v1/decisions', 'POST /v1/decisions']);
    } finally {
      server.close();
    }
  });

  it('retries a read after a 503, never a decision', async () => {
    const seen: string[] = [];
    const server: Server = createServer((request, response) => {
      seen.push(`${request.method} ${request.url?.split('?')[0]}`);
      const ok = request.method === 'GET' && seen.length >= 3;
      response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify(
          ok ? { items: [], next_cursor: null, has_more: false } : { status: 503, code: 'overloaded' },
        ),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = new VerdictClient({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 't',
        retries: 3,
      });
      expect(await client.searchDecisions()).toEqual({ items: [], next_cursor: null, has_more: false });
      expect(seen).toEqual(['GET /v1/decisions', 'GET /v1/decisions', 'GET /v1/decisions']);
      seen.length = 0;
      expect((await client.decide(searchKb)).allow).toBe(false);
      expect(seen).toEqual(['POST /v1/decisions']);
    } finally {
      server.close();
    }
  });
});
