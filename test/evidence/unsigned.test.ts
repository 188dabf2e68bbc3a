/**
 * With Postgres and no signing key, the auditor routes cannot sign an evidence package: Verdict
 * says so at start (a warning naming the setting), not first when an auditor asks (503).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict, type Verdict } from '../../src/create-verdict.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { ed25519Pem } from '../support/checkpoints.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const started: { verdict: Verdict; database: TestDatabase }[] = [];

/** Starts Verdict on a test database with `env`; returns the warnings it logged. */
async function warningsAtStart(label: string, env: Record<string, string>): Promise<string[]> {
  const database = await createTestDatabase(label);
  const warnings: string[] = [];
  const note = (fields: object, message: string) => warnings.push(`${message} ${JSON.stringify(fields)}`);
  const verdict = await createVerdict(
    resolveConfig({
      VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), `verdict-${label}-`)),
      VERDICT_BUNDLE: DEFAULT_BUNDLE,
      // Postgres, as a deployment runs: no development key is generated.
      DATABASE_URL: database.url,
      ...env,
    }),
    {
      database: database.db,
      keys: { kind: 'secret', secret: randomBytes(32).toString('base64url'), algorithms: ['HS256'] },
      metrics: createMetrics({ defaultMetrics: false }),
      log: { warn: note, error: note, info: () => {} } as never,
    },
  );
  started.push({ verdict, database });
  return warnings;
}

afterAll(async () => {
  for (const { verdict, database } of started) {
    await verdict.close();
    await database.drop();
  }
});

describe('evidence signing at start', () => {
  it('warns when the auditor routes cannot sign, naming the setting', async () => {
    const warnings = await warningsAtStart('unsigned', {});
    expect(warnings.filter((w) => w.includes('evidence'))).toEqual([
      expect.stringMatching(
        /VERDICT_CHECKPOINT_KEY.*VERDICT_EVIDENCE_KEY|VERDICT_EVIDENCE_KEY.*VERDICT_CHECKPOINT_KEY/,
      ),
    ]);
  });

  it('says nothing with a key', async () => {
    const warnings = await warningsAtStart('signed', { VERDICT_CHECKPOINT_KEY: ed25519Pem() });
    expect(warnings.filter((w) => w.includes('evidence'))).toEqual([]);
  });
});
