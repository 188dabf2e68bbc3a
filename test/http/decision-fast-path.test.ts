import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import type { DecisionRecord } from '../../src/decisions/types.ts';
import type { App } from '../../src/http/app.ts';
import { loggerOptions } from '../../src/observability/logging.ts';
import { buildTestApp, type TestToken } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

// POST /v1/decisions off the raw server (src/http/decision-fast-path.ts) must answer exactly as the
// Fastify route does: `inject` always goes through Fastify, real HTTP takes the fast path.

/** Fails every record while `failing` is set (the audit store down). */
class FlakyRecorder extends MemoryRecorder {
  failing = false;
  override async record(records: DecisionRecord[]): Promise<void> {
    if (this.failing) throw new Error('audit store down');
    return super.record(records);
  }
}

const envelope = (action: string, extra: Record<string, unknown> = {}) => ({
  subject: { type: 'user', id: 'u1' },
  action: { name: action },
  resource: { type: 'doc', id: 'd1' },
  ...extra,
});

let app: App;
let token: TestToken;
let base: string;
const recorder = new FlakyRecorder();
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const config = resolveConfig({ VERDICT_DATA_DIR: '/tmp/verdict-test-data', LOG_LEVEL: 'info' });
  ({ app, token } = await buildTestApp({
    bundlePath: contractFixtureBundle(),
    recorder,
    // The fast path leaves every request to Fastify when a rate limit is configured.
    env: { VERDICT_RATE_LIMIT_MAX: '0' },
    logger: {
      ...loggerOptions({ ...config, logFormat: 'json' }, false),
      level: 'info',
      stream: sink,
    } as never,
  }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(() => app.close());

const headersOf = (bearer: string, extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${bearer}`,
  'content-type': 'application/json',
  ...extra,
});

async function overHttp(
  body: string,
  bearer = token(['decisions:evaluate']),
  extra: Record<string, string> = {},
) {
  const response = await fetch(`${base}/v1/decisions`, {
    method: 'POST',
    headers: headersOf(bearer, extra),
    body,
  });
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return { status: response.status, headers, text: await response.text() };
}

async function throughFastify(body: string, bearer = token(['decisions:evaluate'])) {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/decisions',
    headers: headersOf(bearer),
    body,
  });
  const headers = Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, String(v)]));
  return { status: response.statusCode, headers, text: response.body };
}

/** The headers both paths must agree on: all but the connection's and the per-request ones. */
const comparable = (headers: Record<string, string>) => {
  const {
    date: _d,
    connection: _c,
    'keep-alive': _k,
    'x-request-id': _r,
    'content-length': _l,
    ...rest
  } = headers;
  return rest;
};

describe('the decision fast path', () => {
  it('serves a known token with the scope, answering as the route does', async () => {
    const bearer = token(['decisions:evaluate']);
    // A token's first use is verified by the hooks, so it goes through Fastify.
    const first = await overHttp(JSON.stringify(envelope('read')), bearer);
    expect(first.status).toBe(200);
    const before = app.decisionFastPath.served();
    const fast = await overHttp(JSON.stringify(envelope('write')), bearer);
    expect(app.decisionFastPath.served()).toBe(before + 1);
    const slow = await throughFastify(JSON.stringify(envelope('write')), bearer);
    expect(app.decisionFastPath.served()).toBe(before + 1);
    expect(fast.status).toBe(200);
    expect(comparable(fast.headers)).toEqual(comparable(slow.headers));
    const strip = (text: string) => {
      const { decision_id: _i, evaluated_at: _t, ...rest } = JSON.parse(text);
      return rest;
    };
    expect(strip(fast.text)).toEqual(strip(slow.text));
    expect(JSON.parse(fast.text)).toMatchObject({ allow: false, violations: [{ control: 'FIX-001' }] });
    // Recorded like any decision, with the caller of the token.
    const record = recorder.records.find((r) => r.id === JSON.parse(fast.text).decision_id)!;
    expect(record).toMatchObject({ allow: false, surface: 'native', actionName: 'write' });
    expect(record.caller).toMatchObject({ sub: 'test-caller' });
  });

  it('echoes the request id and the trace context, records the trace id, logs one line', async () => {
    const bearer = token(['decisions:evaluate']);
    await overHttp(JSON.stringify(envelope('read')), bearer);
    const before = app.decisionFastPath.served();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    lines.length = 0;
    const fast = await overHttp(JSON.stringify(envelope('read')), bearer, {
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      'x-request-id': 'client-id-1',
    });
    expect(app.decisionFastPath.served()).toBe(before + 1);
    expect(fast.headers['x-request-id']).toBe('client-id-1');
    expect(fast.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[\\da-f]{16}-01$`));
    expect(fast.headers.traceparent).not.toContain('00f067aa0ba902b7');
    const id = JSON.parse(fast.text).decision_id;
    expect(recorder.records.find((r) => r.id === id)?.traceId).toBe(traceId);
    expect(lines.filter((l) => l.msg === 'request completed')).toEqual([
      expect.objectContaining({
        request_id: 'client-id-1',
        trace_id: traceId,
        route: '/v1/decisions',
        method: 'POST',
        status: 200,
        caller: 'test-caller',
        decision_id: id,
      }),
    ]);
  });

  it('counts its answers in the HTTP metrics under the route', async () => {
    const bearer = token(['decisions:evaluate']);
    await overHttp(JSON.stringify(envelope('read')), bearer);
    const count = async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) =>
          l.startsWith('verdict_http_requests_total{route="/v1/decisions",method="POST",status="200"}'),
        );
      return Number(line?.split(' ').at(-1) ?? 0);
    };
    const before = await count();
    const served = app.decisionFastPath.served();
    await overHttp(JSON.stringify(envelope('read')), bearer);
    await overHttp(JSON.stringify(envelope('read')), bearer);
    expect(app.decisionFastPath.served()).toBe(served + 2);
    expect(await count()).toBe(before + 2);
  });

  it.each([
    ['malformed JSON', '{"subject":'],
    ['a body that is not an object', '[1,2]'],
    ['a schema violation', JSON.stringify({ action: { name: 'read' }, resource: { type: 'doc', id: 'd1' } })],
    ['an envelope violation', JSON.stringify(envelope('read', { subject: { type: '', id: 'u1' } }))],
    ['an unknown entrypoint', JSON.stringify(envelope('read', { policy: 'verdict/nope' }))],
    ['a forbidden key', '{"__proto__":{"x":1},"subject":{"type":"u","id":"1"}}'],
  ])('refuses %s exactly as the route does, deciding nothing', async (_what, body) => {
    const bearer = token(['decisions:evaluate']);
    await overHttp(JSON.stringify(envelope('read')), bearer);
    const records = recorder.records.length;
    const replayed = app.decisionFastPath.replayed();
    const fast = await overHttp(body, bearer);
    // Read by the fast path, answered by Fastify from the same bytes.
    expect(app.decisionFastPath.replayed()).toBe(replayed + 1);
    const slow = await throughFastify(body, bearer);
    expect(fast.status).toBeGreaterThanOrEqual(400);
    expect(fast.status).toBe(slow.status);
    expect(comparable(fast.headers)).toEqual(comparable(slow.headers));
    expect(JSON.parse(fast.text)).toEqual(JSON.parse(slow.text));
    expect(recorder.records.length).toBe(records);
  });

  it('leaves a token without the scope, and an unknown token, to the hooks (403, 401)', async () => {
    const reader = token(['audit:read']);
    await overHttp(JSON.stringify(envelope('read')), reader);
    const before = app.decisionFastPath.served();
    const forbidden = await overHttp(JSON.stringify(envelope('read')), reader);
    expect(forbidden.status).toBe(403);
    expect(JSON.parse(forbidden.text).code).toBe('insufficient_scope');
    const unknown = await overHttp(JSON.stringify(envelope('read')), `${token()}x`);
    expect(unknown.status).toBe(401);
    expect(app.decisionFastPath.served()).toBe(before);
  });

  it('fails closed when the decision cannot be recorded: 503 as the route answers it', async () => {
    const bearer = token(['decisions:evaluate']);
    await overHttp(JSON.stringify(envelope('read')), bearer);
    const before = app.decisionFastPath.served();
    recorder.failing = true;
    try {
      const fast = await overHttp(JSON.stringify(envelope('read')), bearer);
      const slow = await throughFastify(JSON.stringify(envelope('read')), bearer);
      expect(app.decisionFastPath.served()).toBe(before + 1);
      expect(fast.status).toBe(503);
      expect(fast.status).toBe(slow.status);
      expect(comparable(fast.headers)).toEqual(comparable(slow.headers));
      expect(JSON.parse(fast.text)).toEqual(JSON.parse(slow.text));
      expect(JSON.parse(fast.text).code).toBe('audit_unavailable');
    } finally {
      recorder.failing = false;
    }
  });
});
