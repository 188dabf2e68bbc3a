import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { mergeDataFiles } from './bundle-data.ts';

/** The `.manifest` of an OPA bundle, as far as Verdict reads it. */
export interface BundleManifest {
  /** Optional, as in OPA: `opa build` without `--revision` writes `""`. */
  revision?: string;
  roots?: string[];
  wasm?: { entrypoint: string; module: string }[];
  metadata?: Record<string, unknown>;
}

/** A parsed OPA wasm bundle: what the engine needs to evaluate it, and what replay needs to store. */
export interface ParsedBundle {
  /** `sha256:<hex>` of the tarball bytes: the identity of a policy revision. */
  digest: string;
  manifest: BundleManifest;
  /** The manifest's revision, or the digest when the manifest names none (as `opa build` writes it). */
  revision: string;
  wasm: Uint8Array<ArrayBuffer>;
  /** The bundle's merged data documents (data.json files at their directory paths). */
  data: Record<string, unknown>;
  bytes: Buffer;
}

/** The stable code of a refused bundle (the `code` of the API's 400 problem). */
export type BundleErrorCode =
  | 'bundle_invalid'
  | 'bundle_not_wasm'
  | 'bundle_signature_invalid'
  | 'bundle_missing_entrypoint'
  | 'bundle_unsupported_builtin';

/** Why a bundle was refused (an invalid request); the message is safe to show to the uploader. */
export class BundleError extends Error {
  override name = 'BundleError';
  readonly kind = 'invalid';
  readonly code: BundleErrorCode;
  constructor(message: string, code: BundleErrorCode = 'bundle_invalid') {
    super(message);
    this.code = code;
  }
}

const MAX_ENTRY_BYTES = 64 * 1024 * 1024;

/** A bundle never unpacks to more than this: a small gzip that inflates to gigabytes is refused. */
export const MAX_UNPACKED_BYTES = 256 * 1024 * 1024;

/** The tar bytes of a bundle (gzip'd or plain). Throws BundleError on a bad or oversized stream. */
export function gunzipBundle(bytes: Buffer): Buffer {
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  try {
    return gunzipSync(bytes, { maxOutputLength: MAX_UNPACKED_BYTES });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new BundleError(`the bundle unpacks to more than ${MAX_UNPACKED_BYTES} bytes`);
    }
    throw new BundleError('bundle is not a valid gzip stream');
  }
}

/** The regular files of a tar archive (names without a leading `./` or `/`). Throws BundleError. */
export function readEntries(tarball: Buffer): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  let failure: unknown;
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const name = entry.path.replace(/^\.?\//, '');
      if (entry.type !== 'File' || entry.size > MAX_ENTRY_BYTES) {
        entry.resume();
        return;
      }
      const chunks: Buffer[] = [];
      entry.on('data', (chunk: Buffer) => chunks.push(chunk));
      entry.on('end', () => entries.set(name, Buffer.concat(chunks)));
    },
  });
  parser.on('error', (err) => {
    failure = err;
  });
  parser.on('warn', (_code, message) => {
    failure = new BundleError(`invalid tar archive: ${message}`);
  });
  // NOTE: the tar Parser processes a Buffer synchronously when it is written in one piece and ended.
  parser.end(tarball);
  if (failure) throw failure instanceof BundleError ? failure : new BundleError('invalid tar archive');
  return entries;
}

/** Parses an OPA wasm bundle tarball (gzip'd or plain). Throws BundleError when it is not one. */
export function parseBundle(bytes: Buffer): ParsedBundle {
  const tarball = gunzipBundle(bytes);
  const entries = readEntries(tarball);
  const manifestBytes = entries.get('.manifest');
  if (!manifestBytes) {
    throw new BundleError('bundle has no .manifest (build it with opa build -t wasm -e <entrypoint>)');
  }
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    throw new BundleError('.manifest is not valid JSON');
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) {
    throw new BundleError('.manifest is not a JSON object');
  }
  // NOTE: OPA treats the revision as optional and `opa build` without `--revision` writes "". Such a
  // bundle is accepted as OPA writes it; its revision is then its digest, which names it exactly.
  if (manifest.revision !== undefined && typeof manifest.revision !== 'string') {
    throw new BundleError('.manifest revision must be a string');
  }
  const modules = manifest.wasm;
  if (!Array.isArray(modules) || modules.length === 0) {
    throw new BundleError(
      '.manifest lists no wasm entrypoints: this is not a wasm bundle (build it with opa build -t wasm -e <entrypoint>)',
      'bundle_not_wasm',
    );
  }
  const module = modules[0]?.module;
  if (typeof module !== 'string' || module === '') {
    throw new BundleError('.manifest wasm entry has no module');
  }
  const wasmPath = module.replace(/^\//, '');
  const wasm = entries.get(wasmPath);
  if (!wasm) {
    throw new BundleError(
      `bundle has no ${wasmPath}: Verdict evaluates wasm bundles, build it with opa build -t wasm -e <entrypoint>`,
      'bundle_not_wasm',
    );
  }
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const data = mergeDataFiles(entries);
  return {
    digest,
    manifest,
    revision: manifest.revision || digest,
    wasm: new Uint8Array(
      wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength) as ArrayBuffer,
    ),
    data,
    bytes,
  };
}
