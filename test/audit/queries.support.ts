/**
 * Test support for the auditor API suites: the real app with the auditor routes, on a database of
 * the suite's own (test/support/database.ts), recording through the real AuditWriter, with real
 * tokens (audit:read unless told otherwise).
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { AuditTrail } from '../../src/audit/audit-trail.ts';
import { DecisionLogReader } from '../../src/audit/queries.ts';
import type { Scope } from '../../src/auth/caller.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import type { KeySource } from '../../src/auth/keys.ts';
import { type ActiveBundle, loadBundleFile } from '../../src/bundles/active.ts';
import type { RevisionStore } from '../../src/bundles/revisions.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict } from '../../src/create-verdict.ts';
import type { DecisionService } from '../../src/decisions/service.ts';
import type { App } from '../../src/http/app.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import type { Database } from '../../src/store/types.ts';

/** Everything a suite needs to drive and inspect the auditor API. */
export interface AuditTestApp {
  app: App;
  decisions: DecisionService;
  policy: ActiveBundle;
  revisions: RevisionStore;
  log: DecisionLogReader;
  trail: AuditTrail;
  /** app.inject with a bearer token holding `scopes` (default: audit:read only), as `sub` (default auditor). */
  inject(request: InjectOptions, scopes?: readonly Scope[], sub?: string): Promise<LightMyRequestResponse>;
  token(scopes?: readonly Scope[], sub?: string): string;
  close(): Promise<void>;
}

/** The real app with the auditor API on `db`, deciding on `bundlePath`, recording into `db`. */
export async function buildAuditApp(options: {
  db: Database;
  bundlePath: string;
  clock?: () => Date;
  /** Extra environment (e.g. VERDICT_CHECKPOINT_*). */
  env?: Record<string, string>;
}): Promise<AuditTestApp> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'verdict-audit-'));
  // Load shedding off: a synchronous `opa build` in a suite's setup stalls the loop by design.
  const config = resolveConfig({
    VERDICT_DATA_DIR: dataDir,
    VERDICT_RATE_LIMIT_MAX: '100000000',
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
    ...options.env,
  });
  const keys: KeySource = {
    kind: 'secret',
    secret: randomBytes(32).toString('base64url'),
    algorithms: ['HS256'],
  };
  const token = (scopes: readonly Scope[] = ['audit:read'], sub = 'auditor') =>
    mintToken(keys.kind === 'secret' ? keys.secret : '', { sub, ttlSeconds: 3600, scopes });
  const verdict = await createVerdict(config, {
    database: options.db,
    keys,
    engine: await loadBundleFile(options.bundlePath),
    clock: options.clock,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  const { app, decisions, policy } = verdict;
  const revisions = verdict.revisions!;
  const trail = verdict.audit!;
  const log = new DecisionLogReader(options.db);
  await app.ready();
  return {
    app,
    decisions,
    policy,
    revisions,
    log,
    trail,
    token,
    inject: (request, scopes, sub) =>
      app.inject({
        ...request,
        headers: { ...request.headers, authorization: `Bearer ${token(scopes, sub)}` },
      }),
    close: () => verdict.close(),
  };
}

/** A clock that starts at `start` and moves 1 ms per reading: every decision gets its own time. */
export function steppingClock(start: string): () => Date {
  let ms = Date.parse(start);
  return () => new Date(ms++);
}
