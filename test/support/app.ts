import { randomBytes } from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { MemoryRecorder } from '../../src/audit/memory-recorder.ts';
import { SCOPES, type Scope } from '../../src/auth/caller.ts';
import { mintToken, type TokenRequest } from '../../src/auth/dev-token.ts';
import { configuredKeySource, type KeySource } from '../../src/auth/keys.ts';
import { type ActiveBundle, loadBundleFile } from '../../src/bundles/active.ts';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { createVerdict } from '../../src/create-verdict.ts';
import type { DecisionService } from '../../src/decisions/service.ts';
import type { DecisionRecorder } from '../../src/decisions/types.ts';
import type { App, AppDeps } from '../../src/http/app.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';

/** Dependencies that are never called, so that a database-less app still registers every route. */
const ROUTE_TABLE_STUBS: Pick<AppDeps, 'audit' | 'grants' | 'bundles' | 'evidence'> = {
  audit: { log: {} as never, replayer: {} as never },
  evidence: { keys: () => [] },
  grants: {
    waivers: { store: {} as never, policy: {} as never },
    approvals: { store: {} as never, policy: {} as never },
  },
  bundles: { lifecycle: {} as never, replica: null, maxBytes: 1024, replicaTimeoutMs: 1000 },
};

/** Mints a bearer token for a test app: every scope by default, or the scopes given. */
export type TestToken = (scopes?: readonly Scope[], claims?: Omit<TokenRequest, 'scopes'>) => string;

/**
 * A real app on a real bundle, built by the composition root (createVerdict) without a database,
 * recording into memory (or into the recorder given). Auth is real:
 * unless `keys` or a JWT_* env var names a key source, the app trusts a random per-app HS256
 * secret, and `token()` / `injectWithToken()` mint tokens for it. The rate limit is lifted unless
 * `env` sets VERDICT_RATE_LIMIT_MAX; load shedding is off unless `env` turns it on.
 */
export async function buildTestApp(options: {
  bundlePath: string;
  env?: Record<string, string>;
  recorder?: DecisionRecorder;
  keys?: KeySource;
  authOverrides?: AppDeps['authOverrides'];
  /** Extra route plugins (a test's own routes), registered after Verdict's. */
  plugins?: AppDeps['plugins'];
  /** Fastify's logger option; default no logging. */
  logger?: AppDeps['logger'];
  /** Default: a fresh registry without process metrics. */
  metrics?: Metrics;
  /** Default: always ready. */
  readiness?: AppDeps['readiness'];
  /** The auditor API (absent by default: there is no database); a stub registers its routes. */
  audit?: AppDeps['audit'];
  /** The waiver and approval routes (absent by default: there is no database); a stub registers them. */
  grants?: AppDeps['grants'];
  /**
   * Registers every route of the product — the auditor, bundle, waiver and approval routes too —
   * on stubs that are never called: for checks of the whole route table (scopes, docs).
   */
  allRoutes?: boolean;
  /** Evidence packages (absent by default: there is no database); a stub registers its routes. */
  evidence?: AppDeps['evidence'];
}): Promise<{
  app: App;
  recorder: DecisionRecorder;
  policy: ActiveBundle;
  decisions: DecisionService;
  metrics: Metrics;
  token: TestToken;
  injectWithToken: (request: InjectOptions, scopes?: readonly Scope[]) => Promise<LightMyRequestResponse>;
  /** Closes the app and what the composition root opened for it (a Redis client). */
  close: () => Promise<void>;
}> {
  const config = resolveConfig({
    VERDICT_DATA_DIR: '/tmp/verdict-test-data',
    VERDICT_RATE_LIMIT_MAX: '100000000',
    // Load shedding judges the machine, not the code: a busy CI host would turn asserts into 503s.
    // Its own test (test/observability/overload.test.ts) turns it on.
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
    ...options.env,
  });
  const keys: KeySource = options.keys ??
    configuredKeySource(config.jwt) ?? {
      kind: 'secret',
      secret: randomBytes(32).toString('base64url'),
      algorithms: ['HS256'],
    };
  const token: TestToken = (scopes = SCOPES, claims = {}) => {
    if (keys.kind !== 'secret') throw new Error('token() needs a shared-secret key source');
    return mintToken(keys.secret, {
      sub: 'test-caller',
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      ttlSeconds: 3600,
      ...claims,
      scopes,
    });
  };
  const recorder = options.recorder ?? new MemoryRecorder();
  const verdict = await createVerdict(config, {
    database: null,
    recorder,
    keys,
    engine: await loadBundleFile(options.bundlePath),
    // Default process metrics off: many apps share one test process.
    metrics: options.metrics ?? createMetrics({ defaultMetrics: false }),
    readinessCheck: options.readiness,
    http: {
      authOverrides: options.authOverrides,
      logger: options.logger,
      plugins: options.plugins,
      ...(options.allRoutes ? ROUTE_TABLE_STUBS : {}),
      ...(options.audit ? { audit: options.audit } : {}),
      ...(options.grants ? { grants: options.grants } : {}),
      ...(options.evidence ? { evidence: options.evidence } : {}),
    },
  });
  const { app, policy, decisions, metrics } = verdict;
  await app.ready();
  const injectWithToken = (request: InjectOptions, scopes?: readonly Scope[]) =>
    app.inject({ ...request, headers: { ...request.headers, authorization: `Bearer ${token(scopes)}` } });
  return { app, recorder, policy, decisions, metrics, token, injectWithToken, close: () => verdict.close() };
}
