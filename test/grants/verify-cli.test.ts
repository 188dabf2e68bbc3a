import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../../src/audit/event-log.ts';
import { runAuditVerify } from '../support/checkpoints.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// `npm run audit:verify` covers the chained platform events (waiver and approval changes) too.

function verifyCli(databaseUrl: string): Promise<{ code: number; stdout: string }> {
  return runAuditVerify({
    DATABASE_URL: databaseUrl,
    JWT_SECRET: 'verify-cli-test-secret-0123456789abcdef',
    VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-verify-events-')),
  });
}

describe('npm run audit:verify and the platform events', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase('grants_verify_cli');
    await tdb.db.transaction(async (tx) => {
      await appendEvent(tx, 'grants', {
        kind: 'exception',
        action: 'request',
        actor: 'lead',
        subject: 'exc_1',
      });
      await appendEvent(tx, 'grants', {
        kind: 'exception',
        action: 'activate',
        actor: 'ciso',
        subject: 'exc_1',
      });
    });
  });
  afterAll(async () => tdb?.drop());

  it('says OK with the events counted, and BROKEN (exit 1) once an event is edited', async () => {
    const ok = await verifyCli(tdb.url);
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toContain('; 2 platform events in 1 chains verified');
    await tdb.db.query({ text: `UPDATE platform_events SET actor = 'lead' WHERE action = 'activate'` });
    const broken = await verifyCli(tdb.url);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/BROKEN — platform events: writer grants at seq 2 .*: edited/);
  });
});
