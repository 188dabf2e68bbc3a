/**
 * A whole Verdict for the SDK and MCP suites, on HTTP at 127.0.0.1: its own Postgres database, the
 * Redis notice bus, the policy lifecycle (/v1/bundles) and the grants (/v1/exceptions,
 * /v1/approvals) — built by the composition root as the service builds itself.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Scope } from '../../src/auth/caller.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict } from '../../src/create-verdict.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { RedisBus } from '../../src/store/bus.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { createTestDatabase } from '../support/database.ts';
import { testServiceUrls } from '../support/services.ts';

/** A running Verdict and tokens for it. */
export interface LiveVerdict {
  url: string;
  /** A token for `sub` with `scopes`; `human` adds principal_type "human" (approvers). */
  token(sub: string, scopes: readonly Scope[], human?: boolean): string;
  close(): Promise<void>;
}

export async function startLiveVerdict(label: string): Promise<LiveVerdict> {
  const database = await createTestDatabase(label);
  const secret = randomBytes(32).toString('base64url');
  const config = resolveConfig({
    VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), `verdict-${label}-`)),
    VERDICT_BUNDLE: DEFAULT_BUNDLE,
    VERDICT_RATE_LIMIT_MAX: '100000000',
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
  });
  const redisUrl = testServiceUrls().redisUrl;
  const bus = new RedisBus({ url: redisUrl, prefix: `verdict-${label}-${randomBytes(4).toString('hex')}:` });
  if (!(await bus.ready())) throw new Error(`this suite needs Redis at ${redisUrl}`);
  const verdict = await createVerdict(config, {
    database: database.db,
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    bus,
    redis: null,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  const url = await verdict.app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    token: (sub, scopes, human) =>
      mintToken(secret, {
        sub,
        scopes,
        ttlSeconds: 3600,
        issuer: config.jwt.issuer,
        audience: config.jwt.audience,
        principalType: human ? 'human' : undefined,
      }),
    async close() {
      await verdict.close();
      await bus.close();
      await database.drop();
    },
  };
}
