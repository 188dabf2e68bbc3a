import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp } from '../support/app.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

// VERDICT_LEGACY_CLIENT_APPROVALS: the only way a client-sent context.approval still satisfies
// TOOL-003 (off by default; docs/threat-model.md T16).

const highRisk = {
  subject: { type: 'agent', id: 'code-agent' },
  action: { name: 'tool.call' },
  resource: {
    type: 'tool',
    id: 'read_file',
    properties: { risk: 'high', arguments: { path: '/workspace/a' } },
  },
  context: {
    session: { tool_calls: 1 },
    data_classification: 'internal',
    approval: { approved_by: 'alice@example.com', expires_at: '2099-01-01T00:00:00Z' },
  },
};

describe('client-sent approvals', () => {
  const apps: Awaited<ReturnType<typeof buildTestApp>>[] = [];
  beforeAll(async () => {
    apps.push(await buildTestApp({ bundlePath: DEFAULT_BUNDLE }));
    apps.push(
      await buildTestApp({ bundlePath: DEFAULT_BUNDLE, env: { VERDICT_LEGACY_CLIENT_APPROVALS: 'true' } }),
    );
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  it('are ignored by default, and count only under the legacy setting (recorded in the input)', async () => {
    const [strict, legacy] = apps as [(typeof apps)[0], (typeof apps)[0]];
    const denied = await strict.injectWithToken({ method: 'POST', url: '/v1/decisions', payload: highRisk });
    expect(denied.json().allow).toBe(false);
    expect(denied.json().violations.map((v: { control: string }) => v.control)).toEqual(['TOOL-003']);

    const allowed = await legacy.injectWithToken({ method: 'POST', url: '/v1/decisions', payload: highRisk });
    expect(allowed.json().allow).toBe(true);
    // The record says the legacy rule was in force, so a replay reproduces it.
    const records = (legacy.recorder as unknown as { records: { input: Record<string, unknown> }[] }).records;
    expect(records.at(-1)!.input.grants).toEqual({ legacy_client_approvals: true });
  });
});
