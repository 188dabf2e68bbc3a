import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import type { App } from '../../src/http/app.ts';
import { AUTH_FAILURE_REASONS } from '../../src/http/auth.ts';
import { loggerOptions } from '../../src/observability/logging.ts';
import { BUNDLE_SOURCES, LOAD_SHED_REASONS, type Metrics } from '../../src/observability/metrics.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { sampleValue } from './scrape.ts';

const envelope = (action: string, subjectId = 'u1') => ({
  subject: { type: 'user', id: subjectId },
  action: { name: action },
  resource: { type: 'doc', id: 'd1' },
});

describe('GET /metrics on a fresh start', () => {
  it('exports every known label value of the labelled counters at 0, before any event', async () => {
    const { app } = await buildTestApp({ bundlePath: contractFixtureBundle() });
    try {
      const response = await app.inject({ method: 'GET', url: '/metrics' });
      expect(response.statusCode).toBe(200);
      const text = response.body;
      // The lists are the ones the code increments with (named here too, so an emptied list fails).
      expect(AUTH_FAILURE_REASONS).toEqual(
        expect.arrayContaining(['missing_token', 'malformed_token', 'token_expired', 'insufficient_scope']),
      );
      expect(LOAD_SHED_REASONS).toEqual(['eventLoopDelay', 'heapUsedBytes']);
      expect(BUNDLE_SOURCES).toEqual(['startup', 'activation']);
      for (const reason of AUTH_FAILURE_REASONS) {
        expect(sampleValue(text, 'verdict_auth_failures_total', { reason }), reason).toBe(0);
      }
      for (const route of [
        '/v1/decisions',
        '/v1/decisions/batch',
        '/v1/data/*',
        '/access/v1/evaluation',
        // Registered before the auth plugin, and rate limited all the same.
        '/metrics',
        'unmatched',
      ]) {
        expect(sampleValue(text, 'verdict_rate_limit_rejections_total', { route }), route).toBe(0);
      }
      // Probes are never rate limited, so they have no series.
      expect(text).not.toMatch(/verdict_rate_limit_rejections_total\{route="\/health\//);
      for (const reason of LOAD_SHED_REASONS) {
        expect(sampleValue(text, 'verdict_load_shed_total', { reason }), reason).toBe(0);
      }
      for (const source of BUNDLE_SOURCES) {
        expect(sampleValue(text, 'verdict_bundle_load_failures_total', { source }), source).toBe(0);
      }
      expect(sampleValue(text, 'verdict_bundle_loads_total', { source: 'startup' })).toBe(1);
      expect(sampleValue(text, 'verdict_bundle_loads_total', { source: 'activation' })).toBe(0);
    } finally {
      await app.close();
    }
  });
});

describe('GET /metrics after real decisions', () => {
  let app: App;
  let metrics: Metrics;
  let authorization: string;
  beforeAll(async () => {
    const built = await buildTestApp({ bundlePath: contractFixtureBundle() });
    ({ app, metrics } = built);
    authorization = `Bearer ${built.token(['decisions:evaluate'])}`;
  });
  const authHeaders = async () => ({ authorization });
  afterAll(async () => app.close());

  const scrape = async () => {
    const response = await app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.body;
  };

  it('counts decisions by entrypoint, outcome and first violated control', async () => {
    const headers = await authHeaders();
    const before = await scrape();
    const allow = { entrypoint: 'verdict/decision', outcome: 'allow', control: 'none' };
    const deny = { entrypoint: 'verdict/decision', outcome: 'deny', control: 'FIX-001' };
    // A contract break fails closed with the EVAL-ERROR control (src/decisions/result.ts).
    const error = { entrypoint: 'verdict/malformed', outcome: 'error', control: 'EVAL-ERROR' };
    const allow0 = sampleValue(before, 'verdict_decisions_total', allow) ?? 0;
    const deny0 = sampleValue(before, 'verdict_decisions_total', deny) ?? 0;

    for (let i = 0; i < 3; i++) {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        headers,
        payload: envelope('read'),
      });
      expect(r.statusCode).toBe(200);
    }
    const batch = await app.inject({
      method: 'POST',
      url: '/v1/decisions/batch',
      headers,
      payload: { items: [envelope('write', 's-1'), envelope('write', 's-2')] },
    });
    expect(batch.statusCode).toBe(200);
    const malformed = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers,
      payload: { ...envelope('read'), policy: 'verdict/malformed' },
    });
    expect(malformed.json().allow).toBe(false);

    const after = await scrape();
    expect(sampleValue(after, 'verdict_decisions_total', allow)).toBe(allow0 + 3);
    expect(sampleValue(after, 'verdict_decisions_total', deny)).toBe(deny0 + 2);
    expect(sampleValue(after, 'verdict_decisions_total', error)).toBe(1);
    // Histograms moved: one observation per decision, whole decide and evaluation alone.
    const count = (name: string) => sampleValue(after, name, { entrypoint: 'verdict/decision' }) as number;
    expect(count('verdict_decision_duration_seconds_count')).toBeGreaterThanOrEqual(5);
    expect(count('verdict_decision_evaluation_seconds_count')).toBeGreaterThanOrEqual(5);
    expect(count('verdict_decision_evaluation_seconds_sum')).toBeGreaterThan(0);
    expect(
      sampleValue(after, 'verdict_decision_evaluation_seconds_bucket', {
        entrypoint: 'verdict/decision',
        le: '0.00005',
      }),
    ).toBeDefined();
    expect(
      sampleValue(after, 'verdict_decision_evaluation_seconds_bucket', {
        entrypoint: 'verdict/decision',
        le: '1',
      }),
    ).toBe(count('verdict_decision_evaluation_seconds_count'));
    // No decision id and no subject id ever becomes a label value.
    for (const id of [batch.json().results[0].decision_id, 's-1', 's-2']) expect(after).not.toContain(id);
  });

  it('labels HTTP requests by route template, never by raw URL', async () => {
    const headers = await authHeaders();
    await app.inject({ method: 'GET', url: '/v1/data/verdict/decision/allow?input=%7B%7D', headers });
    await app.inject({ method: 'GET', url: '/no/such/path/abc123', headers });
    const text = await scrape();
    expect(text).toMatch(
      /verdict_http_requests_total\{route="\/v1\/decisions",method="POST",status="200"\} \d+/,
    );
    expect(text).toContain('route="/v1/data/*"');
    expect(text).toMatch(/verdict_http_requests_total\{route="unmatched",method="GET",status="404"\} 1/);
    expect(text).not.toContain('abc123');
    expect(text).not.toContain('decision/allow');
    expect(text).toMatch(
      /verdict_http_request_duration_seconds_count\{route="\/v1\/decisions",method="POST",status="200"\} \d+/,
    );
  });

  it('folds entrypoints not in the bundle into "other"', async () => {
    const headers = await authHeaders();
    const r = await app.inject({
      method: 'POST',
      url: '/v1/data/verdict/decision/allow',
      headers,
      payload: { input: envelope('read') },
    });
    expect(r.statusCode).toBe(200);
    const text = await scrape();
    expect(
      sampleValue(text, 'verdict_decisions_total', {
        entrypoint: 'other',
        outcome: 'allow',
        control: 'none',
      }),
    ).toBe(1);
    expect(text).not.toContain('entrypoint="verdict/decision/allow"');
  });

  it('counts undefined /v1/data paths as outcome "undefined", not as errors', async () => {
    const headers = await authHeaders();
    const undefinedOutcome = { entrypoint: 'other', outcome: 'undefined', control: 'none' };
    const before = await scrape();
    const undefined0 = sampleValue(before, 'verdict_decisions_total', undefinedOutcome) ?? 0;
    const error0 =
      sampleValue(before, 'verdict_decisions_total', { ...undefinedOutcome, outcome: 'error' }) ?? 0;
    for (const url of ['/v1/data/no/such/rule', '/v1/data/verdict/decision/no_such_field']) {
      const r = await app.inject({ method: 'POST', url, headers, payload: { input: envelope('read') } });
      expect(r.statusCode, url).toBe(200);
      expect(r.json().result, url).toBeUndefined();
    }
    const after = await scrape();
    expect(sampleValue(after, 'verdict_decisions_total', undefinedOutcome)).toBe(undefined0 + 2);
    expect(
      sampleValue(after, 'verdict_decisions_total', { ...undefinedOutcome, outcome: 'error' }) ?? 0,
    ).toBe(error0);
  });

  it('reports the active bundle revision and audit writer gauges', async () => {
    expect(app.metrics).toBe(metrics);
    const text = await scrape();
    expect(text).toMatch(
      /verdict_bundle_info\{revision="fixture-contract-[0-9a-f]+",digest="sha256:[0-9a-f]{64}"\} 1/,
    );
    metrics.watchAuditStats(() => ({ queueDepth: 7, spoolBytes: 4096, replayBacklogBytes: 2 }));
    const later = await scrape();
    expect(sampleValue(later, 'verdict_audit_queue_depth', {})).toBe(7);
    expect(sampleValue(later, 'verdict_audit_spool_bytes', {})).toBe(4096);
    expect(sampleValue(later, 'verdict_audit_replay_backlog_bytes', {})).toBe(2);
  });

  it('echoes traceparent with the same trace id and a new span id', async () => {
    const headers = await authHeaders();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const sent = `00-${traceId}-00f067aa0ba902b7-01`;
    const r = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers: { ...headers, traceparent: sent },
      payload: envelope('read'),
    });
    const echoed = String(r.headers.traceparent);
    expect(echoed).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(echoed).not.toBe(sent);
    const none = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers,
      payload: envelope('read'),
    });
    expect(none.headers.traceparent).toBeUndefined();
  });
});

describe('request logs', () => {
  it('writes one JSON line per request with request id, decision id, caller, route, status, duration and trace id; redacts secrets', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        cb();
      },
    });
    const config = resolveConfig({ VERDICT_DATA_DIR: '/tmp/verdict-test-data', LOG_LEVEL: 'info' });
    const secret = 'a-test-secret-of-at-least-32-bytes-long!';
    const recorder = new MemoryRecorder();
    const { app } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      recorder,
      keys: { kind: 'secret', secret, algorithms: ['HS256'] },
      logger: { ...loggerOptions({ ...config, logFormat: 'json' }, false), stream: sink } as never,
    });
    await app.ready();
    const headers = {
      authorization: `Bearer ${mintToken(secret, { sub: 'svc-logs', scopes: ['decisions:evaluate'] })}`,
    };
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const r = await app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers: { ...headers, 'x-request-id': 'req-42', traceparent: `00-${traceId}-b7ad6b7169203331-01` },
      payload: envelope('read'),
    });
    expect(r.statusCode).toBe(200);
    app.log.info({ headers: { authorization: 'Bearer s3cr3t-token' }, token: 'abc.def.ghi' }, 'probe');
    await app.close();
    const completed = lines.filter((l) => l.msg === 'request completed');
    expect(completed).toHaveLength(1);
    const line = completed[0]!;
    expect(line).toMatchObject({
      level: 'info',
      request_id: 'req-42',
      trace_id: traceId,
      decision_id: r.json().decision_id,
      route: '/v1/decisions',
      method: 'POST',
      status: 200,
    });
    expect(line.caller).toBe('svc-logs');
    expect(typeof line.duration_ms).toBe('number');
    expect(recorder.records[0]!.traceId).toBe(traceId);
    const probe = lines.find((l) => l.msg === 'probe')!;
    expect(JSON.stringify(probe)).not.toContain('s3cr3t');
    expect(JSON.stringify(probe)).not.toContain('abc.def.ghi');
    expect(JSON.stringify(lines)).not.toContain(headers.authorization.slice(7));
  });

  it('is JSON when not a TTY or in production, pretty only when asked and installed', () => {
    const base = { logLevel: 'info', nodeEnv: 'development' } as const;
    expect(loggerOptions({ ...base, logFormat: 'auto' }, false).transport).toBeUndefined();
    expect(
      loggerOptions({ ...base, logFormat: 'auto', nodeEnv: 'production' }, true).transport,
    ).toBeUndefined();
    expect(loggerOptions({ ...base, logFormat: 'auto' }, true).transport).toMatchObject({
      target: 'pino-pretty',
    });
    expect(loggerOptions({ ...base, logFormat: 'json' }, true).transport).toBeUndefined();
  });
});
