import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/http/app.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { sampleValue } from './scrape.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('load shedding', () => {
  let app: App;
  let authorization: string;
  beforeAll(async () => {
    const built = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      env: { VERDICT_SHED_EVENT_LOOP_DELAY_MS: '40', VERDICT_SHED_RETRY_AFTER_SECONDS: '7' },
    });
    app = built.app;
    authorization = `Bearer ${built.token(['decisions:evaluate'])}`;
  });
  afterAll(async () => app.close());

  const decide = () =>
    app.inject({
      method: 'POST',
      url: '/v1/decisions',
      headers: { authorization },
      payload: {
        subject: { type: 'user', id: 'u' },
        action: { name: 'read' },
        resource: { type: 'doc', id: 'd' },
      },
    });

  it('answers 503 overloaded with Retry-After while the event loop lags, keeps probes and /metrics up, and counts it', async () => {
    // Past the startup grace (two 500 ms sample windows after ready), with a quiet loop: served.
    await sleep(1_200);
    expect((await decide()).statusCode).toBe(200);
    // Block the loop past a sample window: the overdue sample right after it sees the lag. The
    // sampler's timer and the request race on a busy machine, so try a few overloads.
    let shed = await decide();
    for (let attempt = 0; attempt < 5 && shed.statusCode !== 503; attempt++) {
      const until = Date.now() + 700;
      while (Date.now() < until) {
        // busy: this is the overload
      }
      await sleep(20);
      shed = await decide();
    }
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('7');
    expect(shed.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(shed.json()).toMatchObject({ status: 503, code: 'overloaded' });
    // Load-shed answers carry the request id like every other answer.
    expect(String(shed.headers['x-request-id'])).toMatch(/^[0-9a-f-]{36}$/);
    expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(
      sampleValue(metrics.body, 'verdict_load_shed_total', { reason: 'eventLoopDelay' }),
    ).toBeGreaterThanOrEqual(1);
    // Once the loop is quiet for a full sample window, work is accepted again.
    await sleep(1_100);
    expect((await decide()).statusCode).toBe(200);
  }, 20_000);
});
