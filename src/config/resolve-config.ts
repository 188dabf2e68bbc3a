import path from 'node:path';
import { type BundleConfig, resolveBundleConfig } from './bundles.ts';
import { ConfigError, type Env, integer, text } from './env.ts';
import { type OidcConfig, resolveOidc } from './oidc.ts';

export { ConfigError } from './env.ts';

/** How decision records reach the audit store. See docs/decisions/0003-audit-durability.md. */
export type AuditMode = 'sync' | 'async' | 'off';

/** The whole typed configuration. Only `resolveConfig` reads the environment. */
export interface Config {
  port: number;
  host: string;
  /**
   * The public base URL clients reach this service at (behind proxies and TLS terminators), used
   * where Verdict names its own URLs (AuthZEN discovery). Absent → taken from each request's Host.
   */
  publicUrl: string | undefined;
  /** Postgres connection string; absent → embedded PGlite in `dataDir`. */
  databaseUrl: string | undefined;
  /** Redis connection string; absent → in-process rate limiter. */
  redisUrl: string | undefined;
  dataDir: string;
  logLevel: string;
  /** `auto`: pretty when stdout is a terminal outside production (and pino-pretty is installed). */
  logFormat: LogFormat;
  /** NODE_ENV, as the ecosystem reads it ("production" turns off pretty logs). */
  nodeEnv: string;
  /** Path of the bundle served when none was uploaded (a directory or a .tar.gz). */
  bundlePath: string;
  /**
   * OPA's Go builtins compiled to wasm (`verdict-builtins.wasm`, ADR 0022); undefined: the build of
   * scripts/tools.sh in this checkout (`.tools/go-builtins/`).
   */
  goBuiltinsWasm: string | undefined;
  /** Entrypoint used by the native and AuthZEN APIs when the request names none. */
  defaultEntrypoint: string;
  /** The path `POST /` evaluates (OPA's `default_decision`), without leading slash: `system/main`. */
  defaultDecision: string;
  batchLimit: number;
  bodyLimitBytes: number;
  /** Limits on every JSON document a client sends (bodies and the data API's `input` parameter). */
  json: { maxDepth: number; maxKeys: number; maxStringLength: number };
  workers: number;
  corsOrigins: string[];
  jwt: {
    secret: string | undefined;
    publicKey: string | undefined;
    jwksUrl: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    clockSkewSeconds: number;
  };
  /** The console's OpenID Connect sign-in (issue 24; src/config/oidc.ts); absent → off. */
  oidc: OidcConfig | undefined;
  /** Per-caller request budget per window; `max` 0 = off (the default, ADR 0006). */
  rateLimit: { max: number; windowMs: number };
  audit: {
    mode: AuditMode;
    /** A group-commit batch closes at this many records... */
    batchMaxRecords: number;
    /** ...or this many milliseconds after its first record, whichever comes first. */
    batchMaxWaitMs: number;
    /** Records waiting to be committed; beyond it, requests wait up to `enqueueTimeoutMs`. */
    queueMaxRecords: number;
    enqueueTimeoutMs: number;
    spoolMaxBytes: number;
    retentionMonths: number;
  };
  shutdownTimeoutMs: number;
  /**
   * On SIGTERM, how long readiness reports "not ready" while the server still serves, so that load
   * balancers stop sending traffic before the listener closes.
   */
  shutdownDrainMs: number;
  /** Load shedding (503 + Retry-After) under overload; 0 turns a check off. */
  shed: { maxEventLoopDelayMs: number; maxHeapUsedBytes: number; retryAfterSeconds: number };
  /** Signed chain checkpoints (docs/decisions/0010-signed-checkpoints.md). */
  checkpoint: {
    /** Ed25519 private key: PEM text, or the path of a PEM file. Absent → generated in dataDir (embedded) or off. */
    key: string | undefined;
    /** Ed25519 public key (PEM text or file) to verify with; absent → derived from `key`. */
    publicKey: string | undefined;
    intervalMs: number;
    /** Also append every checkpoint (NDJSON) to this file. */
    file: string | undefined;
    /** Also POST every checkpoint (JSON) to this URL. */
    url: string | undefined;
  };
  /** Ed25519 key that signs evidence manifests (PEM text or file); absent → the checkpoint key. */
  evidenceKey: string | undefined;
  /** The SIEM forwarder: pushes every decision record to `url` (off when absent). */
  siem: {
    url: string | undefined;
    format: 'ocsf' | 'splunk-hec' | 'ndjson';
    token: string | undefined;
    batchMax: number;
  };
  /** The policy lifecycle: polling, staleness, upload limit, signatures, bundle-service pull. */
  bundles: BundleConfig;
  /** PDP-held waivers and human approvals (issue 13). */
  grants: GrantsConfig;
  /** The governance console at /console (issue 24; docs/console.md). */
  console: ConsoleConfig;
}

/** The console's sign-in and sessions (docs/console.md, 'Sessions'). */
export interface ConsoleConfig {
  /**
   * The token sign-in form at /console/login (a JWT the key source verifies). Default: on in the
   * embedded development mode (no DATABASE_URL, no JWT_* key source) without OIDC sign-in
   * (VERDICT_OIDC_ISSUER), off otherwise; VERDICT_CONSOLE_TOKEN_LOGIN=true|false decides.
   */
  tokenLogin: boolean;
  /** A session ends after this long without a request (VERDICT_CONSOLE_IDLE_MINUTES, default 30). */
  idleMinutes: number;
  /** A session ends this long after sign-in, whatever happens (VERDICT_CONSOLE_SESSION_HOURS, default 8). */
  absoluteHours: number;
}

/**
 * Waivers and approvals: freshness, the legacy client approval, the approval webhook. Links in
 * approval requests and webhooks are built from `Config.publicUrl` (VERDICT_PUBLIC_URL).
 */
export interface GrantsConfig {
  /** How often each replica checks the grants version in Postgres (the safety net under the bus). */
  pollMs: number;
  /** Let a client-sent context.approval satisfy TOOL-002/003 (unsafe; for migration only). */
  legacyClientApprovals: boolean;
  /** Where each new approval request is POSTed (signed); absent → no notification. */
  webhookUrl: string | undefined;
  /** HMAC-SHA256 key of the webhook's signature header. */
  webhookSecret: string | undefined;
}

/** How log lines are written. */
export type LogFormat = 'auto' | 'json' | 'pretty';

export const DEFAULTS = {
  port: 8080,
  host: '0.0.0.0',
  /** The embedded development mode (dev secret, all-scopes banner token) listens on loopback only. */
  devHost: '127.0.0.1',
  dataDir: '.verdict-data',
  logLevel: 'info',
  logFormat: 'auto' as LogFormat,
  bundlePath: 'policies/bundle/bundle.tar.gz',
  defaultEntrypoint: 'verdict/decision',
  defaultDecision: 'system/main',
  batchLimit: 100,
  bodyLimitBytes: 1024 * 1024,
  jsonMaxDepth: 64,
  jsonMaxKeys: 10_000,
  jsonMaxStringLength: 64 * 1024,
  workers: 1,
  jwtClockSkewSeconds: 30,
  /** Off: a PDP's main caller is one service identity (docs/decisions/0006-rate-limit-default.md). */
  rateLimitMax: 0,
  rateLimitWindowMs: 60_000,
  auditMode: 'sync' as AuditMode,
  auditBatchMaxRecords: 500,
  auditBatchMaxWaitMs: 2,
  auditQueueMaxRecords: 20_000,
  auditEnqueueTimeoutMs: 5_000,
  auditSpoolMaxBytes: 1024 * 1024 * 1024,
  auditRetentionMonths: 13,
  shutdownTimeoutMs: 25_000,
  shutdownDrainMs: 0,
  shedMaxEventLoopDelayMs: 1_000,
  shedMaxHeapUsedBytes: 0,
  shedRetryAfterSeconds: 5,
  checkpointIntervalMs: 60_000,
  grantsPollMs: 2_000,
} as const;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Milliseconds: a whole number (ms) or a duration with a unit: `500ms`, `30s`, `1m`, `2h`. */
function duration(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const match = /^(\d+)(ms|s|m|h)?$/.exec(raw);
  if (!match)
    throw new ConfigError(name, `must be milliseconds or a duration such as 30s, 1m, 1h; got "${raw}"`);
  const value = Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!;
  if (value < min || value > max)
    throw new ConfigError(name, `must be between ${min} and ${max} ms, got ${value} ms`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = text(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return raw;
}

/** A base URL: http(s), no query or fragment (AuthZEN's `policy_decision_point` allows neither). */
function publicBaseUrl(env: Env, name: string): string | undefined {
  const raw = url(env, name, ['https:', 'http:']);
  if (raw === undefined) return undefined;
  const parsed = new URL(raw);
  if (parsed.search !== '' || parsed.hash !== '' || raw.includes('?') || raw.includes('#')) {
    throw new ConfigError(name, 'must have no query or fragment');
  }
  return raw.replace(/\/+$/, '');
}

/** A data path as OPA's `default_decision` takes it (`/system/main` or `system/main`), kept without slashes. */
function dataPath(env: Env, name: string, fallback: string): string {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const path = raw.replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/.test(path)) {
    throw new ConfigError(name, `must be a path of segments of letters, digits and _, got "${raw}"`);
  }
  return path;
}

function flag(env: Env, name: string): boolean {
  const raw = text(env, name);
  if (raw === undefined) return false;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function resolveConsole(env: Env, embedded: boolean, oidc: boolean): ConsoleConfig {
  const tokenLogin = text(env, 'VERDICT_CONSOLE_TOKEN_LOGIN');
  return {
    tokenLogin: tokenLogin === undefined ? embedded && !oidc : flag(env, 'VERDICT_CONSOLE_TOKEN_LOGIN'),
    idleMinutes: integer(env, 'VERDICT_CONSOLE_IDLE_MINUTES', 30, 1, 24 * 60),
    absoluteHours: integer(env, 'VERDICT_CONSOLE_SESSION_HOURS', 8, 1, 7 * 24),
  };
}

function resolveGrants(env: Env): GrantsConfig {
  const webhookUrl = url(env, 'VERDICT_APPROVAL_WEBHOOK_URL', ['https:', 'http:']);
  const webhookSecret = text(env, 'VERDICT_APPROVAL_WEBHOOK_SECRET');
  if (webhookUrl !== undefined && webhookSecret === undefined) {
    throw new ConfigError('VERDICT_APPROVAL_WEBHOOK_SECRET', 'is required with VERDICT_APPROVAL_WEBHOOK_URL');
  }
  return {
    pollMs: integer(env, 'VERDICT_GRANTS_POLL_MS', DEFAULTS.grantsPollMs, 100, 600_000),
    legacyClientApprovals: flag(env, 'VERDICT_LEGACY_CLIENT_APPROVALS'),
    webhookUrl,
    webhookSecret,
  };
}

function optionalPath(cwd: string, value: string | undefined): string | undefined {
  return value === undefined ? undefined : path.resolve(cwd, value);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Validates the environment and fills in defaults. Pure: the same env gives the same Config. */
export function resolveConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const jwt = {
    secret: text(env, 'JWT_SECRET'),
    publicKey: text(env, 'JWT_PUBLIC_KEY'),
    jwksUrl: url(env, 'JWT_JWKS_URL', ['https:', 'http:']),
    issuer: text(env, 'JWT_ISSUER'),
    audience: text(env, 'JWT_AUDIENCE'),
    clockSkewSeconds: integer(env, 'JWT_CLOCK_SKEW_SECONDS', DEFAULTS.jwtClockSkewSeconds, 0, 300),
  };
  const keySources = [jwt.secret, jwt.publicKey, jwt.jwksUrl].filter((v) => v !== undefined).length;
  if (keySources > 1) {
    throw new ConfigError('JWT_SECRET', 'set only one of JWT_SECRET, JWT_PUBLIC_KEY and JWT_JWKS_URL');
  }
  if (jwt.secret !== undefined && Buffer.byteLength(jwt.secret) < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 bytes long');
  }
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const audit = {
    mode: oneOf(env, 'VERDICT_AUDIT_MODE', ['sync', 'async', 'off'] as const, DEFAULTS.auditMode),
    batchMaxRecords: integer(env, 'VERDICT_AUDIT_BATCH_MAX', DEFAULTS.auditBatchMaxRecords, 1, 10_000),
    batchMaxWaitMs: integer(env, 'VERDICT_AUDIT_BATCH_WAIT_MS', DEFAULTS.auditBatchMaxWaitMs, 0, 1_000),
    queueMaxRecords: integer(env, 'VERDICT_AUDIT_QUEUE_MAX', DEFAULTS.auditQueueMaxRecords, 1, 10_000_000),
    enqueueTimeoutMs: integer(
      env,
      'VERDICT_AUDIT_ENQUEUE_TIMEOUT_MS',
      DEFAULTS.auditEnqueueTimeoutMs,
      1,
      600_000,
    ),
    spoolMaxBytes: integer(env, 'VERDICT_AUDIT_SPOOL_MAX_BYTES', DEFAULTS.auditSpoolMaxBytes, 0, 2 ** 50),
    retentionMonths: integer(env, 'VERDICT_AUDIT_RETENTION_MONTHS', DEFAULTS.auditRetentionMonths, 1, 1200),
  };
  const workers = integer(env, 'VERDICT_WORKERS', DEFAULTS.workers, 1, 256);
  if (workers > 1 && databaseUrl === undefined && audit.mode !== 'off') {
    throw new ConfigError(
      'VERDICT_WORKERS',
      'more than one worker needs DATABASE_URL: the embedded PGlite database is single-process',
    );
  }
  // NOTE: the same condition as resolveStartupKeys: no key source and no DATABASE_URL means tokens are
  // signed with the generated development secret and the banner prints an all-scopes token, so the
  // service is not exposed beyond this machine unless HOST says so.
  const devSecret = keySources === 0 && databaseUrl === undefined;
  const oidc = resolveOidc(env);
  const bundles = resolveBundleConfig(env);
  return {
    bundles,
    port: integer(env, 'PORT', DEFAULTS.port, 0, 65_535),
    host: text(env, 'HOST') ?? (devSecret ? DEFAULTS.devHost : DEFAULTS.host),
    publicUrl: publicBaseUrl(env, 'VERDICT_PUBLIC_URL'),
    databaseUrl,
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    dataDir: path.resolve(cwd, text(env, 'VERDICT_DATA_DIR') ?? DEFAULTS.dataDir),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, DEFAULTS.logLevel),
    logFormat: oneOf(env, 'VERDICT_LOG_FORMAT', ['auto', 'json', 'pretty'] as const, DEFAULTS.logFormat),
    nodeEnv: text(env, 'NODE_ENV') ?? 'development',
    bundlePath: path.resolve(cwd, text(env, 'VERDICT_BUNDLE') ?? DEFAULTS.bundlePath),
    goBuiltinsWasm: optionalPath(cwd, text(env, 'VERDICT_GO_BUILTINS_WASM')),
    defaultEntrypoint: text(env, 'VERDICT_DEFAULT_ENTRYPOINT') ?? DEFAULTS.defaultEntrypoint,
    defaultDecision: dataPath(env, 'VERDICT_DEFAULT_DECISION', DEFAULTS.defaultDecision),
    batchLimit: integer(env, 'VERDICT_BATCH_LIMIT', DEFAULTS.batchLimit, 1, 10_000),
    bodyLimitBytes: integer(env, 'VERDICT_BODY_LIMIT_BYTES', DEFAULTS.bodyLimitBytes, 1024, 64 * 1024 * 1024),
    json: {
      maxDepth: integer(env, 'VERDICT_JSON_MAX_DEPTH', DEFAULTS.jsonMaxDepth, 2, 1_000),
      maxKeys: integer(env, 'VERDICT_JSON_MAX_KEYS', DEFAULTS.jsonMaxKeys, 1, 10_000_000),
      maxStringLength: integer(
        env,
        'VERDICT_JSON_MAX_STRING_LENGTH',
        DEFAULTS.jsonMaxStringLength,
        1,
        64 * 1024 * 1024,
      ),
    },
    workers,
    corsOrigins: (text(env, 'VERDICT_CORS_ORIGINS') ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin !== ''),
    jwt,
    oidc,
    rateLimit: {
      max: integer(env, 'VERDICT_RATE_LIMIT_MAX', DEFAULTS.rateLimitMax, 0, 100_000_000),
      windowMs: integer(env, 'VERDICT_RATE_LIMIT_WINDOW_MS', DEFAULTS.rateLimitWindowMs, 100, 86_400_000),
    },
    audit,
    shutdownTimeoutMs: integer(env, 'VERDICT_SHUTDOWN_TIMEOUT_MS', DEFAULTS.shutdownTimeoutMs, 100, 600_000),
    shutdownDrainMs: integer(env, 'VERDICT_SHUTDOWN_DRAIN_MS', DEFAULTS.shutdownDrainMs, 0, 300_000),
    checkpoint: {
      key: text(env, 'VERDICT_CHECKPOINT_KEY'),
      publicKey: text(env, 'VERDICT_CHECKPOINT_PUBLIC_KEY'),
      intervalMs: duration(
        env,
        'VERDICT_CHECKPOINT_INTERVAL',
        DEFAULTS.checkpointIntervalMs,
        100,
        86_400_000,
      ),
      file: (() => {
        const file = text(env, 'VERDICT_CHECKPOINT_FILE');
        return file === undefined ? undefined : path.resolve(cwd, file);
      })(),
      url: url(env, 'VERDICT_CHECKPOINT_URL', ['https:', 'http:']),
    },
    evidenceKey: text(env, 'VERDICT_EVIDENCE_KEY'),
    siem: {
      url: url(env, 'VERDICT_SIEM_URL', ['https:', 'http:']),
      format: oneOf(env, 'VERDICT_SIEM_FORMAT', ['ocsf', 'splunk-hec', 'ndjson'] as const, 'ocsf'),
      token: text(env, 'VERDICT_SIEM_TOKEN'),
      batchMax: integer(env, 'VERDICT_SIEM_BATCH_MAX', 500, 1, 10_000),
    },
    shed: {
      maxEventLoopDelayMs: integer(
        env,
        'VERDICT_SHED_EVENT_LOOP_DELAY_MS',
        DEFAULTS.shedMaxEventLoopDelayMs,
        0,
        600_000,
      ),
      maxHeapUsedBytes: integer(
        env,
        'VERDICT_SHED_HEAP_USED_BYTES',
        DEFAULTS.shedMaxHeapUsedBytes,
        0,
        2 ** 50,
      ),
      retryAfterSeconds: integer(
        env,
        'VERDICT_SHED_RETRY_AFTER_SECONDS',
        DEFAULTS.shedRetryAfterSeconds,
        1,
        3_600,
      ),
    },
    grants: resolveGrants(env),
    console: resolveConsole(env, devSecret, oidc !== undefined),
  };
}
