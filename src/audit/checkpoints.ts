import crypto, { type KeyObject } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Config, ConfigError } from '../config/resolve-config.ts';
import { canonicalJson } from '../decisions/canonical-json.ts';
import type { Database, Queryable } from '../store/types.ts';
import { type CheckpointCursor, checkpointPageSql, insertCheckpointSql } from './checkpoint-sql.ts';
import { chainPositionsSql, retentionSql } from './decision-log.ts';
import { eventHashesAtSql, eventHeadsSql } from './event-log.ts';
import type { ChainHead } from './writer.ts';

/**
 * Signed chain checkpoints (docs/decisions/0010-signed-checkpoints-and-evidence.md). A hash chain
 * alone shows an edited, deleted or inserted row, but not a rewrite by someone who recomputes every
 * later hash and the chain head: there is no secret in it. A checkpoint is a writer's chain head
 * (writer, seq, hash, time) signed with an Ed25519 key that the database never holds; verification
 * compares the stored hash at every checkpointed position with the signed one.
 */

/** Which chain a checkpoint is about: decision_log, or platform_events. */
export type CheckpointChain = 'decisions' | 'events';

/** One signed checkpoint, as stored, exported, appended to the file and POSTed. */
export interface Checkpoint {
  v: 1;
  chain: CheckpointChain;
  writer_id: string;
  seq: number;
  hash: string;
  /** ISO-8601 with milliseconds and Z. */
  signed_at: string;
  /** RFC 7638 JWK thumbprint of the signing key's public key. */
  key_id: string;
  /** base64url Ed25519 signature of `checkpointPayload`. */
  signature: string;
}

/** The bytes signed: RFC 8785 canonical JSON of every field but `signature`. */
export function checkpointPayload(
  checkpoint: Omit<Checkpoint, 'signature'> & { signature?: string },
): Buffer {
  const { signature: _ignored, ...fields } = checkpoint;
  return Buffer.from(canonicalJson(fields) ?? '', 'utf8');
}

/** RFC 7638 thumbprint of an Ed25519 public key (its JWK `kid`). */
export function keyThumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return crypto.hash('sha256', canonical, 'base64url');
}

/** An Ed25519 key pair (or only its public half) with its key id. */
export class SigningKey {
  readonly publicKey: KeyObject;
  readonly keyId: string;
  private readonly privateKey: KeyObject | undefined;

  constructor(key: { privateKey?: KeyObject; publicKey?: KeyObject }) {
    const publicKey = key.publicKey ?? (key.privateKey ? crypto.createPublicKey(key.privateKey) : undefined);
    if (!publicKey) throw new Error('SigningKey needs a private or a public key');
    if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error('the key is not an Ed25519 key');
    this.publicKey = publicKey;
    this.privateKey = key.privateKey;
    this.keyId = keyThumbprint(publicKey);
  }

  get canSign(): boolean {
    return this.privateKey !== undefined;
  }

  sign(data: Buffer): string {
    if (!this.privateKey) throw new Error('no private key to sign with');
    return crypto.sign(null, data, this.privateKey).toString('base64url');
  }

  verify(data: Buffer, signature: string): boolean {
    try {
      return crypto.verify(null, data, this.publicKey, Buffer.from(signature, 'base64url'));
    } catch {
      return false;
    }
  }

  /** The public key as a JWK (for a JWKS). */
  jwk(): Record<string, string> {
    const jwk = this.publicKey.export({ format: 'jwk' });
    return { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x), kid: this.keyId, alg: 'EdDSA', use: 'sig' };
  }

  /** The public key as SPKI PEM. */
  publicPem(): string {
    return this.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  }
}

/** The file, under the data directory, that holds the embedded mode's generated checkpoint key. */
export const DEV_CHECKPOINT_KEY_FILE = 'checkpoint-key.pem';

/** PEM text as given (literal `\n` allowed, as environment variables often carry it), or a file's content. */
function pemFrom(variable: string, value: string): string {
  if (value.startsWith('-----BEGIN')) return value.replace(/\\n/g, '\n');
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    throw new ConfigError(
      variable,
      `is neither PEM text nor a readable file (${(err as NodeJS.ErrnoException).code})`,
    );
  }
}

function ed25519(variable: string, make: () => KeyObject): KeyObject {
  let key: KeyObject;
  try {
    key = make();
  } catch {
    throw new ConfigError(variable, 'is not a valid PEM key');
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(variable, `must be an Ed25519 key, got ${key.asymmetricKeyType}`);
  }
  return key;
}

/**
 * The checkpoint key for this process: VERDICT_CHECKPOINT_KEY (private; its public half verifies
 * unless VERDICT_CHECKPOINT_PUBLIC_KEY names another); else, in the embedded mode (no DATABASE_URL)
 * and when `generate` is set, a key generated once into `${dataDir}/checkpoint-key.pem` (mode 0600),
 * as the development JWT secret is; else only a public key to verify with, or none (checkpoints off).
 */
export function loadCheckpointKey(
  config: Pick<Config, 'checkpoint' | 'dataDir' | 'databaseUrl'>,
  options: { generate?: boolean } = {},
): SigningKey | undefined {
  const { key, publicKey } = config.checkpoint;
  const verifying = publicKey
    ? ed25519('VERDICT_CHECKPOINT_PUBLIC_KEY', () =>
        crypto.createPublicKey(pemFrom('VERDICT_CHECKPOINT_PUBLIC_KEY', publicKey)),
      )
    : undefined;
  let privatePem: string | undefined;
  if (key) privatePem = pemFrom('VERDICT_CHECKPOINT_KEY', key);
  else if (config.databaseUrl === undefined) {
    const file = path.join(config.dataDir, DEV_CHECKPOINT_KEY_FILE);
    if (options.generate && !existsSync(file)) {
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      const pair = crypto.generateKeyPairSync('ed25519');
      try {
        // 'wx': two processes starting at once cannot overwrite each other's key.
        writeFileSync(file, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }), {
          flag: 'wx',
          mode: 0o600,
        });
        chmodSync(file, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (existsSync(file)) privatePem = readFileSync(file, 'utf8');
  }
  const signing = privatePem
    ? ed25519('VERDICT_CHECKPOINT_KEY', () => crypto.createPrivateKey(privatePem))
    : undefined;
  if (!signing && !verifying) return undefined;
  return new SigningKey({ privateKey: signing, publicKey: verifying });
}

/**
 * The key that signs evidence manifests: VERDICT_EVIDENCE_KEY (an Ed25519 private key, PEM text or
 * file), else the checkpoint key (one key to guard; the signed payloads cannot be mistaken for each
 * other). Undefined when neither can sign.
 */
export function loadEvidenceKey(
  config: Pick<Config, 'evidenceKey'>,
  checkpointKey: SigningKey | undefined,
): SigningKey | undefined {
  if (config.evidenceKey) {
    const pem = pemFrom('VERDICT_EVIDENCE_KEY', config.evidenceKey);
    return new SigningKey({
      privateKey: ed25519('VERDICT_EVIDENCE_KEY', () => crypto.createPrivateKey(pem)),
    });
  }
  return checkpointKey?.canSign ? checkpointKey : undefined;
}

/** Turns a chain_checkpoints row back into the Checkpoint that was signed. */
export function checkpointFromDatabase(raw: Record<string, unknown>): Checkpoint {
  const at = raw.signed_at;
  return {
    v: 1,
    chain: raw.chain as CheckpointChain,
    writer_id: String(raw.writer_id),
    seq: Number(raw.seq),
    hash: String(raw.hash),
    signed_at: at instanceof Date ? at.toISOString() : new Date(String(at)).toISOString(),
    key_id: String(raw.key_id),
    signature: String(raw.signature),
  };
}

/** Hooks for metrics and logs. */
export interface CheckpointerHooks {
  onCheckpoint?(checkpoint: Checkpoint): void;
  /**
   * Storing or appending to the file failed, or POSTing gave up (`where`: 'url', after its last
   * attempt; the error's message says how many attempts and how long).
   */
  onError?(where: 'store' | 'file' | 'url', error: unknown): void;
  /** A POST to the URL failed; attempt `attempt + 1` follows after `delayMs`. */
  onRetry?(attempt: number, delayMs: number, error: unknown): void;
}

/** How a failed POST to the checkpoint URL is retried (docs/operations.md, VERDICT_CHECKPOINT_URL). */
export interface CheckpointRetry {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The wait after the first failure; each later wait doubles, up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
}

/** 6 attempts, waiting 1, 2, 4, 8 and 16 s between them: given up about 31 s (+ 6 × 5 s timeouts) later. */
export const CHECKPOINT_URL_RETRY: CheckpointRetry = { attempts: 6, firstDelayMs: 1_000, maxDelayMs: 16_000 };

/** How long one POST may take before it counts as failed. */
const CHECKPOINT_POST_TIMEOUT_MS = 5_000;

/** What the checkpointer needs. */
export interface CheckpointerOptions {
  db: Database;
  key: SigningKey;
  /** The decision chains' committed heads, as the writer knows them (AuditWriter.committedHeads). */
  heads: () => ChainHead[];
  /** Also checkpoint the platform event chains (heads read from platform_event_heads). Default true. */
  events?: boolean;
  intervalMs: number;
  file?: string;
  url?: string;
  /** Default CHECKPOINT_URL_RETRY. */
  urlRetry?: CheckpointRetry;
  clock?: () => Date;
  hooks?: CheckpointerHooks;
}

/**
 * Signs and stores chain heads every `intervalMs`, and once more at close (after the audit writer
 * flushed). A head already signed is not signed again.
 *
 * NOTE: decision heads come from the writer's memory, not from chain_heads: a head rewritten in the
 * database after its commit is never signed. Event heads are read from platform_event_heads (events
 * are appended by transactions of any replica under a row lock; no process holds them in memory),
 * so an event chain rewritten between two checkpoints would be signed as it stands — the window is
 * one interval, as for decisions rewritten before their first checkpoint.
 *
 * NOTE: POSTs to the URL run beside the signing loop, each with its own retries, so a notary that is
 * down never delays the next checkpoint; after a retry they may arrive out of order. At close, a
 * POST waiting for its next attempt makes it at once, and gives up if that fails.
 */
export class Checkpointer {
  private readonly options: CheckpointerOptions;
  private readonly signed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<Checkpoint[]> = Promise.resolve([]);
  private closed = false;
  private readonly closing = new AbortController();
  private readonly deliveries = new Set<Promise<void>>();

  constructor(options: CheckpointerOptions) {
    if (!options.key.canSign) throw new Error('Checkpointer needs a private key');
    this.options = options;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.checkpoint().catch(() => {});
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Signs every head not signed yet; resolves with the checkpoints stored by this call. */
  checkpoint(): Promise<Checkpoint[]> {
    // One at a time: a slow database must not let two ticks sign the same heads.
    const next = this.running.then(() => this.once());
    this.running = next.catch(() => []);
    return next;
  }

  /** Stops the timer after one last checkpoint (call after the audit writer has flushed). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    if (this.timer) clearInterval(this.timer);
    await this.checkpoint().catch(() => {});
    await this.settled();
  }

  /** Resolves when every POST to the URL begun so far was accepted or given up. */
  async settled(): Promise<void> {
    while (this.deliveries.size > 0) await Promise.all(this.deliveries);
  }

  private async once(): Promise<Checkpoint[]> {
    const { db, key, clock } = this.options;
    const signedAt = (clock?.() ?? new Date()).toISOString();
    const heads: { chain: CheckpointChain; head: ChainHead }[] = this.options
      .heads()
      .map((head) => ({ chain: 'decisions' as const, head }));
    if (this.options.events !== false) {
      const { rows } = await db.query<{ writer_id: string; seq: string; hash: string }>(
        eventHeadsSql({ started: true }),
      );
      for (const row of rows) {
        heads.push({
          chain: 'events',
          head: { writerId: row.writer_id, seq: Number(row.seq), hash: row.hash },
        });
      }
    }
    const stored: Checkpoint[] = [];
    for (const { chain, head } of heads) {
      const position = `${chain}/${head.writerId}`;
      if ((this.signed.get(position) ?? 0) >= head.seq) continue;
      const unsigned = {
        v: 1 as const,
        chain,
        writer_id: head.writerId,
        seq: head.seq,
        hash: head.hash,
        signed_at: signedAt,
        key_id: key.keyId,
      };
      const checkpoint: Checkpoint = { ...unsigned, signature: key.sign(checkpointPayload(unsigned)) };
      try {
        const { rows } = await db.query(insertCheckpointSql(checkpoint));
        this.signed.set(position, head.seq);
        if (rows.length > 0) stored.push(checkpoint);
      } catch (err) {
        this.emitError('store', err);
      }
    }
    for (const checkpoint of stored) {
      this.options.hooks?.onCheckpoint?.(checkpoint);
      if (this.options.file) {
        try {
          mkdirSync(path.dirname(this.options.file), { recursive: true });
          appendFileSync(this.options.file, `${JSON.stringify(checkpoint)}\n`);
        } catch (err) {
          this.emitError('file', err);
        }
      }
      if (this.options.url) this.deliver(this.options.url, checkpoint);
    }
    return stored;
  }

  private deliver(url: string, checkpoint: Checkpoint): void {
    const delivery = this.post(url, checkpoint).finally(() => this.deliveries.delete(delivery));
    this.deliveries.add(delivery);
  }

  /** POSTs one checkpoint, retried with exponential backoff (CheckpointRetry); never rejects. */
  private async post(url: string, checkpoint: Checkpoint): Promise<void> {
    const retry = this.options.urlRetry ?? CHECKPOINT_URL_RETRY;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(checkpoint),
          signal: AbortSignal.timeout(CHECKPOINT_POST_TIMEOUT_MS),
        });
        await response.body?.cancel();
        if (!response.ok) throw new Error(`the checkpoint URL answered ${response.status}`);
        return;
      } catch (err) {
        if (attempt >= retry.attempts || this.closed) {
          const reason = err instanceof Error ? err.message : String(err);
          const why = this.closed && attempt < retry.attempts ? ' (shutting down)' : '';
          this.emitError(
            'url',
            new Error(
              `gave up POSTing the checkpoint of ${checkpoint.chain}/${checkpoint.writer_id} seq ${checkpoint.seq} after ${attempt} attempt(s) in ${Date.now() - started} ms${why}: ${reason}`,
              { cause: err },
            ),
          );
          return;
        }
        const delayMs = Math.min(retry.firstDelayMs * 2 ** (attempt - 1), retry.maxDelayMs);
        try {
          this.options.hooks?.onRetry?.(attempt, delayMs, err);
        } catch {
          // A log callback must never break delivery.
        }
        // Closing cuts the wait short: the next attempt is the last.
        await sleep(delayMs, undefined, { signal: this.closing.signal }).catch(() => {});
      }
    }
  }

  private emitError(where: 'store' | 'file' | 'url', err: unknown): void {
    try {
      this.options.hooks?.onError?.(where, err);
    } catch {
      // A metrics callback must never break checkpointing.
    }
  }
}

/** Reads checkpoints appended to a VERDICT_CHECKPOINT_FILE (torn or foreign lines are skipped). */
export function readCheckpointFile(file: string): Checkpoint[] {
  if (!existsSync(file)) return [];
  const out: Checkpoint[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const c = JSON.parse(line) as Checkpoint;
      if (c && c.v === 1 && typeof c.writer_id === 'string' && typeof c.signature === 'string') out.push(c);
    } catch {
      // A line torn by a crash mid-append.
    }
  }
  return out;
}

/**
 * Why a checkpoint does not hold:
 * - rewritten: the row at the signed position has another hash — the chain was rewritten there
 *   (plain chain verification cannot see it when every later hash and the head were recomputed);
 * - truncated: no row at the signed position, and retention did not drop it;
 * - bad_signature: the checkpoint's signature does not verify (forged or edited checkpoint);
 * - unknown_key: signed by another key than the one verification was given.
 */
export type CheckpointFailure = 'rewritten' | 'truncated' | 'bad_signature' | 'unknown_key';

/** The first checkpoint that does not hold. */
export interface CheckpointMismatch {
  chain: CheckpointChain;
  writerId: string;
  seq: number;
  signedAt: string;
  reason: CheckpointFailure;
  signedHash: string;
  /** The hash stored at that position now (null when the row is gone). */
  storedHash: string | null;
}

/** The outcome of `verifyCheckpoints`. */
export interface CheckpointReport {
  ok: boolean;
  /** False when no key was given: checkpoints were not checked. */
  configured: boolean;
  keyId: string | null;
  /** Checkpoints checked (database and file, each position once). */
  checked: number;
  /** Checkpoints whose rows retention dropped (not checkable, not a failure). */
  expired: number;
  /** The newest signed_at among the checkpoints checked. */
  latest: string | null;
  firstMismatch?: CheckpointMismatch;
}

/** The hash stored at each (writer, seq) of a chain; absent positions are missing from the map. */
async function storedHashes(
  db: Queryable,
  chain: CheckpointChain,
  positions: readonly Checkpoint[],
): Promise<Map<string, string>> {
  const sql = chain === 'decisions' ? chainPositionsSql(positions) : eventHashesAtSql(positions);
  const { rows } = await db.query<{ writer_id: string; seq: string; hash: string }>(sql);
  return new Map(rows.map((row) => [`${row.writer_id}/${row.seq}`, row.hash]));
}

/**
 * Checks every stored checkpoint (and `extra` ones, e.g. from VERDICT_CHECKPOINT_FILE, which still
 * hold when someone deleted rows of chain_checkpoints) against `key` and against the chains: the
 * signature verifies, and the row at the signed position carries the signed hash. Stops at the
 * first checkpoint that does not hold. `from`/`to` narrow the stored checkpoints by signed_at.
 */
export async function verifyCheckpoints(
  db: Database,
  key: SigningKey | undefined,
  options: {
    extra?: readonly Checkpoint[];
    from?: string | Date;
    to?: string | Date;
    pageSize?: number;
  } = {},
): Promise<CheckpointReport> {
  const report: CheckpointReport = {
    ok: true,
    configured: key !== undefined,
    keyId: key?.keyId ?? null,
    checked: 0,
    expired: 0,
    latest: null,
  };
  if (!key) return report;
  const retention = await db.query<{ dropped_before: Date | string }>(retentionSql());
  const droppedBefore = retention.rows[0] ? new Date(retention.rows[0].dropped_before).getTime() : null;
  const run: CheckpointRun = { db, key, report, droppedBefore, seen: new Set() };
  const pageSize = options.pageSize ?? 1_000;
  const from = options.from === undefined ? undefined : new Date(options.from).toISOString();
  const to = options.to === undefined ? undefined : new Date(options.to).toISOString();
  for await (const page of storedCheckpoints(db, { from, to, pageSize })) {
    if (!(await checkPage(run, page))) return report;
  }
  const extra = options.extra ?? [];
  for (let i = 0; i < extra.length; i += pageSize) {
    if (!(await checkPage(run, extra.slice(i, i + pageSize)))) return report;
  }
  return report;
}

/** What one verification keeps across its pages. */
interface CheckpointRun {
  db: Queryable;
  key: SigningKey;
  report: CheckpointReport;
  /** Where retention cut the decision log (ms since the epoch), or null. */
  droppedBefore: number | null;
  /** The checkpoints checked so far (database and file), each once. */
  seen: Set<string>;
}

/** The stored checkpoints in (signed_at, chain, writer_id, seq) order, signed within [from, to), in pages. */
async function* storedCheckpoints(
  db: Queryable,
  window: { from?: string; to?: string; pageSize: number },
): AsyncGenerator<Checkpoint[]> {
  let after: CheckpointCursor | null = null;
  for (;;) {
    const sql = checkpointPageSql({ after, from: window.from, to: window.to, limit: window.pageSize });
    const { rows } = await db.query<Record<string, unknown>>(sql);
    const page = rows.map(checkpointFromDatabase);
    yield page;
    const last = page.at(-1);
    if (!last || page.length < window.pageSize) return;
    after = [last.signed_at, last.chain, last.writer_id, String(last.seq)];
  }
}

/** Checks a page of checkpoints not seen yet; false (and the report's firstMismatch) at the first that does not hold. */
async function checkPage(run: CheckpointRun, page: readonly Checkpoint[]): Promise<boolean> {
  const { report } = run;
  const fresh = page.filter((c) => {
    const id = `${c.chain}/${c.writer_id}/${c.seq}/${c.hash}`;
    if (run.seen.has(id)) return false;
    run.seen.add(id);
    return true;
  });
  for (const chain of ['decisions', 'events'] as const) {
    const ofChain = fresh.filter((c) => c.chain === chain);
    if (ofChain.length === 0) continue;
    const stored = await storedHashes(run.db, chain, ofChain);
    for (const c of ofChain) {
      const storedHash = stored.get(`${c.writer_id}/${c.seq}`) ?? null;
      const failure = checkpointFailure(run, c, storedHash);
      if (failure === 'expired') {
        report.expired += 1;
        continue;
      }
      if (failure) {
        report.ok = false;
        report.firstMismatch = {
          chain,
          writerId: c.writer_id,
          seq: c.seq,
          signedAt: c.signed_at,
          reason: failure,
          signedHash: c.hash,
          storedHash,
        };
        return false;
      }
      report.checked += 1;
      if (report.latest === null || c.signed_at > report.latest) report.latest = c.signed_at;
    }
  }
  return true;
}

/** Why a checkpoint does not hold, `expired` when retention dropped its row, or null when it holds. */
function checkpointFailure(
  run: CheckpointRun,
  c: Checkpoint,
  storedHash: string | null,
): CheckpointFailure | 'expired' | null {
  if (c.key_id !== run.key.keyId) return 'unknown_key';
  if (!run.key.verify(checkpointPayload(c), c.signature)) return 'bad_signature';
  if (storedHash === null) {
    // Retention drops whole months of decisions: a checkpoint older than the cut is not checkable.
    const expired =
      c.chain === 'decisions' && run.droppedBefore !== null && Date.parse(c.signed_at) < run.droppedBefore;
    return expired ? 'expired' : 'truncated';
  }
  return storedHash === c.hash ? null : 'rewritten';
}
