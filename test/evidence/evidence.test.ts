/**
 * Evidence packages end to end on real Postgres and the real policy bundle: a release gated (denied),
 * then passing; GET /v1/evidence streams a signed tar.gz; `verdict evidence verify` checks it offline
 * (no database) — and reports each kind of tampering with what and where: an edited byte, a removed
 * record, reordered records, a swapped bundle, a rewritten chain (heads and hashes recomputed in the
 * database before the package was made).
 */
import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../src/decisions/types.ts';
import type { EvidenceManifest } from '../../src/evidence/package.ts';
import { type AuditTestApp, buildAuditApp } from '../audit/queries.support.ts';
import { contractFixtureBundle, DEFAULT_BUNDLE } from '../support/bundle.ts';
import { ed25519Pem, perfectRewrite, publicPemOf } from '../support/checkpoints.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { sampleEnvelopes } from '../support/envelopes.ts';
import { packEvidence, runVerdictCli, unpackEvidence } from './package.support.ts';

const RELEASE = { type: 'model_release', id: 'support-llm@3.3.0-rc1' };
const caller: Caller = { sub: 'deploy-pipeline', iss: null, clientId: null, scopes: ['decisions:evaluate'] };
const scratch = mkdtempSync(path.join(tmpdir(), 'verdict-evidence-test-'));
const checkpointPem = ed25519Pem();
const evidencePem = ed25519Pem();
const evidencePublic = publicPemOf(evidencePem);

let test: TestDatabase;
let audit: AuditTestApp;
let original: Buffer;

/** The envelope a pipeline sends (the service adds caller and now). */
function gate(pass: boolean) {
  const {
    caller: _c,
    now: _n,
    ...envelope
  } = pass ? sampleEnvelopes.releaseAllowed : sampleEnvelopes.releaseDenied;
  return { ...envelope, resource: { ...envelope.resource, id: RELEASE.id } };
}

async function decide(input: unknown) {
  return audit.decisions.decide({
    surface: 'native',
    entrypoint: 'verdict/decision',
    input,
    caller,
    traceId: null,
  });
}

async function fetchPackage(): Promise<Buffer> {
  const response = await audit.inject({
    method: 'GET',
    url: `/v1/evidence?resource_type=${RELEASE.type}&resource_id=${encodeURIComponent(RELEASE.id)}`,
  });
  expect(response.statusCode, response.body.slice(0, 300)).toBe(200);
  expect(response.headers['content-type']).toBe('application/gzip');
  return response.rawPayload;
}

/** Runs `verdict evidence verify` on the bytes; returns the exit code and what it printed. */
async function verifyCli(bytes: Buffer, key = evidencePublic): Promise<{ code: number; out: string }> {
  const file = path.join(scratch, `${crypto.randomUUID()}.tar.gz`);
  writeFileSync(file, bytes);
  return runVerdictCli(['evidence', 'verify', file, '--key', key]);
}

/** Packs files again; with `resign`, the manifest is edited, its hashes updated and it is signed again
 * with the evidence key (a packager holding that key but not the checkpoint key). */
const repack = (files: Map<string, Buffer>, resign?: (manifest: EvidenceManifest) => void) =>
  packEvidence(files, resign && { key: evidencePem, edit: resign });

const records = (files: Map<string, Buffer>) =>
  files
    .get('decisions.ndjson')!
    .toString()
    .split('\n')
    .filter((l) => l !== '');

beforeAll(async () => {
  test = await createTestDatabase('evidence');
  audit = await buildAuditApp({
    db: test.db,
    bundlePath: DEFAULT_BUNDLE,
    env: { VERDICT_CHECKPOINT_KEY: checkpointPem, VERDICT_EVIDENCE_KEY: evidencePem },
  });
  // The release is gated and denied, other decisions go on, it is fixed and passes.
  expect((await decide(gate(false))).allow).toBe(false);
  const { caller: _c, now: _n, ...tool } = sampleEnvelopes.toolCallAllowed;
  for (let i = 0; i < 3; i += 1) await decide(tool);
  expect((await decide(gate(true))).allow).toBe(true);
  await decide(tool);
  original = await fetchPackage();
}, 120_000);

afterAll(async () => {
  await audit?.close();
  await test?.drop();
});

describe('GET /v1/evidence and verdict evidence verify', () => {
  it('produces a signed package that verifies offline: records, chain, checkpoints, bundles, re-evaluation', async () => {
    const files = unpackEvidence(original);
    const manifest = JSON.parse(files.get('manifest.json')!.toString()) as EvidenceManifest;
    expect(manifest.resource).toEqual(RELEASE);
    expect(manifest.decisions).toHaveLength(2);
    expect(records(files).map((l) => JSON.parse(l).allow)).toEqual([false, true]);
    expect(manifest.bundles).toHaveLength(1);
    expect(files.has(manifest.bundles[0]!.path!)).toBe(true);
    expect(manifest.segments).toHaveLength(1);
    expect(manifest.segments[0]!.checkpoint).not.toBeNull();
    // The segment covers the tool calls between the two gate decisions too.
    expect(manifest.segments[0]!.to_seq - manifest.segments[0]!.from_seq).toBeGreaterThanOrEqual(4);
    const result = await verifyCli(original);
    expect(result.out).toContain('evidence: OK');
    expect(result.out).toContain('2 decisions re-evaluated');
    expect(result.code).toBe(0);
  });

  it('publishes the keys as a public JWKS, and verifies with --jwks', async () => {
    const response = await audit.app.inject({ method: 'GET', url: '/v1/evidence/keys' });
    expect(response.statusCode).toBe(200);
    const { keys } = response.json();
    expect(keys).toHaveLength(2);
    for (const key of keys)
      expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    const address = await audit.app.listen({ port: 0, host: '127.0.0.1' });
    const file = path.join(scratch, 'jwks.tar.gz');
    writeFileSync(file, original);
    const result = await runVerdictCli(['evidence', 'verify', file, '--jwks', `${address}/v1/evidence/keys`]);
    expect(result.out).toContain('evidence: OK');
    expect(result.code).toBe(0);
    // Usage errors exit 2: no key, unknown subcommand.
    expect((await runVerdictCli(['evidence', 'verify', file])).code).toBe(2);
    expect((await runVerdictCli(['evidence', 'check', file])).code).toBe(2);
  });

  it('refuses bad requests: 400 without resource, 404 for an unknown one, 403 without audit:read', async () => {
    const missing = await audit.inject({ method: 'GET', url: '/v1/evidence?resource_type=model_release' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().code).toBe('invalid_request');
    const unknown = await audit.inject({
      method: 'GET',
      url: '/v1/evidence?resource_type=model_release&resource_id=nope',
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe('evidence_not_found');
    const bad = await audit.inject({
      method: 'GET',
      url: '/v1/evidence?resource_type=a&resource_id=b&from=soon',
    });
    expect(bad.statusCode).toBe(400);
    const scope = await audit.inject({ method: 'GET', url: `/v1/evidence?resource_type=a&resource_id=b` }, [
      'decisions:evaluate',
    ]);
    expect(scope.statusCode).toBe(403);
  });

  it('reports an edited byte, naming the file', async () => {
    const files = unpackEvidence(original);
    const text = files.get('decisions.ndjson')!.toString().replace('"allow":false', '"allow":true ');
    files.set('decisions.ndjson', Buffer.from(text));
    const result = await verifyCli(repack(files));
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/\[file\] decisions\.ndjson: its SHA-256 is .* the file was altered/);
    // Even re-signed, the record's hash no longer matches its fields.
    const resigned = await verifyCli(repack(files, () => {}));
    expect(resigned.code).toBe(1);
    expect(resigned.out).toMatch(/\[decision\] decision .*: edited/);
  });

  it('reports a removed record, with where the chain still holds it', async () => {
    const files = unpackEvidence(original);
    const [first, second] = records(files);
    const removed = JSON.parse(first!);
    files.set('decisions.ndjson', Buffer.from(`${second}\n`));
    expect((await verifyCli(repack(new Map(files)))).out).toContain('[file] decisions.ndjson');
    const result = await verifyCli(
      repack(files, (m) => {
        m.decisions = m.decisions.filter((d) => d.id !== removed.id);
      }),
    );
    expect(result.code).toBe(1);
    expect(result.out).toContain(
      `[decision] decision ${removed.id}: removed: the chain of writer ${removed.writer_id} holds it at seq ${removed.seq}`,
    );
  });

  it('reports reordered records', async () => {
    const files = unpackEvidence(original);
    const [first, second] = records(files);
    files.set('decisions.ndjson', Buffer.from(`${second}\n${first}\n`));
    const result = await verifyCli(repack(files, () => {}));
    expect(result.code).toBe(1);
    expect(result.out).toContain('reordered');
    expect(result.out).toContain(`decision ${JSON.parse(first!).id}`);
  });

  it('reports a swapped bundle', async () => {
    const files = unpackEvidence(original);
    const manifest = JSON.parse(files.get('manifest.json')!.toString()) as EvidenceManifest;
    const bundlePath = manifest.bundles[0]!.path!;
    const other = readFileSync(contractFixtureBundle());
    files.set(bundlePath, other);
    expect((await verifyCli(repack(new Map(files)))).out).toContain(`[file] ${bundlePath}`);
    // Re-signed with the listed digest kept: the bytes are another revision.
    const kept = await verifyCli(repack(new Map(files), () => {}));
    expect(kept.code).toBe(1);
    expect(kept.out).toMatch(
      new RegExp(
        `\\[bundle\\] ${bundlePath}: swapped: it is revision sha256:\\w+, not ${manifest.bundles[0]!.digest}`,
      ),
    );
    // Re-signed naming the new digest: the records were decided on the old one.
    const renamed = await verifyCli(
      repack(new Map(files), (m) => {
        m.bundles[0]!.digest = `sha256:${crypto.hash('sha256', other, 'hex')}`;
      }),
    );
    expect(renamed.code).toBe(1);
    expect(renamed.out).toContain(
      `decided on ${manifest.bundles[0]!.digest}, which the package does not contain`,
    );
  });

  it('reports a chain rewritten in the database (heads and hashes recomputed) against the signed checkpoint', async () => {
    const manifest = JSON.parse(
      unpackEvidence(original).get('manifest.json')!.toString(),
    ) as EvidenceManifest;
    const denied = manifest.decisions[0]!;
    // Flip the denied gate to an allow and recompute every later hash and the head: plain chain
    // verification accepts this.
    await perfectRewrite(test.db, denied.writer_id, denied.seq);
    const chain = (await audit.inject({ method: 'GET', url: '/v1/audit/verify' })).json();
    expect(chain.firstBroken).toBeUndefined();

    const rewritten = await fetchPackage();
    const result = await verifyCli(rewritten);
    expect(result.code).toBe(1);
    expect(result.out).toMatch(
      /\[checkpoint\] chain of writer .*, seq \d+: rewritten: the chain reaches \w+ at seq \d+, but \w+ was signed there/,
    );
    // And the flipped record no longer is what the policy gives.
    expect(result.out).toContain(
      `[evaluation] decision ${denied.id}: the policy gives allow=false, the record says allow=true`,
    );
  });
});
