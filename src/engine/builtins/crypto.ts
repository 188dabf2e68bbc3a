/**
 * OPA's digest, HMAC, hex and JWT builtins on node:crypto, with OPA's (topdown/crypto.go,
 * topdown/tokens.go, topdown/encoding.go) argument handling and errors.
 */
import {
  createHash,
  createHmac,
  createPublicKey,
  createSecretKey,
  type KeyObject,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { parseValue } from '../rego-value.ts';
import { base64UrlDecode, bytesOf, goString } from './encoding.ts';
import { fail, type HostBuiltin, str } from './types.ts';

const digest = (algorithm: string) => (args: unknown[]) =>
  createHash(algorithm)
    .update(bytesOf(str(args[0])))
    .digest('hex');

// NOTE: an HMAC keyed by a KeyObject costs a tenth of one keyed by bytes (node:crypto imports the
// key on every call); a policy uses few keys, so the last ones are kept.
const secretKeys = new Map<string, KeyObject>();

function secretKey(secret: string): KeyObject {
  let key = secretKeys.get(secret);
  if (!key) {
    if (secretKeys.size >= 64) secretKeys.delete(secretKeys.keys().next().value!);
    key = createSecretKey(bytesOf(secret));
    secretKeys.set(secret, key);
  }
  return key;
}

const hmac = (algorithm: string) => (args: unknown[]) =>
  createHmac(algorithm, secretKey(str(args[1], 'key')))
    .update(bytesOf(str(args[0])))
    .digest('hex');

/** A JWT's three sections, as OPA's `decodeJWT` splits them. */
function sections(token: unknown): { header: string; payload: string; signature: string } {
  const text = str(token);
  if (!text.includes('.')) fail('encoded JWT had no period separators');
  const parts = text.split('.');
  if (parts.length !== 3) fail(`encoded JWT must have 3 sections, found ${parts.length}`);
  return { header: parts[0]!, payload: parts[1]!, signature: parts[2]! };
}

/** A decoded JSON object (Go's json.Unmarshal: the last duplicate key wins, as JSON.parse does). */
function jsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseValue(goString(bytes), { sets: false, exactIntegers: true });
    JSON.parse(goString(bytes)); // the value parser is lenient about sets; JSON is not
  } catch {
    fail(`${what}: invalid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('decoded JSON type is not an Object');
  return value as Record<string, unknown>;
}

/** OPA's io.jwt.decode: [header, payload, signature as hex]; a nested JWT (cty "JWT") is opened. */
function decode(token: unknown): [Record<string, unknown>, Record<string, unknown>, string] {
  let parts = sections(token);
  for (;;) {
    const header = jsonObject(base64UrlDecode(parts.header), 'JWT header');
    if (header.enc !== undefined) fail('JWT is a JWE object, which is not supported');
    const payloadBytes = base64UrlDecode(parts.payload);
    if (header.cty === 'JWT') {
      parts = sections(goString(payloadBytes));
      continue;
    }
    const payload = jsonObject(payloadBytes, 'JWT payload');
    const signature = base64UrlDecode(parts.signature).toString('hex');
    return [header, payload, signature];
  }
}

function verifyHmac(algorithm: string): HostBuiltin {
  return ([token, secret]) => {
    const key = str(secret, 'secret');
    const parts = sections(token);
    const signature = base64UrlDecode(parts.signature);
    const mac = createHmac(algorithm, secretKey(key)).update(`${parts.header}.${parts.payload}`).digest();
    return signature.length === mac.length && timingSafeEqual(signature, mac);
  };
}

/**
 * The public keys of OPA's `certificate` argument: a PEM certificate or public key, or a JWK or JWK
 * set (JSON). OPA reads nothing else (a private key is not a certificate), nor does Verdict.
 */
function publicKeys(certificate: unknown): KeyObject[] {
  const text = str(certificate, 'certificate');
  try {
    if (text.startsWith('-----BEGIN')) {
      const label = /^-----BEGIN ([A-Z ]+)-----/.exec(text)?.[1];
      if (label !== 'CERTIFICATE' && label !== 'PUBLIC KEY')
        fail(`failed to extract a Key from the PEM certificate`);
      return [createPublicKey(text)];
    }
    const jwk = JSON.parse(text) as { keys?: unknown[] };
    const keys = Array.isArray(jwk.keys) ? jwk.keys : [jwk];
    return keys.map((key) =>
      createPublicKey({ key: key as import('node:crypto').JsonWebKey, format: 'jwk' }),
    );
  } catch (err) {
    if (err instanceof Error && err.name === 'BuiltinError') throw err;
    fail('failed to parse a JWK key (set)');
  }
}

type SignatureCheck = (data: Buffer, signature: Buffer, key: KeyObject) => boolean;

function verifyWithKey(check: SignatureCheck): HostBuiltin {
  return ([token, certificate]) => {
    const parts = sections(token);
    const keys = publicKeys(certificate);
    const signature = base64UrlDecode(parts.signature);
    const data = Buffer.from(`${parts.header}.${parts.payload}`);
    return keys.some((key) => {
      try {
        return check(data, signature, key);
      } catch {
        return false;
      }
    });
  };
}

const rsa =
  (hash: string): SignatureCheck =>
  (data, signature, key) =>
    key.asymmetricKeyType === 'rsa' && verify(hash, data, key, signature);

const pss =
  (hash: string): SignatureCheck =>
  (data, signature, key) =>
    (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') &&
    verify(hash, data, { key, padding: 6, saltLength: -2 }, signature); // RSA_PKCS1_PSS_PADDING, salt auto

const ecdsa =
  (hash: string): SignatureCheck =>
  (data, signature, key) =>
    key.asymmetricKeyType === 'ec' && verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);

/** The digest, HMAC, hex and JWT builtins. */
export const CRYPTO_BUILTINS: Record<string, HostBuiltin> = {
  'crypto.md5': digest('md5'),
  'crypto.sha1': digest('sha1'),
  'crypto.sha256': digest('sha256'),
  'crypto.hmac.md5': hmac('md5'),
  'crypto.hmac.sha1': hmac('sha1'),
  'crypto.hmac.sha256': hmac('sha256'),
  'crypto.hmac.sha512': hmac('sha512'),
  // Go's hmac.Equal compares the two strings' bytes in constant time.
  'crypto.hmac.equal': ([a, b]) => {
    const x = bytesOf(str(a));
    const y = bytesOf(str(b));
    return x.length === y.length && timingSafeEqual(x, y);
  },
  'hex.encode': ([x]) => bytesOf(str(x)).toString('hex'),
  'hex.decode': ([x]) => {
    const text = str(x);
    // Go's hex.DecodeString: an odd length or a non-hex byte is an error.
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) fail(`encoding/hex: invalid byte in ${JSON.stringify(text)}`);
    return goString(Buffer.from(text, 'hex'));
  },
  'base64url.encode_no_pad': ([x]) => bytesOf(str(x)).toString('base64url'),
  'io.jwt.decode': ([token]) => decode(token),
  'io.jwt.verify_hs256': verifyHmac('sha256'),
  'io.jwt.verify_hs384': verifyHmac('sha384'),
  'io.jwt.verify_hs512': verifyHmac('sha512'),
  'io.jwt.verify_rs256': verifyWithKey(rsa('sha256')),
  'io.jwt.verify_rs384': verifyWithKey(rsa('sha384')),
  'io.jwt.verify_rs512': verifyWithKey(rsa('sha512')),
  'io.jwt.verify_ps256': verifyWithKey(pss('sha256')),
  'io.jwt.verify_ps384': verifyWithKey(pss('sha384')),
  'io.jwt.verify_ps512': verifyWithKey(pss('sha512')),
  'io.jwt.verify_es256': verifyWithKey(ecdsa('sha256')),
  'io.jwt.verify_es384': verifyWithKey(ecdsa('sha384')),
  'io.jwt.verify_es512': verifyWithKey(ecdsa('sha512')),
  'io.jwt.verify_eddsa': verifyWithKey(
    (data, signature, key) => key.asymmetricKeyType === 'ed25519' && verify(null, data, key, signature),
  ),
};
