import { createPublicKey } from 'node:crypto';

/** The policy lifecycle's settings (issue 12). Part of Config as `config.bundles`. */
export interface BundleConfig {
  /** How often each replica polls Postgres for a new active/shadow revision. */
  pollMs: number;
  /** Not ready after failing to follow the active revision this long; 0 = off. */
  maxStaleMs: number;
  /** Uploads larger than this are refused (413). */
  maxBytes: number;
  /** A replica that has not heartbeaten for this long drops out of /v1/bundles/status. */
  replicaTimeoutMs: number;
  /** Signed-bundle verification; undefined = bundles need no signature. */
  verification:
    | { key: string; keyId: string | undefined; algorithm: string; scope: string | undefined }
    | undefined;
  /** An OPA bundle server to pull from (ETag / If-None-Match); undefined = off. */
  pull: { url: string; token: string | undefined; intervalMs: number } | undefined;
}

export const BUNDLE_DEFAULTS = {
  pollMs: 2_000,
  maxStaleMs: 0,
  maxBytes: 32 * 1024 * 1024,
  replicaTimeoutMs: 15_000,
  verificationAlgorithm: 'RS256',
  pullIntervalMs: 30_000,
} as const;

/** The JWT algorithms OPA supports for bundle signatures (src/bundles/signature.ts verifies with them). */
export const SIGNING_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

type Env = Record<string, string | undefined>;

/** A configuration error naming its variable (same shape as config/resolve-config.ts's ConfigError). */
export class BundleConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

function text(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new BundleConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max)
    throw new BundleConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** Validates the lifecycle's variables. Pure: the same env gives the same settings. */
export function resolveBundleConfig(env: Env): BundleConfig {
  // NOTE: every variable is read whether or not it matters, so that the operations-doc test (which
  // observes the names read on an empty environment) sees them all.
  const pollMs = integer(env, 'VERDICT_BUNDLE_POLL_MS', BUNDLE_DEFAULTS.pollMs, 50, 600_000);
  const key = env.VERDICT_BUNDLE_VERIFICATION_KEY?.trim() || undefined;
  const keyId = text(env, 'VERDICT_BUNDLE_VERIFICATION_KEY_ID');
  const algorithm = text(env, 'VERDICT_BUNDLE_VERIFICATION_ALG') ?? BUNDLE_DEFAULTS.verificationAlgorithm;
  const scope = text(env, 'VERDICT_BUNDLE_VERIFICATION_SCOPE');
  const url = text(env, 'VERDICT_BUNDLE_URL');
  const token = text(env, 'VERDICT_BUNDLE_URL_TOKEN');
  const intervalMs = integer(
    env,
    'VERDICT_BUNDLE_URL_POLL_MS',
    BUNDLE_DEFAULTS.pullIntervalMs,
    1_000,
    86_400_000,
  );

  if (!(SIGNING_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new BundleConfigError(
      'VERDICT_BUNDLE_VERIFICATION_ALG',
      `must be one of ${SIGNING_ALGORITHMS.join(', ')}`,
    );
  }
  let verification: BundleConfig['verification'];
  if (key !== undefined) {
    if (algorithm.startsWith('HS')) {
      if (key.startsWith('-----BEGIN')) {
        throw new BundleConfigError(
          'VERDICT_BUNDLE_VERIFICATION_KEY',
          `${algorithm} needs the shared secret, not a PEM key`,
        );
      }
    } else {
      try {
        createPublicKey(key);
      } catch {
        throw new BundleConfigError(
          'VERDICT_BUNDLE_VERIFICATION_KEY',
          `${algorithm} needs a PEM public key (-----BEGIN PUBLIC KEY-----…); set VERDICT_BUNDLE_VERIFICATION_ALG for an HMAC secret`,
        );
      }
    }
    verification = { key, keyId, algorithm, scope };
  }
  let pull: BundleConfig['pull'];
  if (url !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new BundleConfigError('VERDICT_BUNDLE_URL', 'is not a valid URL');
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new BundleConfigError('VERDICT_BUNDLE_URL', `must use https: or http:, got ${parsed.protocol}`);
    }
    pull = { url, token, intervalMs };
  }
  return {
    pollMs,
    maxStaleMs: integer(env, 'VERDICT_BUNDLE_MAX_STALE_MS', BUNDLE_DEFAULTS.maxStaleMs, 0, 86_400_000),
    maxBytes: integer(env, 'VERDICT_BUNDLE_MAX_BYTES', BUNDLE_DEFAULTS.maxBytes, 1024, 1024 * 1024 * 1024),
    replicaTimeoutMs: integer(
      env,
      'VERDICT_REPLICA_TIMEOUT_MS',
      Math.max(BUNDLE_DEFAULTS.replicaTimeoutMs, 5 * pollMs),
      1_000,
      3_600_000,
    ),
    verification,
    pull,
  };
}
