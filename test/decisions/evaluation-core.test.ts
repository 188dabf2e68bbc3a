import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mintToken } from '../../src/auth/dev-token.ts';
import { loadBundleFile } from '../../src/bundles/active.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict, type Verdict } from '../../src/create-verdict.ts';
import type { CheckedEvaluation } from '../../src/decisions/evaluate.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { migrate } from '../../src/store/migrate.ts';
import { PGliteDatabase } from '../../src/store/pglite.ts';
import { contractFixtureBundle } from '../support/bundle.ts';

// The evaluation core, wrapped: every call is counted by surface, and `invert` turns each checked
// result into its opposite. If decide or replay evaluated policies any other way, the inversion
// would not show in its answer.
const core = vi.hoisted(() => ({ invert: false, calls: 0 }));
vi.mock('../../src/decisions/evaluate.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/decisions/evaluate.ts')>();
  return {
    ...real,
    evaluateDecision: (...args: Parameters<typeof real.evaluateDecision>): CheckedEvaluation => {
      core.calls += 1;
      const out = real.evaluateDecision(...args);
      if (!core.invert) return out;
      const allow = !out.allow;
      const violations = allow ? [] : [{ control: 'INVERTED', message: 'the core was inverted' }];
      return { ...out, allow, result: { ...out.result, allow, violations } };
    },
  };
});

const secret = 'evaluation-core-test-secret-0123456789';
const envelope = {
  subject: { type: 'user', id: 'u1' },
  action: { name: 'read' },
  resource: { type: 'doc', id: 'd1' },
};
const caller = { sub: 'core-test', iss: null, clientId: null, scopes: [] };

let db: PGliteDatabase;
let verdict: Verdict;

beforeAll(async () => {
  db = await PGliteDatabase.open(undefined);
  await migrate(db);
  const config = resolveConfig({
    VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-core-')),
    VERDICT_RATE_LIMIT_MAX: '100000000',
  });
  verdict = await createVerdict(config, {
    database: db,
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    engine: await loadBundleFile(contractFixtureBundle()),
    metrics: createMetrics({ defaultMetrics: false }),
  });
}, 60_000);

afterAll(async () => {
  await verdict?.close();
  await db?.close();
});

const replay = async (id: string) => {
  const response = await verdict.app.inject({
    method: 'POST',
    url: `/v1/decisions/${id}/replay`,
    headers: { authorization: `Bearer ${mintToken(secret, { scopes: ['audit:read'] })}` },
  });
  expect(response.statusCode).toBe(200);
  return response.json();
};

describe('one evaluation core for decide and replay', () => {
  it('decide and replay both evaluate through evaluateDecision: inverting it shows in both', async () => {
    core.invert = false;
    const before = core.calls;
    const made = await verdict.decisions.decide({
      surface: 'native',
      entrypoint: 'verdict/decision',
      input: envelope,
      caller,
      traceId: null,
    });
    expect(core.calls).toBe(before + 1);
    expect(made.allow).toBe(true);
    const honest = await replay(made.id);
    expect(honest.stored).toMatchObject({ allow: true, matches: true });
    expect(honest.active).toMatchObject({ allow: true, matches: true });

    core.invert = true;
    try {
      // decide: the inverted core's answer is the answer.
      const inverted = await verdict.decisions.decide({
        surface: 'native',
        entrypoint: 'verdict/decision',
        input: envelope,
        caller,
        traceId: null,
      });
      expect(inverted.allow).toBe(false);
      expect(inverted.result.violations.map((v) => v.control)).toEqual(['INVERTED']);
      // replay: the same inversion makes the stored allow a mismatch, on both revisions.
      const calls = core.calls;
      const report = await replay(made.id);
      expect(core.calls).toBe(calls + 2);
      expect(report.stored).toMatchObject({ allow: false, matches: false });
      expect(report.active).toMatchObject({ allow: false, matches: false });
    } finally {
      core.invert = false;
    }
  });
});
