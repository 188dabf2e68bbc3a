import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { buildTestApp, type TestToken } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const envelope = {
  subject: { type: 'user', id: 'u1' },
  action: { name: 'read' },
  resource: { type: 'doc', id: 'd1' },
};

describe('X-Request-ID is echoed on every response', () => {
  let app: App;
  let token: TestToken;
  beforeAll(async () => {
    ({ app, token } = await buildTestApp({ bundlePath: contractFixtureBundle() }));
  });
  afterAll(async () => app.close());
  const bearer = (scopes?: Parameters<TestToken>[0]) => ({ authorization: `Bearer ${token(scopes)}` });

  // Each answer: [what, request]; the status is asserted too, so the error paths really are errors.
  const cases: [string, number, () => InjectOptions][] = [
    [
      'a decision',
      200,
      () => ({ method: 'POST', url: '/v1/decisions', headers: bearer(), payload: envelope }),
    ],
    [
      'an AuthZEN evaluation',
      200,
      () => ({ method: 'POST', url: '/access/v1/evaluation', headers: bearer(), payload: envelope }),
    ],
    [
      'POST /v1/data',
      200,
      () => ({
        method: 'POST',
        url: '/v1/data/verdict/decision',
        headers: bearer(),
        payload: { input: envelope },
      }),
    ],
    ['GET /v1/data', 200, () => ({ method: 'GET', url: '/v1/data/verdict/decision', headers: bearer() })],
    [
      'a /v1/data error (problem+json)',
      400,
      () => ({ method: 'GET', url: '/v1/data/verdict/decision?input=%7Bnope', headers: bearer() }),
    ],
    [
      'a schema error (problem+json)',
      400,
      () => ({ method: 'POST', url: '/v1/decisions', headers: bearer(), payload: { subject: 1 } }),
    ],
    ['a missing token (401)', 401, () => ({ method: 'POST', url: '/v1/decisions', payload: envelope })],
    [
      'a missing scope (403)',
      403,
      () => ({ method: 'POST', url: '/v1/decisions', headers: bearer(['audit:read']), payload: envelope }),
    ],
    ['an unknown route (404)', 404, () => ({ method: 'GET', url: '/no/such/route', headers: bearer() })],
    ['a liveness probe', 200, () => ({ method: 'GET', url: '/health/live' })],
    [
      'a URL that cannot be routed (bad percent-encoding)',
      400,
      () => ({ method: 'GET', url: '/v1/data/%E0%A4%A' }),
    ],
    ['the metrics scrape', 200, () => ({ method: 'GET', url: '/metrics' })],
  ];

  it.each(cases)('%s: the client id comes back as sent', async (_what, status, request) => {
    const sent = `gw-${Math.random().toString(36).slice(2)}:a/b=c`;
    const base = request();
    const response = await app.inject({ ...base, headers: { ...base.headers, 'x-request-id': sent } });
    expect(response.statusCode).toBe(status);
    expect(response.headers['x-request-id']).toBe(sent);
  });

  it.each(cases)('%s: without one, the generated id comes back', async (_what, status, request) => {
    const response = await app.inject(request());
    expect(response.statusCode).toBe(status);
    expect(String(response.headers['x-request-id'])).toMatch(UUID);
  });

  it('every generated id is new', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      ids.add(String((await app.inject({ method: 'GET', url: '/health/live' })).headers['x-request-id']));
    }
    expect(ids.size).toBe(5);
  });

  it.each([
    ['too long (129 characters)', 'a'.repeat(129)],
    ['with a space', 'a b'],
    ['with a tab', 'a\tb'],
    ['non-ASCII', 'caf\u00e9'],
    ['empty', ''],
  ])('an id %s is not reflected: a new one is generated', async (_what, sent) => {
    const response = await app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': sent },
    });
    expect(response.statusCode).toBe(200);
    expect(String(response.headers['x-request-id'])).toMatch(UUID);
  });

  it('an id of exactly 128 visible ASCII characters is kept', async () => {
    const sent = `${'x'.repeat(120)}~!"<>{}\\`;
    expect(sent).toHaveLength(128);
    const response = await app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': sent },
    });
    expect(response.headers['x-request-id']).toBe(sent);
  });
});

describe('a URL that cannot be routed', () => {
  it('answers problem+json like every other error, without reflecting the raw path', async () => {
    const { app } = await buildTestApp({ bundlePath: contractFixtureBundle() });
    try {
      const response = await app.inject({ method: 'GET', url: '/v1/%zz<script>' });
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ status: 400, code: 'bad_request' });
      expect(response.body).not.toContain('<script>');
      expect(String(response.headers['x-request-id'])).toMatch(UUID);
    } finally {
      await app.close();
    }
  });
});

describe('X-Request-ID on a rate-limited answer', () => {
  it('429 problem+json carries the id', async () => {
    const { app, token } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      env: { VERDICT_RATE_LIMIT_MAX: '1' },
    });
    try {
      const headers = { authorization: `Bearer ${token()}`, 'x-request-id': 'rl-1' };
      expect(
        (await app.inject({ method: 'POST', url: '/v1/decisions', headers, payload: envelope })).statusCode,
      ).toBe(200);
      const limited = await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        headers: { ...headers, 'x-request-id': 'rl-2' },
        payload: envelope,
      });
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['x-request-id']).toBe('rl-2');
      const unnamed = await app.inject({
        method: 'POST',
        url: '/v1/decisions',
        headers: { authorization: headers.authorization },
        payload: envelope,
      });
      expect(unnamed.statusCode).toBe(429);
      expect(String(unnamed.headers['x-request-id'])).toMatch(UUID);
    } finally {
      await app.close();
    }
  });
});

describe('X-Request-ID on the 503 answered while the server closes', () => {
  it('a request arriving on a kept-alive connection during close gets 503 with its id', async () => {
    let entered!: () => void;
    const slowEntered = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { app, token } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      plugins: [
        async (instance) => {
          instance.get('/test/slow', async () => {
            entered();
            await released;
            return { ok: true };
          });
        },
      ],
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      socket.write(
        `GET /test/slow HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${token()}\r\nConnection: keep-alive\r\n\r\n`,
      );
      await slowEntered;
      // The connection is busy, so closing keeps it; the next request on it arrives while closing.
      const closed = app.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.write('GET /health/live HTTP/1.1\r\nHost: t\r\nX-Request-ID: closing-1\r\n\r\n');
      await new Promise((resolve) => setTimeout(resolve, 50));
      release();
      await closed;
      await ended;
    } finally {
      socket.destroy();
      release();
    }
    const answers = received.split(/(?=HTTP\/1\.1 )/);
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatch(/^HTTP\/1\.1 200 /);
    expect(answers[1]).toMatch(/^HTTP\/1\.1 503 /);
    expect(answers[1]).toMatch(/\r\nx-request-id: closing-1\r\n/i);
  });
});
