/**
 * OPA's digest, HMAC, hex and JWT builtins on node:crypto, with OPA's (topdown/crypto.go,
 * topdown/tokens.go, topdown/encoding.go) argument handling and errors.
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  type KeyObject,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { parseValue } from '../rego-value.ts';
import { base64UrlDecode, bytesOf, goString } from './encoding.ts';
import { goJson } from './misc.ts';
import { decisionNow } from './time.ts';
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

// The JWS algorithms OPA's io.jwt builtins know: RSA, RSA-PSS, ECDSA and HMAC at each SHA-2 size, and EdDSA.
const TOKEN_ALGORITHMS = new Set([
  ...['RS', 'PS', 'ES', 'HS'].flatMap((family) => ['256', '384', '512'].map((bits) => family + bits)),
  'EdDSA',
]);

// RFC 7518's algorithm names (signatures, key management, content encryption).
const JWA_ALGORITHMS = new Set([
  ...TOKEN_ALGORITHMS,
  'none',
  'Ed25519',
  'ES256K',
  'RSA1_5',
  'RSA-OAEP',
  'RSA-OAEP-256',
  'RSA-OAEP-384',
  'RSA-OAEP-512',
  'A128KW',
  'A192KW',
  'A256KW',
  'dir',
  'ECDH-ES',
  'ECDH-ES+A128KW',
  'ECDH-ES+A192KW',
  'ECDH-ES+A256KW',
  'A128GCMKW',
  'A192GCMKW',
  'A256GCMKW',
  'PBES2-HS256+A128KW',
  'PBES2-HS384+A192KW',
  'PBES2-HS512+A256KW',
  'A128CBC-HS256',
  'A192CBC-HS384',
  'A256CBC-HS512',
  'A128GCM',
  'A192GCM',
  'A256GCM',
]);

/** A verification key of decode_verify's `cert`: the key and, from a JWK, its alg and kid. */
interface VerificationKey {
  key: KeyObject;
  alg: string;
  kid: string;
}

/** OPA's parseKeysFromCertOrJWK: a PEM certificate or public key, or a JWK (set). */
function verificationKeys(certificate: string): VerificationKey[] {
  if (certificate.startsWith('-----BEGIN'))
    return publicKeys(certificate).map((key) => ({ key, alg: '', kid: '' }));
  let parsed: { keys?: unknown[] };
  try {
    parsed = JSON.parse(certificate);
  } catch {
    fail('failed to parse a JWK key (set)');
  }
  const jwks = Array.isArray(parsed.keys) ? parsed.keys : [parsed];
  const out: VerificationKey[] = [];
  for (const jwk of jwks as Record<string, unknown>[]) {
    const alg = typeof jwk.alg === 'string' ? jwk.alg : '';
    // The JWK parser (lestrrat-go/jwx) refuses an "alg" that is no JWA algorithm; OPA then skips
    // the keys whose algorithm is not a signature algorithm it verifies.
    if (alg !== '' && !JWA_ALGORITHMS.has(alg)) fail('failed to parse a JWK key (set)');
    if (alg !== '' && !TOKEN_ALGORITHMS.has(alg)) continue;
    let key: KeyObject;
    try {
      key =
        jwk.kty === 'oct'
          ? createSecretKey(Buffer.from(String(jwk.k), 'base64url'))
          : createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    } catch {
      fail('failed to parse a JWK key (set)');
    }
    out.push({ key, alg, kid: typeof jwk.kid === 'string' ? jwk.kid : '' });
  }
  return out;
}

/** jwsbb.Verify: the JWS algorithm `alg` over `data` with `key` (a secret for HS*). */
function verifyJws(key: KeyObject, alg: string, data: Buffer, signature: Buffer): boolean {
  try {
    const bits = alg.slice(2);
    switch (alg.slice(0, 2)) {
      case 'HS': {
        if (key.type !== 'secret' || !['256', '384', '512'].includes(bits)) return false;
        const mac = createHmac(`sha${bits}`, key).update(data).digest();
        return mac.length === signature.length && timingSafeEqual(mac, signature);
      }
      case 'RS':
        return ['256', '384', '512'].includes(bits) && rsa(`sha${bits}`)(data, signature, key);
      case 'PS':
        return ['256', '384', '512'].includes(bits) && pss(`sha${bits}`)(data, signature, key);
      case 'ES':
        return ['256', '384', '512'].includes(bits) && ecdsa(`sha${bits}`)(data, signature, key);
    }
    return alg === 'EdDSA' && key.asymmetricKeyType === 'ed25519' && verify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** What decode_verify reads of a token's header (OPA's parseTokenHeader + valid()). */
function tokenHeader(header: Record<string, unknown>): {
  alg: string;
  kid: string;
  cty: string;
  valid: boolean;
} {
  const fields = { alg: '', kid: '', typ: '', cty: '' };
  let crit: Set<string> | undefined;
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(header)) {
    if (k === 'alg' || k === 'kid' || k === 'typ' || k === 'cty') {
      if (typeof v !== 'string') fail(`${k}: must be a string`);
      fields[k] = v;
    } else if (k === 'crit') {
      if (!Array.isArray(v)) fail('crit: must be a list');
      crit = new Set();
      // OPA stops at the first element that is not a string, and ignores that error.
      for (const e of v) {
        if (typeof e !== 'string') break;
        crit.add(e);
      }
      if (crit.size === 0) fail('crit: must be a nonempty list');
    } else unknown.push(k);
  }
  const valid = fields.alg !== '' && !unknown.some((u) => crit?.has(u));
  return { alg: fields.alg, kid: fields.kid, cty: fields.cty, valid };
}

/**
 * OPA's io.jwt.decode_verify (topdown/tokens.go builtinJWTDecodeVerify): [valid, header, payload];
 * `[false, {}, {}]` when the signature or a constraint fails, an error when the token or the
 * constraints are malformed. Without a `time` constraint the instant is the decision's (`now`).
 */
function decodeVerify(token: unknown, constraintsArg: unknown, now: () => bigint): unknown {
  if (typeof constraintsArg !== 'object' || constraintsArg === null || Array.isArray(constraintsArg)) {
    fail('operand 2 must be an object');
  }
  const unverified = [false, {}, {}];
  let keys: VerificationKey[] | undefined;
  const c = { secret: '', alg: '', iss: '', aud: '' };
  let time = -1;
  for (const [name, value] of Object.entries(constraintsArg as Record<string, unknown>)) {
    if (name === 'cert') {
      if (typeof value !== 'string') fail('cert constraint: must be a string');
      keys = verificationKeys(value);
    } else if (name === 'secret' || name === 'alg' || name === 'iss' || name === 'aud') {
      if (typeof value !== 'string') fail(`${name} constraint: must be a string`);
      c[name] = value;
    } else if (name === 'time') {
      if (typeof value !== 'number' && typeof value !== 'bigint')
        fail('token time constraint: must be a number');
      time = Number(value);
      if (time < 0) fail('token time constraint: must not be negative');
    } else fail(`unknown token validation constraint: ${name}`);
  }
  if (time === -1) time = Number(now());
  const keyCount = (keys !== undefined ? 1 : 0) + (c.secret !== '' ? 1 : 0);
  if (keyCount > 1) fail('duplicate key constraints');
  if (keyCount < 1) fail('no key constraint');
  let current = token;
  let header: Record<string, unknown>;
  let payloadBytes: Buffer;
  for (;;) {
    const parts = sections(current);
    header = jsonObject(base64UrlDecode(parts.header), 'JWT header');
    if (header.enc !== undefined) fail('JWT is a JWE object, which is not supported');
    const h = tokenHeader(header);
    if (!h.valid) return unverified;
    if (c.alg !== '' && c.alg !== h.alg) return unverified;
    const signature = base64UrlDecode(parts.signature);
    const data = Buffer.from(`${parts.header}.${parts.payload}`);
    let verified: boolean;
    if (keys !== undefined) {
      const byKid = h.kid !== '' ? keys.find((k) => k.kid === h.kid) : undefined;
      verified = byKid
        ? verifyJws(byKid.key, h.alg, data, signature)
        : keys.some((k) => (k.alg === '' || k.alg === h.alg) && verifyJws(k.key, h.alg, data, signature));
    } else verified = verifyJws(secretKey(c.secret), h.alg, data, signature);
    if (!verified) return unverified;
    payloadBytes = base64UrlDecode(parts.payload);
    if (h.cty.toLowerCase() === 'jwt') {
      current = goString(payloadBytes);
      continue;
    }
    break;
  }
  const payload = jsonObject(payloadBytes, 'JWT payload');
  if (c.iss !== '' && payload.iss !== c.iss) return unverified;
  if (payload.aud !== undefined) {
    const aud = payload.aud;
    const ok = typeof aud === 'string' ? aud === c.aud : Array.isArray(aud) && aud.some((a) => a === c.aud);
    if (!ok) return unverified;
  } else if (c.aud !== '') return unverified;
  const seconds = time / 1e9;
  for (const [claim, expired] of [
    ['exp', (v: number) => seconds >= v],
    ['nbf', (v: number) => seconds < v],
  ] as const) {
    const v = payload[claim];
    if (v === undefined) continue;
    if (typeof v !== 'number' && typeof v !== 'bigint') fail(`${claim} value must be a number`);
    if (expired(Number(v))) return unverified;
  }
  return [true, header!, payload];
}

/**
 * OPA's io.jwt.encode_sign(_raw) (commonBuiltinJWTEncodeSign): the first key of a JWK (set) signs
 * `base64url(header).base64url(payload)` with the header's `alg`. HS*, RS* and EdDSA signatures are
 * deterministic; ES* and PS* draw randomness, which a replay could not reproduce: Verdict makes them
 * a builtin error rather than an answer that changes on replay.
 */
function encodeSign(headerBytes: Buffer, payloadBytes: Buffer, jwkText: string): string {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(jwkText);
  } catch {
    fail('failed to parse the JWK (set)');
  }
  const jwks = Array.isArray(parsed.keys) ? (parsed.keys as Record<string, unknown>[]) : [parsed];
  if (jwks.length === 0) fail('no keys found in JWK set');
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(goString(headerBytes));
  } catch {
    fail("missing or invalid 'alg' header");
  }
  const alg = header?.alg;
  if (typeof alg !== 'string') fail("missing or invalid 'alg' header");
  if (!TOKEN_ALGORITHMS.has(alg)) fail(`unknown JWS algorithm: ${alg}`);
  const typ = header.typ;
  if (typeof typ !== 'string' || typ === 'JWT') {
    try {
      JSON.parse(goString(payloadBytes));
    } catch {
      fail('type is JWT but payload is not JSON');
    }
  }
  if (alg.startsWith('ES') || alg.startsWith('PS')) {
    fail(`io.jwt.encode_sign: ${alg} signatures are random, so not replayable; use HS*, RS* or EdDSA`);
  }
  const data = `${headerBytes.toString('base64url')}.${payloadBytes.toString('base64url')}`;
  const jwk = jwks[0]!;
  let signature: Buffer;
  try {
    if (alg.startsWith('HS')) {
      if (jwk.kty !== 'oct') fail('the key is not a symmetric key');
      signature = createHmac(`sha${alg.slice(2)}`, Buffer.from(String(jwk.k), 'base64url'))
        .update(data)
        .digest();
    } else {
      const key = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
      if (key.asymmetricKeyType !== (alg === 'EdDSA' ? 'ed25519' : 'rsa')) fail(`the key cannot sign ${alg}`);
      signature = sign(alg === 'EdDSA' ? null : `sha${alg.slice(2)}`, Buffer.from(data), key);
    }
  } catch (err) {
    if (err instanceof Error && err.name === 'BuiltinError') throw err;
    fail(`failed to sign: ${(err as Error).message}`);
  }
  return `${data}.${signature.toString('base64url')}`;
}

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
  'io.jwt.encode_sign': ([header, payload, key]) =>
    encodeSign(Buffer.from(goJson(header)), Buffer.from(goJson(payload)), goJson(key)),
  'io.jwt.encode_sign_raw': ([header, payload, key]) =>
    encodeSign(
      Buffer.from(str(header, 'operand 1')),
      Buffer.from(str(payload, 'operand 2')),
      str(key, 'operand 3'),
    ),
  'io.jwt.decode_verify': ([token, constraints], context) =>
    decodeVerify(token, constraints, () => decisionNow(context)),
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
