import crypto from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { create } from 'tar';
import { type Checkpoint, checkpointFromDatabase, type SigningKey } from '../audit/checkpoints.ts';
import { type DecisionRow, rowFromDatabase } from '../audit/decision-log.ts';
import { type EventRow, eventFromDatabase } from '../audit/event-log.ts';
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
  const { db } = source;
  await source.checkpointNow?.();
  const values: unknown[] = [query.resourceType, query.resourceId];
  let window = '';
  if (query.from) {
    values.push(query.from);
    window += ` AND decided_at >= $${values.length}::timestamptz`;
  }
  if (query.to) {
    values.push(query.to);
    window += ` AND decided_at < $${values.length}::timestamptz`;
  }
  const decisions = (
    await db.query<Record<string, unknown>>({
      text: `SELECT * FROM decision_log WHERE resource_type = $1 AND resource_id = $2${window} ORDER BY decided_at, id`,
      values,
    })
  ).rows.map(rowFromDatabase);
  if (decisions.length === 0)
    throw new EvidenceNotFoundError('no decision about this resource in the window');

  const files = new Map<string, Buffer>();
  files.set('decisions.ndjson', Buffer.from(ndjson(decisions)));

  // The exact revisions, by digest.
  const bundles: EvidenceManifest['bundles'] = [];
  for (const digest of [...new Set(decisions.map((d) => d.bundle_digest))].sort()) {
    const bytes = await source.bundleBytes(digest);
    const file = bytes ? `bundles/${fileName(digest)}.tar.gz` : null;
    if (bytes && file) files.set(file, bytes);
    bundles.push({ digest, path: file });
  }

  // Chain segments: each writer's rows from its first record about the resource to the first
  // checkpoint at or after its last one.
  const segments: ManifestSegment[] = [];
  const checkpoints: Checkpoint[] = [];
  const byWriter = new Map<string, DecisionRow[]>();
  for (const d of decisions) byWriter.set(d.writer_id, [...(byWriter.get(d.writer_id) ?? []), d]);
  for (const [writerId, rows] of [...byWriter].sort(([a], [b]) => a.localeCompare(b))) {
    const lo = Math.min(...rows.map((r) => r.seq));
    const hi = Math.max(...rows.map((r) => r.seq));
    const cp = (
      await db.query<Record<string, unknown>>({
        text: `SELECT * FROM chain_checkpoints WHERE chain = 'decisions' AND writer_id = $1 AND seq >= $2
               ORDER BY seq LIMIT 1`,
        values: [writerId, hi],
      })
    ).rows.map(checkpointFromDatabase)[0];
    const end = cp?.seq ?? hi;
    const chain = (
      await db.query<Record<string, unknown>>({
        text: 'SELECT * FROM decision_log WHERE writer_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, id',
        values: [writerId, lo, end],
      })
    ).rows.map(rowFromDatabase);
    const file = `chain/${fileName(writerId)}.ndjson`;
    files.set(file, Buffer.from(ndjson(chain)));
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

  // Policy events of the period (the window, or the span of the decisions).
  const from = query.from ?? decisions[0]!.decided_at;
  const to = query.to ?? new Date(Date.parse(decisions.at(-1)!.decided_at) + 1).toISOString();
  const events: EventRow[] = (
    await db.query<Record<string, unknown>>({
      text: `SELECT * FROM platform_events WHERE kind = 'policy' AND occurred_at >= $1 AND occurred_at < $2
             ORDER BY occurred_at, id`,
      values: [from, to],
    })
  ).rows.map(eventFromDatabase);
  files.set('events/policy.ndjson', Buffer.from(ndjson(events)));

  // The waivers and approvals the decisions cite, as stored now, with their chained histories.
  const waiverIds = [...new Set(decisions.flatMap((d) => d.exceptions ?? []))].sort();
  const approvalIds = [
    ...new Set(
      decisions.flatMap((d) => {
        const cited = (d.result as { approvals?: unknown } | null)?.approvals;
        return Array.isArray(cited) ? cited.filter((id): id is string => typeof id === 'string') : [];
      }),
    ),
  ].sort();
  const waivers = (
    await db.query<Record<string, unknown>>({
      text: 'SELECT * FROM exceptions WHERE id = ANY($1::text[]) ORDER BY id',
      values: [waiverIds],
    })
  ).rows;
  const approvals = (
    await db.query<Record<string, unknown>>({
      text: 'SELECT * FROM approvals WHERE id = ANY($1::text[]) ORDER BY id',
      values: [approvalIds],
    })
  ).rows;
  const grantEvents = (
    await db.query<Record<string, unknown>>({
      text: `SELECT * FROM platform_events WHERE kind IN ('exception', 'approval') AND subject = ANY($1::text[])
             ORDER BY occurred_at, id`,
      values: [[...waiverIds, ...approvalIds]],
    })
  ).rows.map(eventFromDatabase);
  files.set('grants/waivers.ndjson', Buffer.from(ndjson(waivers)));
  files.set('grants/approvals.ndjson', Buffer.from(ndjson(approvals)));
  files.set('grants/events.ndjson', Buffer.from(ndjson(grantEvents)));

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
    events: events.length,
    grants: { waivers: waiverIds, approvals: approvalIds },
    files: [...files].map(([file, bytes]) => ({ path: file, sha256: sha256(bytes), bytes: bytes.length })),
    evidence_key_id: source.evidenceKey.keyId,
    checkpoint_key: source.checkpointKey?.jwk() ?? null,
  };
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = {
    alg: 'EdDSA',
    kid: source.evidenceKey.keyId,
    signature: source.evidenceKey.sign(
      Buffer.concat([Buffer.from(MANIFEST_SIGNATURE_PREFIX), manifestBytes]),
    ),
  };
  return new Map([
    ['manifest.json', manifestBytes],
    ['manifest.sig', Buffer.from(`${JSON.stringify(signature)}\n`)],
    ...files,
  ]);
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
