import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { chainHash } from '../audit/chain.ts';
import { type ChainBreak, type ChainBreakAt, ChainWalker } from '../audit/chain-walk.ts';
import { type Checkpoint, checkpointPayload, SigningKey } from '../audit/checkpoints.ts';
import type { DecisionRow } from '../audit/decision-log.ts';
import { type EventRow, eventHash } from '../audit/event-log.ts';
import { replayOn } from '../audit/replay.ts';
import { canonicalJson, inputDigest } from '../decisions/canonical-json.ts';
import { parseBundle, readEntries } from '../engine/bundle.ts';
import { PolicyEngine } from '../engine/engine.ts';
import { type EvidenceManifest, MANIFEST_SIGNATURE_PREFIX, type ManifestSegment } from './package.ts';

/**
 * Offline verification of an evidence package: no database, no service. Checks, in order: the
 * manifest's signature; every file against the manifest (and no file the manifest does not list);
 * the records (each one's hash, their order, none missing or added); the chain segments (every row's
 * hash and link, each record at its position, each segment ending at a checkpoint whose signature
 * holds and whose hash it reaches); every bundle's digest; the policy events' hashes; and finally
 * it re-evaluates every decision on its own bundle with the wasm engine and compares the result.
 */

/** One thing that does not hold: what, and where. */
export interface EvidenceProblem {
  check:
    | 'archive'
    | 'signature'
    | 'file'
    | 'decision'
    | 'chain'
    | 'checkpoint'
    | 'bundle'
    | 'event'
    | 'grant'
    | 'evaluation';
  where: string;
  message: string;
}

/** The outcome of `verifyEvidence`. */
export interface EvidenceReport {
  ok: boolean;
  resource: { type: string; id: string } | null;
  decisions: number;
  reEvaluated: number;
  /** Records whose stored input was masked: re-evaluated on the masked input, a mismatch is a note. */
  masked: number;
  problems: EvidenceProblem[];
  notes: string[];
}

/** Verification keys by key id (from --key or --jwks). */
export type EvidenceKeys = Map<string, SigningKey>;

/** Keys from a PEM (public or private Ed25519 key). */
export function keysFromPem(pem: string): EvidenceKeys {
  const text = pem.replace(/\\n/g, '\n');
  let key: SigningKey;
  try {
    key = new SigningKey({ privateKey: crypto.createPrivateKey(text) });
  } catch {
    key = new SigningKey({ publicKey: crypto.createPublicKey(text) });
  }
  return new Map([[key.keyId, key]]);
}

/** Keys from a JWKS document (the body of GET /v1/evidence/keys). */
export function keysFromJwks(jwks: unknown): EvidenceKeys {
  const keys: EvidenceKeys = new Map();
  const list = (jwks as { keys?: unknown })?.keys;
  if (!Array.isArray(list)) throw new Error('not a JWKS document (no "keys" array)');
  for (const jwk of list) {
    if (jwk?.kty !== 'OKP' || jwk?.crv !== 'Ed25519' || typeof jwk?.x !== 'string') continue;
    const key = new SigningKey({
      publicKey: crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' }),
    });
    keys.set(key.keyId, key);
  }
  return keys;
}

const sha256 = (bytes: Buffer) => crypto.hash('sha256', bytes, 'hex');

function parseLines<T>(bytes: Buffer | undefined): T[] {
  if (!bytes) return [];
  return bytes
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);
}

/** Verifies the package bytes (a tar.gz) with `keys`. Never throws for a bad package: it reports. */
export function verifyEvidence(archive: Buffer, keys: EvidenceKeys): EvidenceReport {
  const report: EvidenceReport = {
    ok: false,
    resource: null,
    decisions: 0,
    reEvaluated: 0,
    masked: 0,
    problems: [],
    notes: [],
  };
  const problem = (check: EvidenceProblem['check'], where: string, message: string) => {
    report.problems.push({ check, where, message });
  };
  const done = () => {
    report.ok = report.problems.length === 0;
    return report;
  };

  let entries: Map<string, Buffer>;
  try {
    entries = readEntries(zlib.gunzipSync(archive, { maxOutputLength: 1024 * 1024 * 1024 }));
  } catch (err) {
    problem('archive', 'archive', `not a readable tar.gz: ${(err as Error).message}`);
    return done();
  }

  const manifest = signedManifest(entries, keys, problem);
  if (!manifest) return done();
  report.resource = manifest.resource;
  try {
    checkContents(manifest, entries, keys, report, problem);
  } catch (err) {
    problem('archive', 'package', `malformed content: ${(err as Error).message}`);
  }
  return done();
}

/** 1. The manifest, when the signature over it holds (otherwise a problem, and null). */
function signedManifest(
  entries: Map<string, Buffer>,
  keys: EvidenceKeys,
  problem: Checking['problem'],
): EvidenceManifest | null {
  const manifestBytes = entries.get('manifest.json');
  const signatureBytes = entries.get('manifest.sig');
  if (!manifestBytes || !signatureBytes) {
    problem('archive', manifestBytes ? 'manifest.sig' : 'manifest.json', 'missing from the package');
    return null;
  }
  let manifest: EvidenceManifest;
  let signature: { kid?: string; signature?: string };
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8'));
    signature = JSON.parse(signatureBytes.toString('utf8'));
  } catch {
    problem('archive', 'manifest.json', 'the manifest or its signature is not JSON');
    return null;
  }
  const signer = signature.kid ? keys.get(signature.kid) : undefined;
  if (!signer) {
    problem(
      'signature',
      'manifest.sig',
      `signed by key ${signature.kid ?? '(none)'}, which is not among the keys given`,
    );
    return null;
  }
  const signed = Buffer.concat([Buffer.from(MANIFEST_SIGNATURE_PREFIX), manifestBytes]);
  if (typeof signature.signature !== 'string' || !signer.verify(signed, signature.signature)) {
    problem(
      'signature',
      'manifest.sig',
      'the signature over manifest.json does not verify: the manifest was altered',
    );
    return null;
  }
  return manifest;
}

/** What the checks of one package share: its manifest and files, the keys, and the report. */
interface Checking {
  manifest: EvidenceManifest;
  entries: Map<string, Buffer>;
  keys: EvidenceKeys;
  report: EvidenceReport;
  problem: (check: EvidenceProblem['check'], where: string, message: string) => void;
  /** The rows of an NDJSON file of the package (a file that is not NDJSON is a problem, and no rows). */
  lines: <T>(file: string) => T[];
}

function checkContents(
  manifest: EvidenceManifest,
  entries: Map<string, Buffer>,
  keys: EvidenceKeys,
  report: EvidenceReport,
  problem: Checking['problem'],
): void {
  const lines = <T>(file: string): T[] => {
    try {
      return parseLines<T>(entries.get(file));
    } catch {
      problem('file', file, 'not NDJSON');
      return [];
    }
  };
  const checking: Checking = { manifest, entries, keys, report, problem, lines };
  checkFiles(checking);
  const decisions = checkDecisions(checking);
  const inChain = checkSegments(checking, new Set(decisions.map((d) => d.id)));
  checkLinked(checking, decisions, inChain);
  const engines = loadBundles(checking);
  checkEvents(checking);
  checkGrants(checking, decisions);
  reEvaluate(checking, decisions, engines);
}

/** 2. Every file is the file the manifest lists, and nothing else is in the package. */
function checkFiles({ manifest, entries, problem }: Checking): void {
  const listed = new Set(manifest.files.map((f) => f.path));
  for (const file of manifest.files) {
    const bytes = entries.get(file.path);
    if (!bytes) problem('file', file.path, 'listed in the manifest but missing from the package');
    else if (sha256(bytes) !== file.sha256) {
      problem(
        'file',
        file.path,
        `its SHA-256 is ${sha256(bytes)}, the manifest says ${file.sha256}: the file was altered`,
      );
    }
  }
  for (const name of entries.keys()) {
    if (name !== 'manifest.json' && name !== 'manifest.sig' && !listed.has(name)) {
      problem('file', name, 'in the package but not listed in the manifest');
    }
  }
}

/** 3. The records: each one's hash; the order and the set the manifest lists. Returns them. */
function checkDecisions({ manifest, report, problem, lines }: Checking): DecisionRow[] {
  const decisions = lines<DecisionRow>('decisions.ndjson');
  report.decisions = decisions.length;
  const expected = manifest.decisions;
  const byId = new Map(decisions.map((d) => [d.id, d]));
  for (const [i, listedDecision] of expected.entries()) {
    const where = `decision ${listedDecision.id}`;
    if (!byId.has(listedDecision.id)) {
      problem('decision', where, 'listed in the manifest but removed from decisions.ndjson');
    } else if (decisions[i]?.id !== listedDecision.id) {
      problem('decision', where, `reordered: expected at line ${i + 1} of decisions.ndjson`);
    }
  }
  const listedIds = new Set(expected.map((d) => d.id));
  for (const d of decisions) {
    if (!listedIds.has(d.id))
      problem('decision', `decision ${d.id}`, 'in decisions.ndjson but not in the manifest');
    if (chainHash(d) !== d.hash) {
      problem('decision', `decision ${d.id}`, 'edited: its hash is not the hash of its fields');
    }
    if (d.resource_type !== manifest.resource.type || d.resource_id !== manifest.resource.id) {
      problem('decision', `decision ${d.id}`, 'is about another resource');
    }
  }
  for (let i = 1; i < decisions.length; i += 1) {
    const a = decisions[i - 1]!;
    const b = decisions[i]!;
    if (a.decided_at > b.decided_at || (a.decided_at === b.decided_at && a.id > b.id)) {
      problem('decision', `decision ${b.id}`, `reordered: it comes after ${a.id} but is older`);
    }
  }
  return decisions;
}

/**
 * 4. Chain segments, each ending at a signed checkpoint. Returns every row of the segments by
 * `writer/seq`; `packaged` are the ids of the records in decisions.ndjson.
 */
function checkSegments(checking: Checking, packaged: ReadonlySet<string>): Map<string, DecisionRow> {
  const inChain = new Map<string, DecisionRow>();
  const checkpoints = checking.lines<Checkpoint>('checkpoints.ndjson');
  for (const segment of checking.manifest.segments) {
    const rows = checking.lines<DecisionRow>(segment.path);
    walkSegment(checking, segment, rows);
    for (const row of rows) inChain.set(`${row.writer_id}/${row.seq}`, row);
    checkLeftOut(checking, rows, packaged);
    checkSegmentEnd(checking, segment, rows.at(-1) ?? null, checkpoints);
  }
  return inChain;
}

const CHAIN_MESSAGES: Record<ChainBreak, (at: ChainBreakAt) => string> = {
  edited: () => 'edited: hash is not the hash of its fields',
  inserted: (at) => `inserted: expected seq ${at.expectedSeq}`,
  deleted: (at) => `deleted: expected seq ${at.expectedSeq}`,
  reordered: () => 'does not link to the row before it',
  tail_truncated: () => 'ends before its head',
};

/** A segment's rows: one writer's, each hash recomputed and linked, from from_seq to to_seq. */
function walkSegment({ problem }: Checking, segment: ManifestSegment, rows: readonly DecisionRow[]): void {
  const where = `chain of writer ${segment.writer_id}`;
  const walker = new ChainWalker<DecisionRow>({
    hash: chainHash,
    anchored: true,
    chainOf: () => segment.writer_id,
  });
  for (const row of rows) {
    if (row.writer_id !== segment.writer_id)
      problem('chain', `${where}, seq ${row.seq}`, 'a row of another writer');
    for (const at of walker.step(row))
      problem('chain', `${where}, seq ${row.seq}`, CHAIN_MESSAGES[at.reason](at));
  }
  if (rows[0]?.seq !== segment.from_seq || rows.at(-1)?.seq !== segment.to_seq) {
    problem('chain', where, `the segment must run from seq ${segment.from_seq} to ${segment.to_seq}`);
  }
}

/** Records about the resource in a segment (inside the window) that the package left out. */
function checkLeftOut(
  { manifest, problem }: Checking,
  rows: readonly DecisionRow[],
  packaged: ReadonlySet<string>,
): void {
  const from = manifest.window.from ? new Date(manifest.window.from).toISOString() : null;
  const to = manifest.window.to ? new Date(manifest.window.to).toISOString() : null;
  for (const row of rows) {
    const inWindow = (!from || row.decided_at >= from) && (!to || row.decided_at < to);
    if (
      row.resource_type === manifest.resource.type &&
      row.resource_id === manifest.resource.id &&
      inWindow &&
      !packaged.has(row.id)
    ) {
      problem(
        'decision',
        `decision ${row.id}`,
        `removed: the chain of writer ${row.writer_id} holds it at seq ${row.seq}`,
      );
    }
  }
}

/** A segment ends at a checkpoint that is in the package, whose signature holds and whose hash it reaches. */
function checkSegmentEnd(
  checking: Checking,
  segment: ManifestSegment,
  last: DecisionRow | null,
  checkpoints: readonly Checkpoint[],
): void {
  const { problem } = checking;
  const where = `chain of writer ${segment.writer_id}`;
  if (!segment.checkpoint) {
    problem('checkpoint', where, `ends at seq ${segment.to_seq} without a signed checkpoint`);
    return;
  }
  const signedSeq = segment.checkpoint.seq;
  const cp = checkpoints.find(
    (c) => c.chain === 'decisions' && c.writer_id === segment.writer_id && c.seq === signedSeq,
  );
  if (!cp) {
    problem('checkpoint', where, `the checkpoint at seq ${signedSeq} is missing from checkpoints.ndjson`);
    return;
  }
  const key = checkpointKey(checking, cp.key_id);
  if (!key)
    problem('checkpoint', `${where}, seq ${cp.seq}`, `signed by key ${cp.key_id}, which is not known`);
  else if (!key.verify(checkpointPayload(cp), cp.signature)) {
    problem(
      'checkpoint',
      `${where}, seq ${cp.seq}`,
      'the checkpoint signature does not verify (forged or edited)',
    );
  }
  if (last && last.seq === cp.seq && last.hash !== cp.hash) {
    problem(
      'checkpoint',
      `${where}, seq ${cp.seq}`,
      `rewritten: the chain reaches ${last.hash} at seq ${cp.seq}, but ${cp.hash} was signed there at ${cp.signed_at}`,
    );
  }
}

/** The key a checkpoint names: one given, or the manifest's checkpoint key. */
function checkpointKey({ keys, manifest }: Checking, kid: string): SigningKey | undefined {
  const given = keys.get(kid);
  if (given) return given;
  const embedded = manifest.checkpoint_key;
  if (embedded?.x && embedded.kid === kid) {
    // Trusted through the manifest's signature (the key the auditor was given signed it).
    return keysFromJwks({ keys: [embedded] }).get(kid);
  }
  return undefined;
}

/** Every record is the row its chain holds at its position. */
function checkLinked(
  { problem }: Checking,
  decisions: readonly DecisionRow[],
  inChain: ReadonlyMap<string, DecisionRow>,
): void {
  for (const d of decisions) {
    const linked = inChain.get(`${d.writer_id}/${d.seq}`);
    if (!linked || linked.hash !== d.hash || linked.id !== d.id) {
      problem(
        'chain',
        `decision ${d.id}`,
        `not linked into the chain of writer ${d.writer_id} at seq ${d.seq}`,
      );
    }
  }
}

/** 5. The bundles: each file is the revision its digest names. Returns an engine per digest. */
function loadBundles({ manifest, entries, problem }: Checking): Map<string, PolicyEngine> {
  const engines = new Map<string, PolicyEngine>();
  for (const bundle of manifest.bundles) {
    if (!bundle.path) {
      problem('bundle', bundle.digest, 'the revision was not available when the package was made');
      continue;
    }
    const bytes = entries.get(bundle.path);
    if (!bytes) continue; // reported as a missing file
    try {
      const parsed = parseBundle(bytes);
      if (parsed.digest !== bundle.digest) {
        problem('bundle', bundle.path, `swapped: it is revision ${parsed.digest}, not ${bundle.digest}`);
        continue;
      }
      engines.set(parsed.digest, PolicyEngine.fromBundle(parsed, { refuseUnsupported: false }));
    } catch (err) {
      problem('bundle', bundle.path, `not a loadable bundle: ${(err as Error).message}`);
    }
  }
  return engines;
}

/** 6. Policy events: each one's hash. */
function checkEvents({ problem, lines }: Checking): void {
  for (const event of lines<EventRow>('events/policy.ndjson')) {
    if (eventHash(event) !== event.hash)
      problem('event', `event ${event.id}`, 'edited: its hash is not the hash of its fields');
  }
}

/** 7. Waivers and approvals cited: each one in the package, with its chained history. */
function checkGrants({ manifest, problem, lines }: Checking, decisions: readonly DecisionRow[]): void {
  const grantEvents = lines<EventRow>('grants/events.ndjson');
  for (const event of grantEvents) {
    if (eventHash(event) !== event.hash)
      problem('event', `event ${event.id}`, 'edited: its hash is not the hash of its fields');
  }
  const waivers = lines<{ id: string }>('grants/waivers.ndjson');
  const approvals = lines<{ id: string }>('grants/approvals.ndjson');
  for (const [kind, ids, rows] of [
    ['waiver', manifest.grants.waivers, waivers],
    ['approval', manifest.grants.approvals, approvals],
  ] as const) {
    for (const id of ids) {
      if (!rows.some((row) => row.id === id))
        problem('grant', `${kind} ${id}`, 'cited by a decision but missing from the package');
      else if (!grantEvents.some((e) => e.subject === id && e.action === 'request')) {
        problem('grant', `${kind} ${id}`, 'its history (the chained request event) is missing');
      }
    }
  }
  for (const d of decisions) {
    for (const id of d.exceptions ?? []) {
      if (!manifest.grants.waivers.includes(id))
        problem('grant', `decision ${d.id}`, `cites waiver ${id}, which the manifest does not list`);
    }
  }
}

/** 8. Re-evaluation of every decision on its own bundle. */
function reEvaluate(
  { manifest, report, problem }: Checking,
  decisions: readonly DecisionRow[],
  engines: ReadonlyMap<string, PolicyEngine>,
): void {
  for (const d of decisions) {
    const engine = engines.get(d.bundle_digest);
    if (!engine) {
      if (!manifest.bundles.some((b) => b.digest === d.bundle_digest)) {
        problem(
          'bundle',
          `decision ${d.id}`,
          `decided on ${d.bundle_digest}, which the package does not contain`,
        );
      }
      continue;
    }
    const outcome = replayOn(engine, d);
    report.reEvaluated += 1;
    const masked = inputDigest(canonicalJson(d.input)) !== d.input_sha256 && d.input !== null;
    if (masked) report.masked += 1;
    if (outcome.matches !== true) {
      const what = `the policy gives allow=${outcome.allow}${outcome.error ? ` (${outcome.error.code})` : ''}, the record says allow=${d.allow}${outcome.allow === d.allow ? ' with another result' : ''}`;
      if (masked) report.notes.push(`decision ${d.id}: stored input was masked; ${what}`);
      else problem('evaluation', `decision ${d.id}`, what);
    }
  }
}
