/**
 * A whole Verdict on a test database, listening on 127.0.0.1: its own Postgres database
 * (test/support/database.ts), a notice bus, the policy lifecycle (/v1/bundles), the auditor API and
 * the grants (/v1/exceptions, /v1/approvals) — built by the composition root as the service builds
 * itself, with real tokens on a per-instance HS256 secret.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Scope } from '../../src/auth/caller.ts';
import { mintToken } from '../../src/auth/dev-token.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict, type Verdict } from '../../src/create-verdict.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { type Bus, InProcessBus, RedisBus } from '../../src/store/bus.ts';
import { DEFAULT_BUNDLE } from './bundle.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { testServiceUrls } from './services.ts';

/** A running Verdict on its own database, and tokens for it. */
export interface TestVerdict {
  /** What the composition root built: the app, the lifecycle, the replica, metrics… */
  verdict: Verdict;
  database: TestDatabase;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The HS256 secret its tokens are signed with (tests that mint odd tokens: expired, forged…). */
  secret: string;
  /** A token for `sub` with `scopes`; `human` adds principal_type "human" (approvers). */
  token(sub: string, scopes: readonly Scope[], human?: boolean): string;
  /** Closes Verdict and its bus, then drops the database. */
  close(): Promise<void>;
}

/**
 * Starts Verdict on a fresh database named after `label`, seeded with `bundle` (default: the
 * built-in bundle). `env` adds settings (VERDICT_BUNDLE_POLL_MS…); the rate limit and load shedding
 * are off unless it turns them on. `bus: 'redis'` uses the Redis notice bus on a prefix of its own,
 * as a fleet does; the default is the in-process bus.
 */
export async function startTestVerdict(
  label: string,
  options: {
    bundle?: string;
    env?: Record<string, string>;
    bus?: 'in-process' | 'redis';
    port?: number;
  } = {},
): Promise<TestVerdict> {
  const database = await createTestDatabase(label);
  const secret = randomBytes(32).toString('base64url');
  const config = resolveConfig({
    VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), `verdict-${label}-`)),
    VERDICT_BUNDLE: options.bundle ?? DEFAULT_BUNDLE,
    VERDICT_RATE_LIMIT_MAX: '100000000',
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
    ...options.env,
  });
  let bus: Bus = new InProcessBus();
  if (options.bus === 'redis') {
    const redisUrl = testServiceUrls().redisUrl;
    const redis = new RedisBus({
      url: redisUrl,
      prefix: `verdict-${label}-${randomBytes(4).toString('hex')}:`,
    });
    if (!(await redis.ready())) throw new Error(`this suite needs Redis at ${redisUrl}`);
    bus = redis;
  }
  const verdict = await createVerdict(config, {
    database: database.db,
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    bus,
    redis: null,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  const url = await verdict.app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  return {
    verdict,
    database,
    url,
    secret,
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
