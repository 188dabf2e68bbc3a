import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../../src/audit/event-log.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// `npm run audit:verify` covers the chained platform events (waiver and approval changes) too.

const root = path.resolve(import.meta.dirname, '../..');

function verifyCli(databaseUrl: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['src/cli/audit-verify.ts'],
      {
        cwd: root,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          DATABASE_URL: databaseUrl,
          JWT_SECRET: 'verify-cli-test-secret-0123456789abcdef',
          VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-verify-events-')),
        },
      },
      (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
    );
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
