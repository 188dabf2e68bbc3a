/**
 * Hostile bundle bytes never crash the checks: random bytes, random gzip'd bytes, real tarballs
 * with random files and manifests, and a real bundle with random bytes flipped either parse or are
 * refused with a BundleError (a stable code), never another exception. Signature verification
 * behaves the same on them.
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { verifyBundleBytes } from '../../src/bundles/signature.ts';
import { BundleError, parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

const CODES = ['bundle_invalid', 'bundle_not_wasm', 'bundle_signature_invalid', 'bundle_missing_entrypoint'];

/** Parses and compiles; returns the refusal code, or 'ok'. Any other exception fails the property. */
function check(bytes: Buffer): string {
  try {
    PolicyEngine.fromBundle(parseBundle(bytes));
    return 'ok';
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    expect(CODES).toContain(err.code);
    return err.code;
  }
}

function verify(bytes: Buffer): void {
  try {
    verifyBundleBytes(bytes, {
      key: 'a-secret-for-the-fuzz-test',
      keyId: undefined,
      algorithm: 'HS256',
      scope: undefined,
    });
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
  }
}

/** A POSIX tar with the given files (512-byte headers), enough for the bundle reader. */
function tarOf(files: { name: string; content: Buffer }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const file of files) {
    const header = Buffer.alloc(512);
    header.write(file.name.slice(0, 99), 0, 'utf8');
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${file.content.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, file.content, Buffer.alloc((512 - (file.content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const real = readFileSync(DEFAULT_BUNDLE);
const fileName = fc.oneof(
  fc.constantFrom(
    '.manifest',
    'policy.wasm',
    'data.json',
    'a/data.json',
    'a/b/data.yaml',
    '.signatures.json',
    'x.rego',
  ),
  fc.string({ minLength: 1, maxLength: 40 }),
);
const content = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.json().map((j) => Buffer.from(j)),
  fc
    .record({ revision: fc.oneof(fc.string(), fc.integer()), wasm: fc.anything() })
    .map((m) => Buffer.from(JSON.stringify(m))),
);

describe('hostile bundle bytes', () => {
  it("random bytes, gzip'd or not, are refused with a stable code", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), (bytes, gzip) => {
        const buffer = gzip ? gzipSync(Buffer.from(bytes)) : Buffer.from(bytes);
        expect(check(buffer)).not.toBe('ok');
        verify(buffer);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('tarballs of random files and manifests never throw anything but a BundleError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ name: fileName, content }), { maxLength: 6 }),
        fc.boolean(),
        (files, gzip) => {
          const tar = tarOf(files);
          const buffer = gzip ? gzipSync(tar) : tar;
          check(buffer);
          verify(buffer);
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });

  it('a real bundle with bytes flipped either still works or is refused, never crashes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(real.length - 1), byte: fc.nat(255) }), {
          minLength: 1,
          maxLength: 4,
        }),
        (flips) => {
          const mutated = Buffer.from(real);
          for (const { at, byte } of flips) mutated[at] = byte;
          check(mutated);
          verify(mutated);
        },
      ),
      { numRuns: 150, seed: 13 },
    );
  });
});
