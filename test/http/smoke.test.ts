import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.ts';
import type { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

let app: App;
// Every request carries a token with all scopes (auth itself is tested in test/auth/).
let inject: Awaited<ReturnType<typeof buildTestApp>>['injectWithToken'];
let recorder: MemoryRecorder;
beforeAll(async () => {
  ({
    app,
    recorder,
    injectWithToken: inject,
  } = (await buildTestApp({ bundlePath: contractFixtureBundle() })) as never);
});
afterAll(async () => app.close());

const envelope = (action: string) => ({
  subject: { type: 'user', id: 'u1' },
  action: { name: action },
  resource: { type: 'doc', id: 'd1' },
});

describe('smoke', () => {
  it('allows and denies', async () => {
    const allow = await inject({ method: 'POST', url: '/v1/decisions', payload: envelope('read') });
    expect(allow.statusCode).toBe(200);
    expect(allow.json().allow).toBe(true);
    const deny = await inject({ method: 'POST', url: '/v1/decisions', payload: envelope('write') });
    expect(deny.json().allow).toBe(false);
    expect(recorder.records.length).toBe(2);
  });
});
