import { createPublicKey, type KeyObject } from 'node:crypto';
import { type Config, ConfigError } from '../config/resolve-config.ts';

/** The asymmetric algorithms Verdict accepts; HS256 only with a shared secret. Never `none`. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

/**
 * Where token verification keys come from. Exactly one per deployment, each with its algorithm(s)
 * pinned, so that a token can never pick how it is verified (no `alg: none`, no HS/RS confusion).
 */
export type KeySource =
  | { kind: 'secret'; secret: string; algorithms: ['HS256'] }
  | { kind: 'public-key'; pem: string; algorithms: [AsymmetricAlgorithm] }
  | { kind: 'jwks'; url: string; algorithms: AsymmetricAlgorithm[] };

/** A key source cannot be used as configured; names the variable at fault. */
export class KeySourceError extends ConfigError {
  override readonly name = 'KeySourceError';
}

/**
 * The one algorithm a public key can verify: RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA.
 * Returns null for anything else (RSA-PSS, other curves, Ed448), which Verdict refuses.
 */
export function algorithmOfKey(key: KeyObject): AsymmetricAlgorithm | null {
  if (key.type !== 'public') return null;
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 ? 'RS256' : null;
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : null;
    case 'ed25519':
      return 'EdDSA';
    default:
      return null;
  }
}

/** Builds the PEM key source, pinning its algorithm to the key's type. */
export function publicKeySource(pem: string): KeySource {
  let key: KeyObject;
  try {
    // Env files often carry the PEM with literal "\n"; accept both forms.
    key = createPublicKey(pem.includes('\\n') ? pem.replaceAll('\\n', '\n') : pem);
  } catch {
    throw new KeySourceError('JWT_PUBLIC_KEY', 'is not a PEM public key');
  }
  const algorithm = algorithmOfKey(key);
  if (!algorithm) {
    throw new KeySourceError(
      'JWT_PUBLIC_KEY',
      'must be an RSA (≥ 2048 bits), EC P-256 or Ed25519 public key (RS256, ES256 or EdDSA)',
    );
  }
  return {
    kind: 'public-key',
    pem: key.export({ type: 'spki', format: 'pem' }).toString(),
    algorithms: [algorithm],
  };
}

/** The key source the configuration names, or null when none is configured. */
export function configuredKeySource(jwt: Config['jwt']): KeySource | null {
  if (jwt.secret !== undefined) return { kind: 'secret', secret: jwt.secret, algorithms: ['HS256'] };
  if (jwt.publicKey !== undefined) return publicKeySource(jwt.publicKey);
  if (jwt.jwksUrl !== undefined)
    return { kind: 'jwks', url: jwt.jwksUrl, algorithms: [...ASYMMETRIC_ALGORITHMS] };
  return null;
}
