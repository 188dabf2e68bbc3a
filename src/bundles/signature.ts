import { createVerifier } from 'fast-jwt';
import type { SIGNING_ALGORITHMS } from '../config/bundles.ts';
import { BundleError, gunzipBundle, readEntries } from '../engine/bundle.ts';
import { isObject } from '../json/values.ts';
import { opaFileHash } from './opa-file-hash.ts';

/** The file OPA's signing writes into a bundle. */
export const SIGNATURES_FILE = '.signatures.json';

/**
 * How signed bundles are verified; the counterpart of OPA's `keys` + bundle `signing` config.
 * From VERDICT_BUNDLE_VERIFICATION_KEY (+ _KEY_ID, _ALG, _SCOPE).
 */
export interface BundleVerificationConfig {
  /** A PEM public key (RSA, ECDSA, Ed25519) or, for HS256/384/512, the shared secret. */
  key: string;
  /**
   * The key's name. As in OPA, a configured key id is the one used; when none is configured, the
   * token's `kid` header (or its deprecated `keyid` claim) names the key, and Verdict's one key
   * must carry that name (default `default`, what `opa build --signing-key` writes).
   */
  keyId: string | undefined;
  /** The JWT algorithm, default RS256 (OPA's default). */
  algorithm: string;
  /** When set, the token's `scope` claim must equal it; when unset, the token must carry none. */
  scope: string | undefined;
}

/** The default key name: what `opa build` / `opa sign` put in `kid` without --signing-key-id. */
export const DEFAULT_KEY_ID = 'default';

/** What a verified signature says. */
export interface VerifiedSignature {
  keyId: string;
  /** The files the signature covers (all of the bundle's files but .signatures.json). */
  files: string[];
}

interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

function refuse(message: string): never {
  throw new BundleError(`bundle signature: ${message}`, 'bundle_signature_invalid');
}

function normalise(name: string): string {
  return name.replace(/^\.?\//, '');
}

function decodeJson(part: string | undefined): Record<string, unknown> | null {
  if (part === undefined) return null;
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
}

function signedFiles(payload: Record<string, unknown>): Map<string, SignedFile> {
  if (!Array.isArray(payload.files)) refuse('the token lists no files');
  const files = new Map<string, SignedFile>();
  for (const file of payload.files as unknown[]) {
    const { name, hash, algorithm } = (file ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || typeof hash !== 'string' || typeof algorithm !== 'string') {
      refuse('a file entry lacks its name, hash or algorithm');
    }
    files.set(normalise(name), { name: normalise(name), hash: hash.toLowerCase(), algorithm });
  }
  return files;
}

/**
 * Verifies a bundle's `.signatures.json` as OPA does: exactly one JWT, signed by the configured key
 * with the configured algorithm, with the configured scope; then every file of the bundle (but the
 * signatures file) must be listed with a matching hash, and every listed file must be present.
 * Throws BundleError(`bundle_signature_invalid`) saying which check failed. `entries` are the
 * tarball's files, as `readEntries` returns them.
 */
export function verifyBundleSignature(
  entries: Map<string, Buffer>,
  config: BundleVerificationConfig,
): VerifiedSignature {
  const raw = entries.get(SIGNATURES_FILE);
  if (!raw) refuse(`the bundle is not signed (no ${SIGNATURES_FILE}) and a verification key is configured`);
  let signatures: unknown;
  try {
    signatures = JSON.parse(raw.toString('utf8')).signatures;
  } catch {
    refuse(`${SIGNATURES_FILE} is not valid JSON`);
  }
  if (!Array.isArray(signatures) || signatures.length === 0) refuse(`${SIGNATURES_FILE} holds no token`);
  if (signatures.length > 1) refuse(`${SIGNATURES_FILE} holds several tokens (expected exactly one)`);
  const token = signatures[0];
  if (typeof token !== 'string') refuse('the token is not a string');
  const [headerPart, payloadPart] = token.split('.');
  const header = decodeJson(headerPart);
  const claims = decodeJson(payloadPart);
  if (!header || !claims) refuse('the token is not a JWT');

  const tokenKeyId =
    typeof header.kid === 'string' && header.kid !== ''
      ? header.kid
      : typeof claims.keyid === 'string'
        ? claims.keyid
        : '';
  const keyId = config.keyId ?? (tokenKeyId === '' ? DEFAULT_KEY_ID : tokenKeyId);
  const knownKeyId = config.keyId ?? DEFAULT_KEY_ID;
  if (keyId !== knownKeyId) refuse(`the token names key "${keyId}", the configured key is "${knownKeyId}"`);

  let payload: Record<string, unknown>;
  try {
    const verify = createVerifier({
      key: config.key,
      algorithms: [config.algorithm as (typeof SIGNING_ALGORITHMS)[number]],
      // Signature tokens carry no expiry; OPA checks only the signature, key id and scope.
      ignoreExpiration: true,
      ignoreNotBefore: true,
    });
    payload = verify(token) as Record<string, unknown>;
  } catch (err) {
    refuse(
      `the signature does not verify with the configured ${config.algorithm} key (${(err as Error).message})`,
    );
  }
  const scope = typeof payload.scope === 'string' ? payload.scope : '';
  if (scope !== (config.scope ?? ''))
    refuse(`scope mismatch (token "${scope}", expected "${config.scope ?? ''}")`);

  const listed = signedFiles(payload);
  const covered: string[] = [];
  for (const [name, content] of entries) {
    if (name === SIGNATURES_FILE) continue;
    const file = listed.get(name);
    if (!file) refuse(`${name} is in the bundle but not listed in the signature`);
    let hash: string;
    try {
      hash = opaFileHash(name, content, file.algorithm);
    } catch (err) {
      refuse(`${name}: ${(err as Error).message}`);
    }
    if (hash !== file.hash) refuse(`${name} does not match its signed hash (${file.algorithm})`);
    listed.delete(name);
    covered.push(name);
  }
  if (listed.size > 0)
    refuse(`listed in the signature but absent from the bundle: ${[...listed.keys()].join(', ')}`);
  return { keyId, files: covered.sort() };
}

/** Verifies the signature of a bundle tarball (gzip'd or plain); see verifyBundleSignature. */
export function verifyBundleBytes(tarball: Buffer, config: BundleVerificationConfig): VerifiedSignature {
  return verifyBundleSignature(readEntries(gunzipBundle(tarball)), config);
}

/** True when the bundle carries a `.signatures.json` (whether or not it verifies). */
export function hasSignatureFile(tarball: Buffer): boolean {
  return readEntries(gunzipBundle(tarball)).has(SIGNATURES_FILE);
}
