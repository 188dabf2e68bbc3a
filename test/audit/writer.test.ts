import { copyFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { storeBatchSql } from '../../src/audit/decision-log.ts';
import { Spool } from '../../src/audit/spool.ts';
import { verifyChains } from '../../src/audit/verify.ts';
import { AuditBackpressureError, AuditUnrecordedError, storeBatch } from '../../src/audit/writer.ts';
import type { Database, Queryable } from '../../src/store/types.ts';
import { buildTestApp } from '../support/app.ts';
import { contractFixtureBundle } from '../support/bundle.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { decisionRecord, decisionRecords, testWriter } from './records.support.ts';

let test: TestDatabase;
beforeAll(async () => {
  test = await createTestDatabase('writer');
});
afterAll(async () => test?.drop());
beforeEach(async () => {
  await test.db.exec('DELETE FROM decision_log; DELETE FROM chain_heads');
});

/**
 * The real database behind a switch: while `down`, every statement fails as if Postgres were
 * unreachable; while `gate` is set, transactions wait for it. (The real outage, with a Postgres
 * server stopped and restarted, is test/fault/postgres-outage.test.ts.)
 */
class SwitchableDatabase implements Database {
  readonly kind = 'postgres' as const;
  /** None for other threads: every statement goes through the switch. */
  readonly connection = null;
  down = false;
  gate: Promise<void> | null = null;
  private readonly real: Database;
  constructor(real: Database) {
    this.real = real;
  }
  private check(): void {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
  }
  async query<Row>(sql: { name?: string; text: string; values?: unknown[] }) {
    if (this.gate) await this.gate;
    this.check();
    return this.real.query<Row>(sql);
  }
  async exec(script: string) {
    this.check();
    return this.real.exec(script);
  }
  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    if (this.gate) await this.gate;
    this.check();
    return this.real.transaction(work);
  }
  async ping() {
    return !this.down && this.real.ping();
  }
  async close() {}
}

async function rowCount(ids?: string[]): Promise<number> {
  const { rows } = await test.db.query<{ n: string }>(
    ids
      ? { text: 'SELECT count(*) AS n FROM decision_log WHERE id = ANY($1::uuid[])', values: [ids] }
      : { text: 'SELECT count(*) AS n FROM decision_log' },
  );
  return Number(rows[0]!.n);
}

async function until(condition: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const envelope = (action: string) => ({
  subject: { type: 'user', id: 'u1' },
  action: { name: action },
  resource: { type: 'doc', id: 'd1' },
});

describe('AuditWriter behind the decision API (real Postgres)', () => {
  it('gives every decision answered 200 exactly one row, committed before the answer, in group commits', async () => {
    const writer = testWriter(test.db, { batchMaxWaitMs: 5 });
    await writer.start();
    const { app, injectWithToken } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      recorder: writer,
    });
    try {
      const one = await injectWithToken({ method: 'POST', url: '/v1/decisions', payload: envelope('read') });
      expect(one.statusCode).toBe(200);
      // sync mode: the row is there as soon as the answer is.
      expect(await rowCount([one.json().decision_id])).toBe(1);

      const responses = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          injectWithToken({
            method: 'POST',
            url: '/v1/decisions',
            payload: envelope(i % 2 ? 'read' : 'write'),
          }),
        ),
      );
      const batch = await injectWithToken({
        method: 'POST',
        url: '/v1/decisions/batch',
        payload: { items: ['read', 'write', 'read', 'delete'].map(envelope) },
      });
      expect(batch.statusCode, batch.body).toBe(200);
      const ids = [
        one.json().decision_id,
        ...responses.map((r) => {
          expect(r.statusCode).toBe(200);
          return r.json().decision_id as string;
        }),
        ...batch.json().results.map((r: { decision_id: string }) => r.decision_id),
      ];
      expect(new Set(ids).size).toBe(65);
      const { rows } = await test.db.query<{ id: string; n: string }>({
        text: 'SELECT id, count(*) AS n FROM decision_log GROUP BY id',
      });
      expect(rows.length).toBe(65);
      expect(rows.every((r) => r.n === '1')).toBe(true);
      expect(new Set(rows.map((r) => r.id))).toEqual(new Set(ids));
      const stats = writer.stats();
      expect(stats.recordsCommitted).toBe(65);
      expect(stats.batches).toBeLessThan(62); // concurrent requests shared commits
      expect(stats.queueDepth).toBe(0);
      expect(await verifyChains(test.db)).toEqual({ ok: true, checked: 65, writers: 1 });
    } finally {
      await app.close();
      await writer.close();
    }
  });

  it('stores a long batch sent as UTF-8 bytes exactly as chained: CJK, emoji, escapes, U+2028', async () => {
    // A batch with a row of 4 Ki characters or more travels to pg as bytes (storeBatchSql); the rows
    // must read back as the chain hashed them.
    const text = (n: number) =>
      `返金は処理済みです 🙂 "quoted" back\\slash \u2028 line\nnext ${n} `.repeat(220);
    const records = Array.from({ length: 8 }, (_, n) =>
      decisionRecord(n, {
        actionName: 'model.response',
        input: { resource: { properties: { content: text(n) } }, context: { n } },
      }),
    );
    const writer = testWriter(test.db);
    await writer.start();
    try {
      await writer.record(records);
    } finally {
      await writer.close();
    }
    expect(writer.stats().batches).toBe(1);
    const { rows } = await test.db.query<{ id: string; content: string }>({
      text: "SELECT id, input->'resource'->'properties'->>'content' AS content FROM decision_log ORDER BY seq",
    });
    expect(rows.map((r) => r.id)).toEqual(records.map((r) => r.id));
    expect(rows.map((r) => r.content)).toEqual(records.map((_, n) => text(n)));
    expect(await verifyChains(test.db)).toEqual({ ok: true, checked: 8, writers: 1 });
  });

  it('sends a batch as bytes to pg only when it is long, and to PGlite never', () => {
    const row = (chars: number) => `{"text":"${'é'.repeat(chars)}"}`;
    const rows = [] as never[];
    const long = [row(100), row(4_100)];
    expect(Buffer.isBuffer(storeBatchSql(rows, long, true).values![0])).toBe(true);
    expect(storeBatchSql(rows, long, true).values![0]).toEqual(Buffer.from(`[${long.join(',')}]`));
    expect(storeBatchSql(rows, long, false).values![0]).toBe(`[${long.join(',')}]`);
    const short = Array.from({ length: 16 }, () => row(1_500));
    expect(storeBatchSql(rows, short, true).values![0]).toBe(`[${short.join(',')}]`);
  });

  it('spools while the database fails, answers anyway, then replays exactly once in chain order', async () => {
    const db = new SwitchableDatabase(test.db);
    const writer = testWriter(db);
    const spooled: number[] = [];
    const errors: string[] = [];
    writer.addHooks({
      onBatchSpooled: (size) => spooled.push(size),
      onWriteError: (kind) => errors.push(kind),
    });
    await writer.start();
    await writer.record(decisionRecords(3));
    db.down = true;
    const records = decisionRecords(30, 3);
    await Promise.all([writer.record(records.slice(0, 10)), writer.record(records.slice(10, 25))]);
    await writer.record(records.slice(25));
    expect(spooled.reduce((a, b) => a + b, 0)).toBe(30);
    expect(errors[0]).toBe('commit');
    expect(await rowCount()).toBe(3);
    const spoolFile = (writer as unknown as { spool: { file: string } }).spool.file;
    const copy = path.join(mkdtempSync(path.join(tmpdir(), 'verdict-spool-copy-')), 'old-process.ndjson');
    copyFileSync(spoolFile, copy);
    expect(readFileSync(copy, 'utf8').trim().split('\n').length).toBeGreaterThanOrEqual(2);
    expect(writer.stats().replayBacklogBytes).toBeGreaterThan(0);

    db.down = false;
    await until(() => writer.stats().recordsReplayed === 30);
    expect(writer.stats().replayBacklogBytes).toBe(0);
    expect(statSync(spoolFile).size).toBe(0); // truncated once replayed
    expect(await rowCount(records.map((r) => r.id))).toBe(30);
    expect(writer.stats().recordsReplayed).toBe(30);
    await writer.record(decisionRecords(2, 40));
    await writer.close();
    // Replaying the same spool again (a crash between commit and truncate) adds nothing.
    expect(
      await Spool.replayLeftovers(path.dirname(copy), (rows) =>
        test.db.transaction((tx) => storeBatch(tx, rows)),
      ),
    ).toBe(30);
    expect(await rowCount()).toBe(35);
    expect(await verifyChains(test.db)).toEqual({ ok: true, checked: 35, writers: 1 });
  });

  it('fails closed (503) when neither the database nor the spool can keep a decision, and keeps the chain whole', async () => {
    const db = new SwitchableDatabase(test.db);
    const writer = testWriter(db, { spoolMaxBytes: 100 });
    await writer.start();
    const { app, injectWithToken } = await buildTestApp({
      bundlePath: contractFixtureBundle(),
      recorder: writer,
    });
    try {
      expect(
        (await injectWithToken({ method: 'POST', url: '/v1/decisions', payload: envelope('read') }))
          .statusCode,
      ).toBe(200);
      db.down = true;
      const refused = await injectWithToken({
        method: 'POST',
        url: '/v1/decisions',
        payload: envelope('read'),
      });
      expect(refused.statusCode).toBe(503);
      expect(refused.json().code).toBe('audit_unavailable');
      await expect(writer.record(decisionRecords(1))).rejects.toThrow(AuditUnrecordedError);
      db.down = false;
      const after = await injectWithToken({
        method: 'POST',
        url: '/v1/decisions',
        payload: envelope('read'),
      });
      expect(after.statusCode).toBe(200);
      expect(
        await rowCount([after.json().decision_id, refused.json().decision_id ?? after.json().decision_id]),
      ).toBe(1);
      // The lost positions started a new chain rather than leaving a gap.
      const report = await verifyChains(test.db);
      expect(report).toEqual({ ok: true, checked: 2, writers: 2 });
    } finally {
      await app.close();
      await writer.close();
    }
  });

  it('makes callers wait while the queue is full, and refuses after enqueueTimeoutMs', async () => {
    const db = new SwitchableDatabase(test.db);
    let open!: () => void;
    db.gate = new Promise((resolve) => {
      open = resolve;
    });
    // The timeout also bounds the queued write below, which waits for a real commit after the gate
    // opens: a second leaves room for a slow fsync on a busy machine.
    const writer = testWriter(db, { queueMaxRecords: 10, enqueueTimeoutMs: 1_000, batchMaxWaitMs: 0 });
    await writer.start();
    const first = writer.record(decisionRecords(10));
    const started = Date.now();
    await expect(writer.record(decisionRecords(5, 10))).rejects.toThrow(AuditBackpressureError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(980);
    const waiting = writer.record(decisionRecords(5, 20));
    expect(writer.stats().queueDepth).toBe(10);
    setTimeout(() => {
      db.gate = null;
      open();
    }, 50);
    await first;
    await waiting;
    await writer.close();
    expect(await rowCount()).toBe(15);
    expect((await verifyChains(test.db)).ok).toBe(true);
  });

  it('commits a lone record at once: the group commit lingers only when other records are in flight', async () => {
    const lingerMs = 1_000;
    const writer = testWriter(test.db, { batchMaxWaitMs: lingerMs });
    await writer.start();
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await writer.record(decisionRecords(1, i));
      // One real commit, far below the linger: the record did not wait for company.
      expect(performance.now() - started).toBeLessThan(lingerMs / 2);
    }
    expect(writer.stats().batches).toBe(3);
    await writer.close();
    expect(await rowCount()).toBe(3);
  });

  it('closes a batch batchMaxWaitMs after its first record when others are in flight: what queued during a commit goes at once', async () => {
    const db = new SwitchableDatabase(test.db);
    let open!: () => void;
    db.gate = new Promise((resolve) => {
      open = resolve;
    });
    // Long enough that the two real commits after the gate opens fit well inside one linger.
    const lingerMs = 1_000;
    const writer = testWriter(db, { batchMaxWaitMs: lingerMs });
    await writer.start();
    const started = performance.now();
    // Two records in flight: the writer lingers for the batch to fill; then the commit waits at the gate.
    const first = Promise.all([writer.record(decisionRecords(1)), writer.record(decisionRecords(1, 1))]).then(
      () => performance.now(),
    );
    await until(() => performance.now() - started > lingerMs + 50);
    const second = Promise.all([
      writer.record(decisionRecords(1, 2)),
      writer.record(decisionRecords(1, 3)),
    ]).then(() => performance.now());
    // The next two records have now been queued for longer than the linger, behind the first commit.
    await new Promise((r) => setTimeout(r, lingerMs + 50));
    const opened = performance.now();
    db.gate = null;
    open();
    expect((await first) - started).toBeGreaterThanOrEqual(lingerMs - 5);
    // Waiting a second linger here would put it at >= opened + lingerMs.
    expect((await second) - opened).toBeLessThan(lingerMs * 0.9);
    expect(writer.stats().batches).toBe(2);
    await writer.close();
    expect(await rowCount()).toBe(4);
  });

  it('in async mode answers before the commit, and close() flushes the queue', async () => {
    const db = new SwitchableDatabase(test.db);
    let open!: () => void;
    db.gate = new Promise((resolve) => {
      open = resolve;
    });
    const writer = testWriter(db, { mode: 'async' });
    await writer.start();
    await writer.record(decisionRecords(4));
    expect(await rowCount()).toBe(0);
    const closing = writer.close();
    db.gate = null;
    open();
    await closing;
    expect(await rowCount()).toBe(4);
  });

  it('replays a spool left by a previous process before the new one serves', async () => {
    const db = new SwitchableDatabase(test.db);
    const old = testWriter(db);
    await old.start();
    db.down = true;
    const records = decisionRecords(12);
    await old.record(records);
    await old.close(); // the replay attempt at close fails: the spool file stays
    db.down = false;
    expect(await rowCount()).toBe(0);
    const spoolDir = (old as unknown as { options: { spoolDir: string } }).options.spoolDir;
    const next = testWriter(test.db, { spoolDir });
    await next.start();
    expect(await rowCount(records.map((r) => r.id))).toBe(12);
    expect(next.stats().recordsReplayed).toBe(12);
    await next.record(decisionRecords(1, 50));
    await next.close();
    expect(await verifyChains(test.db)).toEqual({ ok: true, checked: 13, writers: 2 });
  });
});
