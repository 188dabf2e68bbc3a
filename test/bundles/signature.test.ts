/**
 * Signed bundles made by the real OPA CLI (`opa build --signing-key`) verify; unsigned, wrongly
 * signed, tampered, padded and truncated bundles are refused with `bundle_signature_invalid` and a
 * reason. The per-file hash follows OPA's structured-document rule (checked against OPA's own).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opaFileHash } from '../../src/bundles/opa-file-hash.ts';
import {
  type BundleVerificationConfig,
  hasSignatureFile,
  verifyBundleBytes,
} from '../../src/bundles/signature.ts';
import { BundleError } from '../../src/engine/bundle.ts';
import {
  filesIn,
  keyPair,
  opaBuild,
  pack,
  scratchDir,
  unpack,
  writePolicy,
} from '../support/signed-bundle.ts';

let dir: string;
let rsa: { privatePath: string; publicPem: string };
let other: { privatePath: string; publicPem: string };
let src: string;
let signed: string;

const rsaConfig = (): BundleVerificationConfig => ({
  key: rsa.publicPem,
  keyId: undefined,
  algorithm: 'RS256',
  scope: undefined,
});

function refusal(run: () => unknown): BundleError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(BundleError);
    expect((err as BundleError).code).toBe('bundle_signature_invalid');
    return err as BundleError;
  }
  throw new Error('expected the bundle to be refused');
}

beforeAll(() => {
  dir = scratchDir('signature');
  rsa = keyPair(dir, 'rsa');
  other = keyPair(dir, 'rsa');
  src = writePolicy(dir, {
    files: {
      'data.json': '{"b": 1.0, "a": {"x": "<&>\\u2028"}, "n": 1e3, "é": [true, null]}',
      'nested/deeper/data.yaml': 'k: v\nlist: [1, 2]\n',
    },
  });
  signed = opaBuild(src, path.join(dir, 'signed.tar.gz'), { signingKey: rsa.privatePath });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bundles signed by opa build --signing-key', () => {
  it('verifies an RS256 signature and lists the files it covers', () => {
    const verified = verifyBundleBytes(readFileSync(signed), rsaConfig());
    expect(verified.keyId).toBe('default');
    expect(verified.files).toContain('policy.wasm');
    expect(verified.files).toContain('.manifest');
    expect(verified.files).toContain('data.json');
    expect(hasSignatureFile(readFileSync(signed))).toBe(true);
  });

  it('verifies an HS256 (shared secret) signature, and refuses the wrong secret', () => {
    const secret = 'a-shared-secret-of-enough-length-for-hs256';
    const bundle = opaBuild(src, path.join(dir, 'hmac.tar.gz'), { signingKey: secret, signingAlg: 'HS256' });
    const config = { key: secret, keyId: undefined, algorithm: 'HS256', scope: undefined };
    expect(verifyBundleBytes(readFileSync(bundle), config).files).toContain('policy.wasm');
    const err = refusal(() => verifyBundleBytes(readFileSync(bundle), { ...config, key: `${secret}-not` }));
    expect(err.message).toMatch(/does not verify/);
  });

  it('verifies an ES256 signature', () => {
    const ec = keyPair(dir, 'ec');
    const bundle = opaBuild(src, path.join(dir, 'ec.tar.gz'), {
      signingKey: ec.privatePath,
      signingAlg: 'ES256',
    });
    const config = { key: ec.publicPem, keyId: undefined, algorithm: 'ES256', scope: undefined };
    expect(verifyBundleBytes(readFileSync(bundle), config).files).toContain('.manifest');
  });

  it('refuses an unsigned bundle when a key is configured', () => {
    const unsigned = opaBuild(src, path.join(dir, 'unsigned.tar.gz'));
    expect(hasSignatureFile(readFileSync(unsigned))).toBe(false);
    const err = refusal(() => verifyBundleBytes(readFileSync(unsigned), rsaConfig()));
    expect(err.message).toMatch(/not signed/);
  });

  it('refuses a bundle signed with another key', () => {
    const bundle = opaBuild(src, path.join(dir, 'other.tar.gz'), { signingKey: other.privatePath });
    const err = refusal(() => verifyBundleBytes(readFileSync(bundle), rsaConfig()));
    expect(err.message).toMatch(/does not verify with the configured RS256 key/);
  });

  it('refuses the right key with the wrong algorithm configured', () => {
    refusal(() => verifyBundleBytes(readFileSync(signed), { ...rsaConfig(), algorithm: 'RS512' }));
  });

  it('refuses a scope mismatch and a key id the configuration does not know', () => {
    expect(
      refusal(() => verifyBundleBytes(readFileSync(signed), { ...rsaConfig(), scope: 'write' })).message,
    ).toMatch(/scope mismatch/);
    // A configured key id is used as OPA uses it: the token's `kid` does not override it.
    expect(verifyBundleBytes(readFileSync(signed), { ...rsaConfig(), keyId: 'prod' }).keyId).toBe('prod');
  });

  it('refuses a file whose content changed after signing', () => {
    const tree = unpack(signed, dir);
    const files = filesIn(tree);
    // A semantically equal data.json (whitespace) still verifies: OPA hashes the parsed value.
    const text = readFileSync(path.join(tree, 'data.json'), 'utf8');
    writeFileSync(path.join(tree, 'data.json'), text.replaceAll('{', '{\n  ').replaceAll('}', '\n}'));
    expect(verifyBundleBytes(pack(tree, files), rsaConfig()).files).toContain('data.json');
    const data = JSON.parse(text);
    data.b = 2;
    writeFileSync(path.join(tree, 'data.json'), JSON.stringify(data));
    expect(refusal(() => verifyBundleBytes(pack(tree, files), rsaConfig())).message).toMatch(
      /data.json does not match its signed hash/,
    );
  });

  it('refuses a file that is not listed in the signature', () => {
    const tree = unpack(signed, dir);
    const files = filesIn(tree);
    writeFileSync(path.join(tree, 'smuggled.json'), '{"x": 1}');
    expect(
      refusal(() => verifyBundleBytes(pack(tree, [...files, 'smuggled.json']), rsaConfig())).message,
    ).toMatch(/smuggled.json is in the bundle but not listed/);
  });

  it('refuses a bundle missing a file the signature lists', () => {
    const tree = unpack(signed, dir);
    const files = filesIn(tree).filter((file) => file !== 'data.json');
    expect(refusal(() => verifyBundleBytes(pack(tree, files), rsaConfig())).message).toMatch(
      /listed in the signature but absent from the bundle: data.json/,
    );
  });

  it('refuses a signatures file with several tokens or none', () => {
    const tree = unpack(signed, dir);
    const files = filesIn(tree);
    const sig = JSON.parse(readFileSync(path.join(tree, '.signatures.json'), 'utf8'));
    writeFileSync(
      path.join(tree, '.signatures.json'),
      JSON.stringify({ signatures: [sig.signatures[0], sig.signatures[0]] }),
    );
    expect(refusal(() => verifyBundleBytes(pack(tree, files), rsaConfig())).message).toMatch(
      /several tokens/,
    );
    writeFileSync(path.join(tree, '.signatures.json'), JSON.stringify({ signatures: [] }));
    expect(refusal(() => verifyBundleBytes(pack(tree, files), rsaConfig())).message).toMatch(/no token/);
  });
});

describe("OPA's file hash", () => {
  it('hashes structured documents by their parsed value, with number literals kept', () => {
    const a = opaFileHash('x/data.json', Buffer.from('{"b":1.0,"a":[1e3]}'), 'SHA-256');
    const b = opaFileHash('x/data.json', Buffer.from('{ "a": [1e3], "b": 1.0 }'), 'SHA-256');
    const c = opaFileHash('x/data.json', Buffer.from('{"a":[1000],"b":1}'), 'SHA-256');
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    // Other files are hashed as bytes.
    expect(opaFileHash('p.rego', Buffer.from('{"a":1}'), 'SHA-256')).not.toBe(
      opaFileHash('p.rego', Buffer.from('{ "a": 1 }'), 'SHA-256'),
    );
    expect(() => opaFileHash('p.rego', Buffer.from(''), 'CRC32')).toThrow(/unsupported/);
  });
});
