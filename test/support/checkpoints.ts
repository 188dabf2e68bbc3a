/**
 * The checkpoint fixture: Ed25519 keys as the service takes them (VERDICT_CHECKPOINT_KEY,
 * VERDICT_CHECKPOINT_PUBLIC_KEY, VERDICT_EVIDENCE_KEY), a signer with its writer and Checkpointer,
 * the "perfect rewrite" that signed checkpoints exist to catch, and `npm run audit:verify` as a
 * child process.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { chainHash, rowFromDatabase } from '../../src/audit/chain.ts';
import { Checkpointer, type CheckpointerOptions, SigningKey } from '../../src/audit/checkpoints.ts';
import type { AuditWriter } from '../../src/audit/writer.ts';
import type { Database } from '../../src/store/types.ts';
import { testWriter } from '../audit/records.support.ts';

const root = path.resolve(import.meta.dirname, '../..');

/** A fresh Ed25519 private key as PKCS#8 PEM. */
export function ed25519Pem(): string {
  return crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The public half of a private key, as SPKI PEM. */
export function publicPemOf(privatePem: string): string {
  return crypto.createPublicKey(privatePem).export({ format: 'pem', type: 'spki' }).toString();
}

/** A checkpoint signer for `privatePem` (default: a fresh key). */
export function signingKey(privatePem: string = ed25519Pem()): SigningKey {
  return new SigningKey({ privateKey: crypto.createPrivateKey(privatePem) });
}

/** What a checkpoint test starts from. */
export interface CheckpointFixture {
  key: SigningKey;
  /** A test writer on the database; its committed heads are what the checkpointer signs. */
  writer: AuditWriter;
  /** Not started: the test calls `checkpoint()` itself (the interval is a minute). */
  checkpointer: Checkpointer;
}

/** A fresh key, a writer on `db` and a Checkpointer over the writer's heads (and the event chains). */
export function checkpointFixture(
  db: Database,
  options: { key?: SigningKey } & Partial<
    Pick<CheckpointerOptions, 'file' | 'url' | 'events' | 'urlRetry' | 'hooks'>
  > = {},
): CheckpointFixture {
  const key = options.key ?? signingKey();
  const writer = testWriter(db);
  const checkpointer = new Checkpointer({
    db,
    key,
    heads: () => writer.committedHeads(),
    intervalMs: 60_000,
    file: options.file,
    url: options.url,
    events: options.events,
    urlRetry: options.urlRetry,
    hooks: options.hooks,
  });
  return { key, writer, checkpointer };
}

/**
 * The attack the checkpoints exist for: edit the decision at `seq` (flip allow), recompute its hash
 * and every later row's prev_hash and hash, and move the writer's chain head — all consistent, so
 * plain chain verification accepts it.
 */
export async function perfectRewrite(db: Database, writerId: string, seq: number): Promise<void> {
  const { rows } = await db.query<Record<string, unknown>>({
    text: 'SELECT * FROM decision_log WHERE writer_id = $1 AND seq >= $2 ORDER BY seq',
    values: [writerId, seq],
  });
  let prev: string | null = null;
  for (const raw of rows) {
    const row = rowFromDatabase(raw);
    if (row.seq === seq) row.allow = !row.allow;
    row.prev_hash = prev ?? row.prev_hash;
    row.hash = chainHash(row);
    prev = row.hash;
    await db.query({
      text: 'UPDATE decision_log SET allow = $2, prev_hash = $3, hash = $4 WHERE id = $1',
      values: [row.id, row.allow, row.prev_hash, row.hash],
    });
  }
  await db.query({
    text: 'UPDATE chain_heads SET hash = $2 WHERE writer_id = $1',
    values: [writerId, prev],
  });
}

/** Runs `npm run audit:verify` (src/cli/audit-verify.ts) with PATH, HOME and `env`. */
export function runAuditVerify(env: Record<string, string>): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['src/cli/audit-verify.ts'],
      { cwd: root, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } },
      (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
    );
  });
}
