import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Chain } from '../../src/audit/chain.ts';
import { dropExpiredPartitions, ensurePartitions, monthPartition } from '../../src/audit/partitions.ts';
import { storeBatch } from '../../src/audit/writer.ts';
import { loadMigrations, MigrationChecksumError, migrate } from '../../src/store/migrate.ts';
import { PostgresDatabase } from '../../src/store/postgres.ts';
import { decisionRecord } from '../audit/records.support.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let test: TestDatabase;
beforeAll(async () => {
  test = await createTestDatabase('migrate', { migrate: false });
});
afterAll(async () => test?.drop());

describe('migrations', () => {
  it('apply once even when many replicas start at the same time, recording name and checksum', async () => {
    const replicas = Array.from({ length: 5 }, () => new PostgresDatabase({ url: test.url, max: 1 }));
    const results = await Promise.all(replicas.map((db) => migrate(db)));
    await Promise.all(replicas.map((db) => db.close()));
    const files = loadMigrations();
    expect(results.flat().sort()).toEqual(files.map((m) => m.name).sort());
    const { rows } = await test.db.query<{ name: string; checksum: string }>({
      text: 'SELECT name, checksum FROM schema_migrations ORDER BY name',
    });
    expect(rows).toEqual(files.map((m) => ({ name: m.name, checksum: m.checksum })));
    expect(await migrate(test.db)).toEqual([]);
  });

  it('refuses to run when an applied migration file was changed', async () => {
    const [first, ...rest] = loadMigrations();
    const changed = { ...first!, sql: `${first!.sql}\n-- edited`, checksum: 'f'.repeat(64) };
    await expect(migrate(test.db, [changed, ...rest])).rejects.toThrow(MigrationChecksumError);
  });

  it('uses the search_path schema when one is given', async () => {
    const scoped = new PostgresDatabase({ url: test.url, max: 1 });
    await scoped.exec('CREATE SCHEMA IF NOT EXISTS tenant_a');
    await scoped.close();
    const tenant = new PostgresDatabase({ url: test.url, schema: 'tenant_a', max: 1 });
    try {
      await migrate(tenant);
      const { rows } = await tenant.query<{ schema: string }>({
        text: `SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'decision_log' ORDER BY 1`,
      });
      expect(rows.map((r) => r.schema)).toEqual(['public', 'tenant_a']);
    } finally {
      await tenant.close();
    }
  });
});

describe('partitions', () => {
  it('creates this month and the next two, moving rows that waited in the DEFAULT partition', async () => {
    const now = new Date('2031-03-15T12:00:00Z');
    const [row] = new Chain('w-part').append([decisionRecord(1, { decidedAt: '2031-04-02T00:00:00.000Z' })]);
    await test.db.transaction((tx) => storeBatch(tx, [row!]));
    const created = await ensurePartitions(test.db, now);
    expect(created).toEqual(['decision_log_p203103', 'decision_log_p203104', 'decision_log_p203105']);
    expect(await ensurePartitions(test.db, now)).toEqual([]);
    const { rows } = await test.db.query<{ part: string }>({
      text: 'SELECT tableoid::regclass::text AS part FROM decision_log WHERE id = $1',
      values: [row!.id],
    });
    expect(rows).toEqual([{ part: 'decision_log_p203104' }]);
  });

  it('keeps rows up to ~8 KB inline and uncompressed in every partition, old and new', async () => {
    await ensurePartitions(test.db, new Date('2031-06-15T12:00:00Z'), 0);
    const { rows } = await test.db.query<{ part: string; options: string[] | null }>({
      text: `SELECT c.relname AS part, c.reloptions AS options FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'decision_log'::regclass ORDER BY 1`,
    });
    expect(rows.map((r) => r.part)).toEqual(
      expect.arrayContaining(['decision_log_default', 'decision_log_p203106']),
    );
    for (const row of rows) expect(row.options, row.part).toContain('toast_tuple_target=8160');
  });

  it('drops partitions older than the retention and records the cut', async () => {
    await ensurePartitions(test.db, new Date('2029-01-10T00:00:00Z'), 0);
    const dropped = await dropExpiredPartitions(test.db, 13, new Date('2031-03-15T12:00:00Z'));
    expect(dropped).toEqual(['decision_log_p202901']);
    const { rows } = await test.db.query<{ dropped_before: Date }>({
      text: 'SELECT dropped_before FROM decision_log_retention',
    });
    expect(rows[0]!.dropped_before.toISOString()).toBe('2029-02-01T00:00:00.000Z');
    expect(monthPartition(new Date('2031-12-31T23:59:59Z'), 1).name).toBe('decision_log_p203201');
  });
});
