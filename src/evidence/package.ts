import crypto from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { create } from 'tar';
import { coveringCheckpointSql } from '../audit/checkpoint-sql.ts';
import { type Checkpoint, checkpointFromDatabase, type SigningKey } from '../audit/checkpoints.ts';
import {
  chainSegmentSql,
  type DecisionRow,
  resourceDecisionsSql,
  rowFromDatabase,
} from '../audit/decision-log.ts';
import { type EventRow, eventFromDatabase, grantEventsSql, policyEventsSql } from '../audit/event-log.ts';
import { approvalRowsSql, waiverRowsSql } from '../grants/grants-sql.ts';
import type { Database } from '../store/types.ts';

/**
 * Evidence packages (docs/api-audit.md, "Evidence packages"; ADR 0010): one signed tar.gz with
 * everything an auditor needs to check, offline, what Verdict decided about one resource — the
 * records, the exact policy revisions they were decided on, the policy events of the period, and
 * the hash-chain segments that link each record to a signed checkpoint.
 */

/** The signature input is this prefix and the manifest's bytes: never mistakable for a checkpoint's. */
export const MANIFEST_SIGNATURE_PREFIX = 'verdict-evidence-manifest-v1\n';

/** One file of the package, as the manifest lists it. */
export interface ManifestFile {
  path: string;
  sha256: string;
  bytes: number;
}

/** A chain segment: a writer's rows from `from_seq` to `to_seq`, ending at a signed checkpoint. */
export interface ManifestSegment {
  writer_id: string;
  from_seq: number;
  to_seq: number;
  path: string;
  /** The checkpoint at `to_seq` (null: none yet — the segment then ends at the writer's head, unanchored). */
  checkpoint: { seq: number; hash: string; signed_at: string } | null;
}

/** manifest.json. */
export interface EvidenceManifest {
  v: 1;
  kind: 'verdict-evidence';
  created_at: string;
  resource: { type: string; id: string };
  window: { from: string | null; to: string | null };
  /** The decisions, in (decided_at, id) order: their chain positions and the revision decided on. */
  decisions: { id: string; writer_id: string; seq: number; hash: string; bundle_digest: string }[];
  bundles: { digest: string; path: string | null }[];
  segments: ManifestSegment[];
  events: number;
  /** The waivers (record `exceptions`) and approvals (result `approvals`) the decisions cite. */
  grants: { waivers: string[]; approvals: string[] };
  files: ManifestFile[];
  /** The key that signed this manifest, and the key the checkpoints are signed with (JWK). */
  evidence_key_id: string;
  checkpoint_key: Record<string, string> | null;
}

/** What building a package needs. */
export interface EvidenceSource {
  db: Database;
  /** A stored revision's bytes by digest (RevisionStore.get(...).bytes). */
  bundleBytes: (digest: string) => Promise<Buffer | null>;
  evidenceKey: SigningKey;
  checkpointKey: SigningKey | undefined;
  /** Signs the current chain heads first, so that every record is covered by a checkpoint. */
  checkpointNow?: () => Promise<unknown>;
  clock?: () => Date;
}

/** The resource and window of a package. */
export interface EvidenceQuery {
  resourceType: string;
  resourceId: string;
  from?: string;
  to?: string;
}

/** No decision about the resource in the window. */
export class EvidenceNotFoundError extends Error {
  override name = 'EvidenceNotFoundError';
  readonly code = 'evidence_not_found';
  readonly kind = 'not_found';
}

const sha256 = (bytes: Buffer | string) => crypto.hash('sha256', bytes, 'hex');
const ndjson = (rows: readonly unknown[]) => rows.map((row) => `${JSON.stringify(row)}\n`).join('');
const fileName = (text: string) => text.replace(/[^A-Za-z0-9_.-]/g, '_');

/** The files of a package, in archive order (manifest.json and manifest.sig first). */
export async function buildEvidenceFiles(
  source: EvidenceSource,
  query: EvidenceQuery,
): Promise<Map<string, Buffer>> {
  await source.checkpointNow?.();
  const decisions = await readDecisions(source.db, query);
  const files = new Map<string, Buffer>();
  files.set('decisions.ndjson', Buffer.from(ndjson(decisions)));
  const bundles = await addBundles(source, decisions, files);
  const segments = await addChainSegments(source.db, decisions, files);
  const events = await addPolicyEvents(source.db, query, decisions, files);
  const grants = await addGrants(source.db, decisions, files);
  const manifest: EvidenceManifest = {
    v: 1,
    kind: 'verdict-evidence',
    created_at: (source.clock?.() ?? new Date()).toISOString(),
    resource: { type: query.resourceType, id: query.resourceId },
    window: { from: query.from ?? null, to: query.to ?? null },
    decisions: decisions.map((d) => ({
      id: d.id,
      writer_id: d.writer_id,
      seq: d.seq,
      hash: d.hash,
      bundle_digest: d.bundle_digest,
    })),
    bundles,
    segments,
    events,
    grants,
    files: [...files].map(([file, bytes]) => ({ path: file, sha256: sha256(bytes), bytes: bytes.length })),
    evidence_key_id: source.evidenceKey.keyId,
    checkpoint_key: source.checkpointKey?.jwk() ?? null,
  };
  return new Map([...signedManifest(manifest, source.evidenceKey), ...files]);
}

/** The records about the resource in the window, in (decided_at, id) order; none is an error. */
async function readDecisions(db: Database, query: EvidenceQuery): Promise<DecisionRow[]> {
  const { rows } = await db.query<Record<string, unknown>>(resourceDecisionsSql(query));
  if (rows.length === 0) throw new EvidenceNotFoundError('no decision about this resource in the window');
  return rows.map(rowFromDatabase);
}

/** The exact revisions the decisions were made on, by digest (path null: not stored). */
async function addBundles(
  source: EvidenceSource,
  decisions: readonly DecisionRow[],
  files: Map<string, Buffer>,
): Promise<EvidenceManifest['bundles']> {
  const bundles: EvidenceManifest['bundles'] = [];
  for (const digest of [...new Set(decisions.map((d) => d.bundle_digest))].sort()) {
    const bytes = await source.bundleBytes(digest);
    const file = bytes ? `bundles/${fileName(digest)}.tar.gz` : null;
    if (bytes && file) files.set(file, bytes);
    bundles.push({ digest, path: file });
  }
  return bundles;
}

/**
 * Chain segments: each writer's rows from its first record about the resource to the first
 * checkpoint at or after its last one, and those checkpoints (checkpoints.ndjson).
 */
async function addChainSegments(
  db: Database,
  decisions: readonly DecisionRow[],
  files: Map<string, Buffer>,
): Promise<ManifestSegment[]> {
  const segments: ManifestSegment[] = [];
  const checkpoints: Checkpoint[] = [];
  const byWriter = new Map<string, DecisionRow[]>();
  for (const d of decisions) byWriter.set(d.writer_id, [...(byWriter.get(d.writer_id) ?? []), d]);
  for (const [writerId, rows] of [...byWriter].sort(([a], [b]) => a.localeCompare(b))) {
    const lo = Math.min(...rows.map((r) => r.seq));
    const hi = Math.max(...rows.map((r) => r.seq));
    const covering = await db.query<Record<string, unknown>>(
      coveringCheckpointSql('decisions', writerId, hi),
    );
    const cp = covering.rows.map(checkpointFromDatabase)[0];
    const end = cp?.seq ?? hi;
    const chain = await db.query<Record<string, unknown>>(chainSegmentSql(writerId, lo, end));
    const file = `chain/${fileName(writerId)}.ndjson`;
    files.set(file, Buffer.from(ndjson(chain.rows.map(rowFromDatabase))));
    if (cp) checkpoints.push(cp);
    segments.push({
      writer_id: writerId,
      from_seq: lo,
      to_seq: end,
      path: file,
      checkpoint: cp ? { seq: cp.seq, hash: cp.hash, signed_at: cp.signed_at } : null,
    });
  }
  files.set('checkpoints.ndjson', Buffer.from(ndjson(checkpoints)));
  return segments;
}

/** The policy events of the period (the window, or the span of the decisions); returns their count. */
async function addPolicyEvents(
  db: Database,
  query: EvidenceQuery,
  decisions: readonly DecisionRow[],
  files: Map<string, Buffer>,
): Promise<number> {
  const from = query.from ?? decisions[0]!.decided_at;
  const to = query.to ?? new Date(Date.parse(decisions.at(-1)!.decided_at) + 1).toISOString();
  const { rows } = await db.query<Record<string, unknown>>(policyEventsSql(from, to));
  const events: EventRow[] = rows.map(eventFromDatabase);
  files.set('events/policy.ndjson', Buffer.from(ndjson(events)));
  return events.length;
}

/**
 * The waivers (record `exceptions`) and approvals (result `approvals`) the decisions cite, as
 * stored now, with their chained histories; returns their ids.
 */
async function addGrants(
  db: Database,
  decisions: readonly DecisionRow[],
  files: Map<string, Buffer>,
): Promise<EvidenceManifest['grants']> {
  const waiverIds = [...new Set(decisions.flatMap((d) => d.exceptions ?? []))].sort();
  const approvalIds = [...new Set(decisions.flatMap(citedApprovals))].sort();
  const waivers = await db.query<Record<string, unknown>>(waiverRowsSql(waiverIds));
  const approvals = await db.query<Record<string, unknown>>(approvalRowsSql(approvalIds));
  const events = await db.query<Record<string, unknown>>(grantEventsSql([...waiverIds, ...approvalIds]));
  files.set('grants/waivers.ndjson', Buffer.from(ndjson(waivers.rows)));
  files.set('grants/approvals.ndjson', Buffer.from(ndjson(approvals.rows)));
  files.set('grants/events.ndjson', Buffer.from(ndjson(events.rows.map(eventFromDatabase))));
  return { waivers: waiverIds, approvals: approvalIds };
}

/** The approval ids a decision's result cites. */
function citedApprovals(decision: DecisionRow): string[] {
  const cited = (decision.result as { approvals?: unknown } | null)?.approvals;
  return Array.isArray(cited) ? cited.filter((id): id is string => typeof id === 'string') : [];
}

/** manifest.json and manifest.sig: the manifest's bytes and the evidence key's signature over them. */
function signedManifest(manifest: EvidenceManifest, key: SigningKey): [string, Buffer][] {
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = {
    alg: 'EdDSA',
    kid: key.keyId,
    signature: key.sign(Buffer.concat([Buffer.from(MANIFEST_SIGNATURE_PREFIX), manifestBytes])),
  };
  return [
    ['manifest.json', manifestBytes],
    ['manifest.sig', Buffer.from(`${JSON.stringify(signature)}\n`)],
  ];
}

/**
 * Packs files into a gzip'd tar stream (tar's portable mode: no owner or host details). The files
 * are written to a private temporary folder, removed once the stream ends.
 */
export function packEvidence(files: Map<string, Buffer>): Readable {
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-evidence-'));
  try {
    for (const [file, bytes] of files) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), bytes);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const stream = create({ gzip: true, cwd: dir, portable: true }, [...files.keys()]) as unknown as Readable;
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  stream.once('end', cleanup);
  stream.once('error', cleanup);
  stream.once('close', cleanup);
  return stream;
}
