/**
 * Test support for the grants suites: N replicas of the real Verdict (createVerdict) on ONE
 * Postgres database and ONE Redis, each with its own pool, its own Redis bus connections and its
 * own waiver cache, exactly as separate processes would have; real tokens on a shared secret.
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import type { Scope } from '../../src/auth/caller.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import type { KeySource } from '../../src/auth/keys.ts';
import { loadBundleFile } from '../../src/bundles/active.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict, type Verdict } from '../../src/create-verdict.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { RedisBus } from '../../src/store/bus.ts';
import { PostgresDatabase } from '../../src/store/postgres.ts';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const BUNDLE = path.resolve(import.meta.dirname, '../../policies/bundle/bundle.tar.gz');

/** code-agent calls read_file with the session budget (TOOL-006, medium: one approver) exhausted. */
export const overBudget = {
  subject: { type: 'agent', id: 'code-agent' },
  action: { name: 'tool.call' },
  resource: { type: 'tool', id: 'read_file', properties: { arguments: { path: '/workspace/a.ts' } } },
  context: { session: { untrusted_content: false, tool_calls: 10_000 }, data_classification: 'internal' },
};

/** Who calls: a token subject, its scopes, and whether it is a human principal. */
export interface As {
  sub: string;
  scopes: readonly Scope[];
  human?: boolean;
}

/** One replica and a way to call it. */
export interface Replica {
  verdict: Verdict;
  call(method: 'GET' | 'POST', url: string, as: As, body?: unknown): Promise<LightMyRequestResponse>;
}

/** Replicas sharing `databaseUrl` and Redis; `env` adds settings (poll interval, webhook...). */
export async function startReplicas(
  databaseUrl: string,
  count: number,
  env: Record<string, string> = {},
): Promise<{ replicas: Replica[]; close(): Promise<void> }> {
  const secret = randomBytes(32).toString('base64url');
  const keys: KeySource = { kind: 'secret', secret, algorithms: ['HS256'] };
  const prefix = `verdict-grants-${randomBytes(4).toString('hex')}:`;
  const config = resolveConfig({
    VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-grants-')),
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  });
  const engine = await loadBundleFile(BUNDLE);
  const replicas: Replica[] = [];
  const owned: { close(): Promise<void> }[] = [];
  for (let i = 0; i < count; i++) {
    const db = new PostgresDatabase({ url: databaseUrl, max: 4 });
    const bus = new RedisBus({ url: REDIS_URL, prefix });
    if (!(await bus.ready())) throw new Error(`grants tests need Redis at ${REDIS_URL}`);
    const verdict = await createVerdict(config, {
      database: db,
      keys,
      engine,
      bus,
      redis: null,
      metrics: createMetrics({ defaultMetrics: false }),
    });
    await verdict.app.ready();
    owned.push(verdict, bus, db);
    replicas.push({
      verdict,
      call: (method, url, as, body) =>
        verdict.app.inject({
          method,
          url,
          headers: {
            authorization: `Bearer ${mintToken(secret, {
              sub: as.sub,
              scopes: as.scopes,
              ttlSeconds: 600,
              principalType: as.human ? 'human' : undefined,
            })}`,
          },
          ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
        }),
    });
  }
  return {
    replicas,
    async close() {
      for (const item of owned) await item.close();
    },
  };
}

/** Polls `probe` every 25 ms until it returns true; resolves with the elapsed ms, or rejects after `timeoutMs`. */
export async function within(timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
