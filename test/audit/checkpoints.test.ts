/**
 * Signed chain checkpoints on real Postgres: a writer's committed heads are signed and stored, a
 * "perfect" rewrite (an edited row, every later hash recomputed, the head moved) passes plain chain
 * verification and is reported as rewritten against the checkpoints — from the database, from the
 * checkpoint file when the database's checkpoints were deleted, through GET /v1/audit/verify and
 * `npm run audit:verify`. Forged checkpoints and the event chain too.
 */
import crypto from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type Checkpoint,
  checkpointPayload,
  DEV_CHECKPOINT_KEY_FILE,
  loadCheckpointKey,
  readCheckpointFile,
  verifyCheckpoints,
} from '../../src/audit/checkpoints.ts';
import { appendEvent, eventFromDatabase, eventHash, verifyEvents } from '../../src/audit/event-log.ts';
import { verifyChains } from '../../src/audit/verify.ts';
import { ConfigError, resolveConfig } from '../../src/config/resolve-config.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import {
  checkpointFixture,
  ed25519Pem,
  perfectRewrite,
  publicPemOf,
  runAuditVerify,
  signingKey,
} from '../support/checkpoints.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { buildAuditApp } from './queries.support.ts';
import { decisionRecords } from './records.support.ts';

let test: TestDatabase;
beforeAll(async () => {
  test = await createTestDatabase('checkpoints');
});
afterAll(async () => test?.drop());
beforeEach(async () => {
  await test.db.exec(`DELETE FROM decision_log; DELETE FROM chain_heads; DELETE FROM chain_checkpoints;
    DELETE FROM platform_events; DELETE FROM platform_event_heads; DELETE FROM decision_log_retention`);
});

describe('Checkpointer', () => {
  it('signs the committed head of every writer once, and verification holds', async () => {
    const { key, writer, checkpointer } = checkpointFixture(test.db);
    await writer.record(decisionRecords(5));
    const first = await checkpointer.checkpoint();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({
      chain: 'decisions',
      writer_id: writer.writerId,
      seq: 5,
      key_id: key.keyId,
    });
    expect(key.verify(checkpointPayload(first[0]!), first[0]!.signature)).toBe(true);
    // Nothing new: nothing signed again.
    expect(await checkpointer.checkpoint()).toEqual([]);
    await writer.record(decisionRecords(3, 5));
    expect((await checkpointer.checkpoint()).map((c) => c.seq)).toEqual([8]);
    await writer.close();
    const report = await verifyCheckpoints(test.db, key);
    expect(report).toMatchObject({ ok: true, configured: true, checked: 2, keyId: key.keyId });
  });

  it('reports a perfect rewrite that plain chain verification accepts', async () => {
    const { key, writer, checkpointer } = checkpointFixture(test.db);
    await writer.record(decisionRecords(8));
    await checkpointer.checkpoint();
    await writer.record(decisionRecords(4, 8));
    await checkpointer.checkpoint();
    await writer.close();
    const signedAt8 = (
      await test.db.query<{ hash: string }>({
        text: 'SELECT hash FROM decision_log WHERE writer_id = $1 AND seq = 8',
        values: [writer.writerId],
      })
    ).rows[0]!.hash;

    await perfectRewrite(test.db, writer.writerId, 6);

    // The rewrite is perfect: the hash chain alone cannot tell.
    expect(await verifyChains(test.db)).toEqual({ ok: true, checked: 12, writers: 1 });
    const report = await verifyCheckpoints(test.db, key);
    expect(report.ok).toBe(false);
    expect(report.firstMismatch).toMatchObject({
      chain: 'decisions',
      writerId: writer.writerId,
      seq: 8,
      reason: 'rewritten',
      signedHash: signedAt8,
    });
    expect(report.firstMismatch!.storedHash).not.toBe(signedAt8);
  });

  it('still finds the rewrite from the checkpoint file after the stored checkpoints were deleted', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'verdict-cp-')), 'checkpoints.ndjson');
    const { key, writer, checkpointer } = checkpointFixture(test.db, { file });
    await writer.record(decisionRecords(6));
    await checkpointer.checkpoint();
    await writer.close();
    expect(readCheckpointFile(file)).toHaveLength(1);
    await perfectRewrite(test.db, writer.writerId, 2);
    await test.db.exec('DELETE FROM chain_checkpoints');
    expect((await verifyCheckpoints(test.db, key)).ok).toBe(true);
    const report = await verifyCheckpoints(test.db, key, { extra: readCheckpointFile(file) });
    expect(report.firstMismatch).toMatchObject({ seq: 6, reason: 'rewritten' });
  });

  it('reports a forged checkpoint (hash edited to match a rewrite) and one signed by another key', async () => {
    const { key, writer, checkpointer } = checkpointFixture(test.db);
    await writer.record(decisionRecords(4));
    await checkpointer.checkpoint();
    await writer.close();
    await perfectRewrite(test.db, writer.writerId, 3);
    await test.db.query({
      text: `UPDATE chain_checkpoints SET hash = (SELECT hash FROM decision_log WHERE writer_id = $1 AND seq = 4)`,
      values: [writer.writerId],
    });
    expect((await verifyCheckpoints(test.db, key)).firstMismatch).toMatchObject({ reason: 'bad_signature' });
    expect((await verifyCheckpoints(test.db, signingKey())).firstMismatch).toMatchObject({
      reason: 'unknown_key',
    });
  });

  it('reports a truncated chain (the signed position deleted with everything after it, head moved back)', async () => {
    const { key, writer, checkpointer } = checkpointFixture(test.db);
    await writer.record(decisionRecords(5));
    await checkpointer.checkpoint();
    await writer.close();
    await test.db.query({
      text: 'DELETE FROM decision_log WHERE seq > 3 AND writer_id = $1',
      values: [writer.writerId],
    });
    await test.db.query({
      text: `UPDATE chain_heads SET seq = 3, hash = (SELECT hash FROM decision_log WHERE writer_id = $1 AND seq = 3)`,
      values: [writer.writerId],
    });
    expect((await verifyChains(test.db)).ok).toBe(true);
    expect((await verifyCheckpoints(test.db, key)).firstMismatch).toMatchObject({
      seq: 5,
      reason: 'truncated',
      storedHash: null,
    });
  });

  it('signs the platform event chains, and reports a perfect rewrite of an event', async () => {
    const { key, checkpointer } = checkpointFixture(test.db);
    for (const action of ['upload', 'activate', 'shadow_set']) {
      await test.db.transaction((tx) =>
        appendEvent(tx, 'replica-a', { kind: 'policy', action, actor: 'alice' }),
      );
    }
    expect((await checkpointer.checkpoint()).map((c) => [c.chain, c.writer_id, c.seq])).toEqual([
      ['events', 'replica-a', 3],
    ]);
    // Rewrite event 2's actor and rechain 2..3 and the head.
    const { rows } = await test.db.query<Record<string, unknown>>({
      text: 'SELECT * FROM platform_events ORDER BY seq',
    });
    let prev = eventFromDatabase(rows[0]!).hash;
    for (const raw of rows.slice(1)) {
      const row = eventFromDatabase(raw);
      if (row.seq === 2) row.actor = 'mallory';
      row.prev_hash = prev;
      row.hash = eventHash(row);
      prev = row.hash;
      await test.db.query({
        text: 'UPDATE platform_events SET actor = $2, prev_hash = $3, hash = $4 WHERE id = $1',
        values: [row.id, row.actor, row.prev_hash, row.hash],
      });
    }
    await test.db.query({ text: 'UPDATE platform_event_heads SET hash = $1', values: [prev] });
    expect((await verifyEvents(test.db)).ok).toBe(true);
    expect((await verifyCheckpoints(test.db, key)).firstMismatch).toMatchObject({
      chain: 'events',
      writerId: 'replica-a',
      seq: 3,
      reason: 'rewritten',
    });
  });

  it('POSTs every checkpoint to the configured URL', async () => {
    const received: Checkpoint[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { key, writer, checkpointer } = checkpointFixture(test.db, {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/checkpoints`,
      });
      await writer.record(decisionRecords(2));
      const stored = await checkpointer.checkpoint();
      await checkpointer.settled();
      await writer.close();
      expect(received).toEqual(stored);
      expect(key.verify(checkpointPayload(received[0]!), received[0]!.signature)).toBe(true);
    } finally {
      server.close();
    }
  });

  /** A notary that answers 503 to its first `failures` POSTs (Infinity: to every POST), then 204. */
  async function flakyNotary(failures: number) {
    const attempts: { at: number; body: Checkpoint }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        attempts.push({ at: Date.now(), body: JSON.parse(body) });
        res.statusCode = attempts.length <= failures ? 503 : 204;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      attempts,
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/checkpoints`,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  async function checkpointThrough(url: string) {
    const errors: { where: string; error: Error }[] = [];
    const retries: { attempt: number; delayMs: number }[] = [];
    const { writer, checkpointer } = checkpointFixture(test.db, {
      events: false,
      url,
      urlRetry: { attempts: 4, firstDelayMs: 40, maxDelayMs: 100 },
      hooks: {
        onError: (where, error) => errors.push({ where, error: error as Error }),
        onRetry: (attempt, delayMs) => retries.push({ attempt, delayMs }),
      },
    });
    await writer.record(decisionRecords(2));
    const stored = await checkpointer.checkpoint();
    await checkpointer.settled();
    await writer.close();
    return { stored, errors, retries };
  }

  it('retries a failed POST with exponential backoff until the URL accepts it', async () => {
    const notary = await flakyNotary(2);
    try {
      const { stored, errors, retries } = await checkpointThrough(notary.url);
      expect(stored).toHaveLength(1);
      expect(notary.attempts.map((a) => a.body)).toEqual([stored[0], stored[0], stored[0]]);
      expect(retries).toEqual([
        { attempt: 1, delayMs: 40 },
        { attempt: 2, delayMs: 80 },
      ]);
      // The waits really were waited (timers may fire a little early on a loaded machine).
      const [a, b, c] = notary.attempts.map((attempt) => attempt.at) as [number, number, number];
      expect(b - a).toBeGreaterThanOrEqual(35);
      expect(c - b).toBeGreaterThanOrEqual(75);
      expect(errors).toEqual([]);
    } finally {
      await notary.close();
    }
  });

  it('gives up after its last attempt, says so once, and the stored checkpoint remains', async () => {
    const notary = await flakyNotary(Number.POSITIVE_INFINITY);
    try {
      const { stored, errors, retries } = await checkpointThrough(notary.url);
      expect(notary.attempts).toHaveLength(4);
      // Doubling, capped at maxDelayMs.
      expect(retries.map((r) => r.delayMs)).toEqual([40, 80, 100]);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.where).toBe('url');
      expect(errors[0]!.error.message).toMatch(
        /^gave up POSTing the checkpoint .* after 4 attempt\(s\) in \d+ ms: the checkpoint URL answered 503$/,
      );
      const { rows } = await test.db.query<{ n: number }>({
        text: 'SELECT count(*)::int AS n FROM chain_checkpoints',
      });
      expect(rows[0]!.n).toBe(stored.length);
    } finally {
      await notary.close();
    }
  });
});

describe('the service: interval, /v1/audit/verify and npm run audit:verify', () => {
  it('checkpoints on its interval, and verify reports the rewrite over HTTP and on the command line', async () => {
    const pem = ed25519Pem();
    const dir = mkdtempSync(path.join(tmpdir(), 'verdict-cp-service-'));
    const keyFile = path.join(dir, 'checkpoint.pem');
    writeFileSync(keyFile, pem, { mode: 0o600 });
    const audit = await buildAuditApp({
      db: test.db,
      bundlePath: contractFixtureBundle(),
      env: { VERDICT_CHECKPOINT_KEY: keyFile, VERDICT_CHECKPOINT_INTERVAL: '150ms' },
    });
    try {
      for (let i = 0; i < 4; i += 1) {
        await audit.decisions.decide({
          surface: 'native',
          entrypoint: 'verdict/decision',
          input: {
            subject: { type: 'agent', id: `a${i}` },
            action: { name: 'tool.call' },
            resource: { type: 'tool', id: 't' },
          },
          caller: { sub: 'svc', iss: null, clientId: null, scopes: ['decisions:evaluate'] },
          traceId: null,
        });
      }
      // The interval, not a direct call, signs the head.
      const deadline = Date.now() + 5_000;
      let signed = 0;
      while (Date.now() < deadline && signed === 0) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        signed = (
          await test.db.query({
            text: `SELECT 1 FROM chain_checkpoints WHERE chain = 'decisions' AND seq = 4`,
          })
        ).rows.length;
      }
      expect(signed).toBe(1);
      const ok = await audit.inject({ method: 'GET', url: '/v1/audit/verify' });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toMatchObject({ ok: true, checkpoints: { ok: true, configured: true } });
      // The decision chain's head and (since the policy lifecycle seeds its revision) the event chain's.
      expect(ok.json().checkpoints.checked).toBeGreaterThanOrEqual(1);

      const writerId = String(
        (await test.db.query({ text: 'SELECT writer_id FROM chain_heads' })).rows[0]!.writer_id,
      );
      await perfectRewrite(test.db, writerId, 2);
      const bad = (await audit.inject({ method: 'GET', url: '/v1/audit/verify' })).json();
      expect(bad.ok).toBe(false);
      expect(bad.firstBroken).toBeUndefined();
      // The first checkpoint at or after the rewritten row (the interval may have signed seq 2, 3 or 4).
      expect(bad.checkpoints.firstMismatch).toMatchObject({ writerId, reason: 'rewritten' });
      const seq = bad.checkpoints.firstMismatch.seq;
      expect(seq).toBeGreaterThanOrEqual(2);
      expect(seq).toBeLessThanOrEqual(4);

      const cli = await runAuditVerify({
        DATABASE_URL: test.url,
        JWT_SECRET: 'x'.repeat(40),
        VERDICT_CHECKPOINT_PUBLIC_KEY: publicPemOf(pem),
      });
      expect(cli.code).toBe(1);
      expect(cli.stdout).toContain('CHECKPOINT FAILED — rewritten');
      expect(cli.stdout).toContain(`writer ${writerId}`);
      expect(cli.stdout).toContain(`seq ${seq}`);
    } finally {
      await audit.close();
    }
  });
});

describe('configuration', () => {
  it('reads VERDICT_CHECKPOINT_INTERVAL as milliseconds or a duration', () => {
    expect(resolveConfig({}).checkpoint.intervalMs).toBe(60_000);
    expect(resolveConfig({ VERDICT_CHECKPOINT_INTERVAL: '2500' }).checkpoint.intervalMs).toBe(2_500);
    expect(resolveConfig({ VERDICT_CHECKPOINT_INTERVAL: '30s' }).checkpoint.intervalMs).toBe(30_000);
    expect(resolveConfig({ VERDICT_CHECKPOINT_INTERVAL: '5m' }).checkpoint.intervalMs).toBe(300_000);
    expect(() => resolveConfig({ VERDICT_CHECKPOINT_INTERVAL: 'soon' })).toThrow(ConfigError);
    expect(() => resolveConfig({ VERDICT_CHECKPOINT_INTERVAL: '10ms' })).toThrow(/between 100/);
  });

  it('takes the key as PEM text or a file, refuses a non-Ed25519 key, and generates one only when embedded', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'verdict-cp-key-'));
    const pem = ed25519Pem();
    const fromText = loadCheckpointKey(
      resolveConfig({ VERDICT_CHECKPOINT_KEY: pem.replace(/\n/g, '\\n'), DATABASE_URL: 'postgres://x/y' }),
    );
    writeFileSync(path.join(dir, 'k.pem'), pem);
    const fromFile = loadCheckpointKey(
      resolveConfig({ VERDICT_CHECKPOINT_KEY: path.join(dir, 'k.pem'), DATABASE_URL: 'postgres://x/y' }),
    );
    expect(fromText?.keyId).toBe(fromFile?.keyId);
    expect(fromText?.canSign).toBe(true);
    const rsa = crypto
      .generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ format: 'pem', type: 'pkcs8' });
    expect(() => loadCheckpointKey(resolveConfig({ VERDICT_CHECKPOINT_KEY: rsa.toString() }))).toThrow(
      /Ed25519/,
    );
    // Postgres without a key: no checkpoints (a key nobody provisioned would differ per replica).
    expect(
      loadCheckpointKey(resolveConfig({ DATABASE_URL: 'postgres://x/y', VERDICT_DATA_DIR: dir }), {
        generate: true,
      }),
    ).toBeUndefined();
    // Embedded: generated once into the data dir, mode 0600, the same key at the next start.
    const embedded = resolveConfig({ VERDICT_DATA_DIR: dir });
    const generated = loadCheckpointKey(embedded, { generate: true });
    expect(generated?.canSign).toBe(true);
    expect(readFileSync(path.join(dir, DEV_CHECKPOINT_KEY_FILE), 'utf8')).toContain('PRIVATE KEY');
    expect(loadCheckpointKey(embedded)?.keyId).toBe(generated?.keyId);
    // A public key only: verification without the power to sign.
    const publicOnly = loadCheckpointKey(
      resolveConfig({
        DATABASE_URL: 'postgres://x/y',
        VERDICT_CHECKPOINT_PUBLIC_KEY: publicPemOf(pem),
      }),
    );
    expect(publicOnly?.canSign).toBe(false);
    expect(publicOnly?.keyId).toBe(fromText?.keyId);
  });
});
