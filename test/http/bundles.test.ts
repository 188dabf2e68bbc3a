/**
 * The bundle API end to end on real Postgres, through the composition root (createVerdict with the
 * lifecycle on): upload (201/200, 400 codes, 413, 415), scopes, activation and its compare-and-set
 * (409), upload-and-activate, shadow evaluation on real decisions (stored in the record, counted in
 * the metric, reported with sample ids), policy events listed and covered by /v1/audit/verify (an
 * edited event is detected), status, and the routes in /openapi.json.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scope } from '../../src/auth/caller.ts';
import type { Verdict } from '../../src/create-verdict.ts';
import { sampleValue } from '../observability/scrape.ts';
import type { TestDatabase } from '../support/database.ts';
import { opaBuild, scratchDir, writePolicy } from '../support/signed-bundle.ts';
import { startTestVerdict, type TestVerdict } from '../support/verdict.ts';

let dir: string;
let live: TestVerdict;
let database: TestDatabase;
let verdict: Verdict;
let allow: Buffer;
let deny: Buffer;
let seedPath: string;

const token = (scopes: readonly Scope[], sub = 'author') => live.token(sub, scopes);

function call(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  options: { scopes?: readonly Scope[]; body?: unknown; bundle?: Buffer; type?: string; sub?: string } = {},
): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${token(options.scopes ?? ['bundles:write', 'bundles:read', 'audit:read', 'decisions:evaluate'], options.sub)}`,
  };
  let payload: string | Buffer | undefined;
  if (options.bundle) {
    headers['content-type'] = options.type ?? 'application/gzip';
    payload = options.bundle;
  } else if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(options.body);
  }
  return verdict.app.inject({ method, url, headers, payload });
}

const decide = async () => {
  const response = await call('POST', '/v1/decisions', {
    body: {
      subject: { type: 'agent', id: 'a1' },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 't' },
    },
  });
  expect(response.statusCode).toBe(200);
  return response.json() as {
    decision_id: string;
    allow: boolean;
    policy: { revision: string; digest: string };
  };
};

beforeAll(async () => {
  dir = scratchDir('bundle-api');
  seedPath = opaBuild(writePolicy(dir, { allow: true }), path.join(dir, 'seed.tar.gz'), { revision: 'seed' });
  allow = readFileSync(
    opaBuild(
      writePolicy(dir, { allow: true, files: { 'data.json': '{"v": 2}' } }),
      path.join(dir, 'allow.tar.gz'),
      { revision: 'allow-2' },
    ),
  );
  deny = readFileSync(
    opaBuild(writePolicy(dir, { allow: false }), path.join(dir, 'deny.tar.gz'), { revision: 'deny-1' }),
  );
  live = await startTestVerdict('bundle_api', {
    bundle: seedPath,
    env: { VERDICT_BUNDLE_MAX_BYTES: String(Math.max(allow.byteLength, deny.byteLength) + 4096) },
  });
  ({ verdict, database } = live);
});

afterAll(async () => {
  await live?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the bundle API', () => {
  let denyDigest: string;
  let seedDigest: string;

  it('starts on the seeded revision, recorded as an upload and activation by system', async () => {
    const listed = (await call('GET', '/v1/bundles')).json() as {
      revisions: { revision: string; state: string; uploaded_by: string; digest: string }[];
    };
    expect(listed.revisions).toHaveLength(1);
    expect(listed.revisions[0]).toMatchObject({ revision: 'seed', state: 'active', uploaded_by: 'system' });
    seedDigest = listed.revisions[0]!.digest;
    expect((await decide()).policy.revision).toBe('seed');
  });

  it('uploads: 201 the first time, 200 with the same body for the same bytes', async () => {
    const first = await call('POST', '/v1/bundles?reason=tighten', { bundle: deny, sub: 'alice' });
    expect(first.statusCode).toBe(201);
    const body = first.json();
    expect(body).toMatchObject({
      revision: 'deny-1',
      entrypoints: ['verdict/decision'],
      size: deny.byteLength,
      signed: false,
      uploaded_by: 'alice',
      state: 'inactive',
    });
    expect(body.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    denyDigest = body.digest;
    const again = await call('POST', '/v1/bundles', {
      bundle: deny,
      type: 'application/vnd.openpolicyagent.bundles',
    });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(body);
    const one = await call('GET', `/v1/bundles/${denyDigest.slice(7)}`);
    expect(one.json()).toEqual(body);
    const content = await call('GET', `/v1/bundles/${denyDigest.slice(7)}/content`);
    expect(content.headers['content-type']).toBe('application/gzip');
    expect(content.rawPayload.equals(deny)).toBe(true);
  });

  it('refuses bad bundles with a stable code and the reason, and big ones with 413', async () => {
    const garbage = await call('POST', '/v1/bundles', { bundle: Buffer.from('not a tarball') });
    expect(garbage.statusCode).toBe(400);
    expect(garbage.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(garbage.json().code).toBe('bundle_invalid');
    // A refused bundle is counted once, by the bundle routes' error hook.
    const scraped = await verdict.metrics.registry.metrics();
    expect(sampleValue(scraped, 'verdict_bundle_load_failures_total', { source: 'upload' })).toBe(1);
    const tooBig = await call('POST', '/v1/bundles', { bundle: Buffer.alloc(deny.byteLength + 8192, 1) });
    expect(tooBig.statusCode).toBe(413);
    const wrongType = await call('POST', '/v1/bundles', { bundle: deny, type: 'text/plain' });
    expect(wrongType.statusCode).toBe(415);
    expect(wrongType.json().detail).toMatch(/application\/gzip/);
    const missing = await call('GET', `/v1/bundles/${'0'.repeat(64)}`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('bundle_not_found');
    expect((await call('GET', '/v1/bundles/nothex')).json().code).toBe('invalid_digest');
  });

  it('guards every route with its scope (read: bundles:read or audit:read)', async () => {
    expect((await call('POST', '/v1/bundles', { bundle: deny, scopes: ['bundles:read'] })).statusCode).toBe(
      403,
    );
    expect((await call('GET', '/v1/bundles', { scopes: ['decisions:evaluate'] })).statusCode).toBe(403);
    expect((await call('GET', '/v1/bundles', { scopes: ['audit:read'] })).statusCode).toBe(200);
    expect((await call('GET', '/v1/bundles/status', { scopes: ['bundles:read'] })).statusCode).toBe(200);
    expect((await call('GET', '/v1/bundles/shadow/report', { scopes: ['bundles:read'] })).statusCode).toBe(
      403,
    );
    const activate = await call('POST', `/v1/bundles/${denyDigest.slice(7)}/activate`, {
      scopes: ['bundles:read'],
      body: {},
    });
    expect(activate.statusCode).toBe(403);
  });

  it('shadows a revision: decisions keep their answer, the record carries the shadow result, flips are counted and reported', async () => {
    const set = await call('POST', `/v1/bundles/${denyDigest.slice(7)}/shadow`, {
      body: { reason: 'try deny' },
    });
    expect(set.statusCode).toBe(200);
    expect(set.json().state.shadow).toBe(denyDigest);
    await verdict.replica!.waitFor(set.json().state.version);
    const decided = [await decide(), await decide(), await decide()];
    expect(decided.every((d) => d.allow)).toBe(true);
    const record = await database.db.query<{
      shadow: { digest: string; allow: boolean; controls: string[] };
    }>({
      text: 'SELECT shadow FROM decision_log WHERE id = $1',
      values: [decided[0]!.decision_id],
    });
    expect(record.rows[0]!.shadow).toMatchObject({
      digest: denyDigest,
      allow: false,
      controls: ['TEST-001'],
    });
    const metrics = await verdict.metrics.registry.metrics();
    expect(
      sampleValue(metrics, 'verdict_shadow_divergences_total', {
        entrypoint: 'verdict/decision',
        direction: 'allow_to_deny',
      }),
    ).toBe(3);
    expect(
      sampleValue(metrics, 'verdict_shadow_divergences_total', {
        entrypoint: 'verdict/decision',
        direction: 'deny_to_allow',
      }),
    ).toBe(0);

    const report = await call('GET', '/v1/bundles/shadow/report', { scopes: ['audit:read'] });
    expect(report.statusCode).toBe(200);
    const body = report.json();
    expect(body.compared).toBe(3);
    expect(body.shadow_digests).toEqual([denyDigest]);
    expect(body.flips).toEqual([
      { direction: 'allow_to_deny', count: 3, sample_ids: decided.map((d) => d.decision_id).reverse() },
      { direction: 'deny_to_allow', count: 0, sample_ids: [] },
    ]);
    expect(body.by_control).toEqual([
      {
        direction: 'allow_to_deny',
        control: 'TEST-001',
        count: 3,
        sample_ids: expect.arrayContaining([decided[0]!.decision_id]),
      },
    ]);
    expect((await call('GET', '/v1/bundles/shadow/report?from=yesterday')).json().code).toBe(
      'invalid_parameter',
    );

    // Another shadow revision: the report defaults to it, not to the flips of the earlier one.
    const next = await call('POST', `/v1/bundles/${seedDigest.slice(7)}/shadow`, {
      body: { reason: 'try the seed' },
    });
    expect(next.statusCode, next.body).toBe(200);
    await verdict.replica!.waitFor(next.json().state.version);
    await decide();
    const current = (await call('GET', '/v1/bundles/shadow/report', { scopes: ['audit:read'] })).json();
    expect(current).toMatchObject({ digest: seedDigest, compared: 1, shadow_digests: [seedDigest] });
    const earlier = await call('GET', `/v1/bundles/shadow/report?digest=${denyDigest}`, {
      scopes: ['audit:read'],
    });
    expect(earlier.json()).toMatchObject({ compared: 3, shadow_digests: [denyDigest] });

    const cleared = await call('DELETE', '/v1/bundles/shadow?reason=seen+enough');
    expect(cleared.json()).toMatchObject({ changed: true, state: { shadow: null } });
  });

  it('activates with compare-and-set: 409 when another revision became active, then rollback', async () => {
    const activated = await call('POST', `/v1/bundles/${denyDigest.slice(7)}/activate`, {
      body: { reason: 'ship deny', expected_active: seedDigest },
      sub: 'alice',
    });
    expect(activated.statusCode).toBe(200);
    await verdict.replica!.waitFor(activated.json().state.version);
    expect((await decide()).policy.revision).toBe('deny-1');
    const stale = await call('POST', `/v1/bundles/${seedDigest.slice(7)}/activate`, {
      body: { expected_active: seedDigest },
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({
      code: 'activation_conflict',
      active: denyDigest,
      expected_active: seedDigest,
    });
    const rollback = await call('POST', `/v1/bundles/${seedDigest.slice(7)}/activate`, {
      body: { reason: 'roll back' },
    });
    await verdict.replica!.waitFor(rollback.json().state.version);
    expect((await decide()).policy.revision).toBe('seed');
  });

  it('uploads and activates in one call for pipelines', async () => {
    const response = await call('POST', '/v1/bundles?activate=true&reason=pipeline', {
      bundle: allow,
      sub: 'ci',
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ revision: 'allow-2', state: 'active', uploaded_by: 'ci' });
    await verdict.replica!.sync();
    expect((await decide()).policy.revision).toBe('allow-2');
  });

  it('lists the replica in the status with what it serves', async () => {
    const status = (await call('GET', '/v1/bundles/status')).json();
    expect(status.desired.active).toMatch(/^sha256:/);
    expect(status.replicas).toHaveLength(1);
    expect(status.replicas[0]).toMatchObject({
      pid: process.pid,
      active: status.desired.active,
      failure: null,
    });
  });

  it('records every change as a chained policy event that /v1/audit/verify checks', async () => {
    const events = (await call('GET', '/v1/bundles/events')).json().events as {
      action: string;
      actor: string;
      reason: string | null;
      id: string;
    }[];
    expect(events.map((e) => `${e.action}:${e.actor}`)).toEqual([
      'activate:ci',
      'upload:ci',
      'activate:author',
      'activate:alice',
      'shadow_clear:author',
      'shadow_set:author',
      'shadow_set:author',
      'refuse:author',
      'upload:alice',
      'activate:system',
      'upload:system',
    ]);
    const refusals = (await call('GET', '/v1/bundles/events?action=refuse')).json().events;
    expect(refusals).toHaveLength(1);
    const verify = (await call('GET', '/v1/audit/verify', { scopes: ['audit:read'] })).json();
    expect(verify.ok).toBe(true);
    expect(verify.events).toMatchObject({ ok: true, checked: 11 });

    await database.db.query({
      text: `UPDATE platform_events SET reason = 'nothing to see' WHERE id = $1`,
      values: [events[3]!.id],
    });
    const tampered = (await call('GET', '/v1/audit/verify', { scopes: ['audit:read'] })).json();
    expect(tampered.ok).toBe(false);
    expect(tampered.events.firstBroken).toMatchObject({ eventId: events[3]!.id, reason: 'edited' });
  });

  it('describes every bundle route in /openapi.json', async () => {
    const spec = (await verdict.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const route of [
      '/v1/bundles',
      '/v1/bundles/status',
      '/v1/bundles/events',
      '/v1/bundles/shadow',
      '/v1/bundles/shadow/report',
      '/v1/bundles/{digest}',
      '/v1/bundles/{digest}/content',
      '/v1/bundles/{digest}/activate',
      '/v1/bundles/{digest}/shadow',
    ]) {
      expect(spec.paths, route).toHaveProperty([route]);
    }
  });
});
