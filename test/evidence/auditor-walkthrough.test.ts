/**
 * README, "Evidence for an auditor", in depth (test/deploy/readme-blocks.test.ts runs its blocks as
 * written): a model release is gated and denied (one license off the allowlist), waived once
 * (requested by one person, approved by another), passes on the waiver, then passes on its own once fixed; the auditor downloads the evidence package and
 * verifies it offline with `verdict evidence verify`, and reads the KPIs. Real Postgres, the real
 * policy bundle.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvidenceManifest } from '../../src/evidence/package.ts';
import { type AuditTestApp, buildAuditApp } from '../audit/queries.support.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { ed25519Pem } from '../support/checkpoints.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { sampleEnvelopes } from '../support/envelopes.ts';
import { packEvidence, runVerdictCli, unpackEvidence } from './package.support.ts';

const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
const RELEASE_ID = 'support-llm@4.0.0';
const keyPem = ed25519Pem();
let test: TestDatabase;
let audit: AuditTestApp;

beforeAll(async () => {
  test = await createTestDatabase('walkthrough');
  audit = await buildAuditApp({
    db: test.db,
    bundlePath: DEFAULT_BUNDLE,
    env: {
      VERDICT_CHECKPOINT_KEY: keyPem,
    },
  });
}, 60_000);

afterAll(async () => {
  await audit?.close();
  await test?.drop();
});

/** The pipeline's gate call: POST /v1/decisions with the release envelope. */
async function gate(licenses: string[]) {
  const { caller: _c, now: _n, ...envelope } = sampleEnvelopes.releaseAllowed;
  const response = await audit.inject(
    {
      method: 'POST',
      url: '/v1/decisions',
      payload: {
        ...envelope,
        resource: {
          ...envelope.resource,
          id: RELEASE_ID,
          properties: { ...envelope.resource.properties, licenses },
        },
      },
    },
    ['decisions:evaluate'],
    'deploy-pipeline',
  );
  expect(response.statusCode).toBe(200);
  return response.json();
}

describe('README: Evidence for an auditor', () => {
  it('is in the README, with the commands this test runs', () => {
    expect(readme).toContain('## Evidence for an auditor');
    for (const needle of [
      'POST /v1/exceptions',
      '/v1/evidence?resource_type=model_release&resource_id=',
      'evidence verify evidence.tar.gz',
      '--jwks',
      '/v1/kpis',
    ])
      expect(readme).toContain(needle);
  });

  it('gates a release, waives it once, passes it, and the package verifies offline', async () => {
    // 1. Gated: a license off the allowlist fails REL-004.
    const denied = await gate(['Apache-2.0', 'CC-BY-NC-4.0']);
    expect(denied.allow).toBe(false);
    expect(denied.violations.map((v: { control: string }) => v.control)).toEqual(['REL-004']);

    // 2. Waived once: requested by the release owner, approved by a risk owner (four eyes).
    const requested = await audit.inject(
      {
        method: 'POST',
        url: '/v1/exceptions',
        payload: {
          control: 'REL-004',
          resource_id: RELEASE_ID,
          reason: 'CC-BY-NC data used for evaluation only; legal sign-off LEGAL-311',
          expires_at: new Date(Date.now() + 7 * 86_400_000).toISOString(),
        },
      },
      ['exceptions:request'],
      'dana@example.com',
    );
    expect(requested.statusCode, requested.body).toBe(201);
    const waiver = requested.json();
    const approved = await audit.inject(
      { method: 'POST', url: `/v1/exceptions/${waiver.id}/approve`, payload: { reason: 'accepted risk' } },
      ['exceptions:approve'],
      'erin@example.com',
    );
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json().state).toBe('active');
    const waived = await gate(['Apache-2.0', 'CC-BY-NC-4.0']);
    expect(waived.allow).toBe(true);
    expect(waived.exceptions).toEqual([waiver.id]);

    // 3. Fixed: the license replaced, the gate passes on its own.
    const passed = await gate(['Apache-2.0']);
    expect(passed.allow).toBe(true);
    expect(passed.exceptions).toEqual([]);

    // 4. The auditor downloads the evidence package…
    const response = await audit.inject({
      method: 'GET',
      url: `/v1/evidence?resource_type=model_release&resource_id=${encodeURIComponent(RELEASE_ID)}`,
    });
    expect(response.statusCode).toBe(200);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'verdict-walkthrough-')), 'evidence.tar.gz');
    writeFileSync(file, response.rawPayload);
    const files = unpackEvidence(response.rawPayload);
    const manifest = JSON.parse(files.get('manifest.json')!.toString()) as EvidenceManifest;
    expect(manifest.decisions).toHaveLength(3);
    expect(manifest.grants.waivers).toEqual([waiver.id]);
    const history = files
      .get('grants/events.ndjson')!
      .toString()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l).action);
    expect(history).toEqual(expect.arrayContaining(['request', 'activate']));

    // …and verifies it offline, with the published keys.
    const address = await audit.app.listen({ port: 0, host: '127.0.0.1' });
    const { code, out } = await runVerdictCli([
      'evidence',
      'verify',
      file,
      '--jwks',
      `${address}/v1/evidence/keys`,
    ]);
    expect(out).toContain('evidence: OK — model_release support-llm@4.0.0');
    expect(out).toContain('3 decisions re-evaluated');
    expect(code).toBe(0);

    // A package whose waiver was taken out (even re-signed by the key holder) no longer verifies.
    files.set('grants/waivers.ndjson', Buffer.from(''));
    const tampered = path.join(path.dirname(file), 'tampered.tar.gz');
    writeFileSync(tampered, packEvidence(files, { key: keyPem }));
    const rejected = await runVerdictCli([
      'evidence',
      'verify',
      tampered,
      '--jwks',
      `${address}/v1/evidence/keys`,
    ]);
    expect(rejected.code).toBe(1);
    expect(rejected.out).toContain(
      `[grant] waiver ${waiver.id}: cited by a decision but missing from the package`,
    );

    // 5. The KPIs show the same story.
    const kpis = (await audit.inject({ method: 'GET', url: '/v1/kpis?bucket=day' })).json();
    expect(kpis.release_gates).toMatchObject({
      decisions: 3,
      passes: 2,
      releases: 1,
      first_attempt_passes: 0,
    });
    expect(kpis.release_gates.time_to_remediate_seconds.count).toBe(1);
    expect(kpis.waivers).toMatchObject({ allows: 2, allows_with_waiver: 1, requested: 1, approved: 1 });
    expect(kpis.waivers.approval_latency_seconds.count).toBe(1);
  });
});
