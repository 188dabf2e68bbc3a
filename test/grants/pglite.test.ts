import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEvents } from '../../src/audit/event-log.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import type { KeySource } from '../../src/auth/keys.ts';
import { loadBundleFile } from '../../src/bundles/active.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict, type Verdict } from '../../src/create-verdict.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { PGliteDatabase } from '../../src/store/pglite.ts';
import { BUNDLE } from './replicas.support.ts';

// The embedded mode (no DATABASE_URL, no REDIS_URL): migration 0005 and both flows on PGlite, with
// the in-process bus.

describe('waivers and approvals on embedded PGlite', () => {
  let db: PGliteDatabase;
  let verdict: Verdict;
  const secret = randomBytes(32).toString('base64url');
  const call = (
    method: 'GET' | 'POST',
    url: string,
    sub: string,
    scopes: string[],
    body?: unknown,
    human = false,
  ) =>
    verdict.app.inject({
      method,
      url,
      headers: {
        authorization: `Bearer ${mintToken(secret, { sub, scopes: scopes as never, ttlSeconds: 600, principalType: human ? 'human' : undefined })}`,
      },
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    });

  beforeAll(async () => {
    db = await PGliteDatabase.open(undefined);
    const keys: KeySource = { kind: 'secret', secret, algorithms: ['HS256'] };
    const config = resolveConfig({
      VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-grants-pglite-')),
      VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
    });
    verdict = await createVerdict(config, {
      database: db,
      keys,
      engine: await loadBundleFile(BUNDLE),
      redis: null,
      metrics: createMetrics({ defaultMetrics: false }),
    });
    await verdict.app.ready();
  });
  afterAll(async () => {
    await verdict?.close();
    await db?.close();
  });

  it('a waiver and an approval work end to end, and their events verify', async () => {
    const envelope = {
      subject: { type: 'agent', id: 'code-agent' },
      action: { name: 'tool.call' },
      resource: {
        type: 'tool',
        id: 'read_file',
        properties: { risk: 'high', arguments: { path: '/workspace/x' } },
      },
      context: { session: { tool_calls: 500 }, data_classification: 'internal' },
    };
    const decide = async (body: unknown) =>
      (await call('POST', '/v1/decisions', 'runtime', ['decisions:evaluate'], body)).json();

    const denied = await decide(envelope);
    expect(denied.allow).toBe(false);
    expect(denied.violations.map((v: { control: string }) => v.control).sort()).toEqual([
      'TOOL-003',
      'TOOL-006',
    ]);
    expect(denied.approval_request.id).toMatch(/^apr_/);

    const waiver = (
      await call('POST', '/v1/exceptions', 'lead', ['exceptions:request'], {
        control: 'TOOL-006',
        subject_id: 'code-agent',
        reason: 'long run',
        expires_at: new Date(Date.now() + 86_400_000).toISOString(),
      })
    ).json();
    expect(
      (await call('POST', `/v1/exceptions/${waiver.id}/approve`, 'ciso', ['exceptions:approve'], {})).json()
        .state,
    ).toBe('active');
    const granted = await call(
      'POST',
      `/v1/approvals/${denied.approval_request.id}/approve`,
      'alice',
      ['approvals:grant'],
      {},
      true,
    );
    expect(granted.json().state).toBe('granted');
    // The request carries the call's arguments (jsonb on PGlite too; issue 24).
    expect(granted.json().arguments).toEqual({ path: '/workspace/x' });

    const allowed = await decide({
      ...envelope,
      context: { ...envelope.context, approval_id: denied.approval_request.id },
    });
    expect(allowed).toMatchObject({
      allow: true,
      exceptions: [waiver.id],
      approvals: [denied.approval_request.id],
    });
    expect((await verifyEvents(db)).ok).toBe(true);
  });
});
