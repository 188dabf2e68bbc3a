/**
 * Test support for the evidence suites: `verdict evidence verify` run in-process, and an evidence
 * package unpacked, tampered with and packed again (re-signed, as a packager holding the evidence
 * key but not the checkpoint key could).
 */
import crypto from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { create } from 'tar';
import { runCli } from '../../src/cli/verdict.ts';
import { readEntries } from '../../src/engine/bundle.ts';
import { type EvidenceManifest, MANIFEST_SIGNATURE_PREFIX } from '../../src/evidence/package.ts';

/** The one `verdict` CLI (src/cli/verdict.ts) in this process, stdout and stderr captured together. */
export async function runVerdictCli(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runCli(argv, {
    env: {},
    stdout: (text) => {
      out += text;
    },
    stderr: (text) => {
      out += text;
    },
    fetch: globalThis.fetch,
    readFile: async (file) => readFileSync(file),
  });
  return { code, out };
}

/** A package's files by path, to read or tamper with. */
export function unpackEvidence(bytes: Buffer): Map<string, Buffer> {
  return readEntries(zlib.gunzipSync(bytes));
}

/**
 * Packs files again. With `resign`, `edit` changes the manifest, its file hashes are updated and it
 * is signed again with that Ed25519 private key (PEM).
 */
export function packEvidence(
  files: Map<string, Buffer>,
  resign?: { key: string; edit?: (manifest: EvidenceManifest) => void },
): Buffer {
  if (resign) {
    const manifest = JSON.parse(files.get('manifest.json')!.toString()) as EvidenceManifest;
    resign.edit?.(manifest);
    manifest.files = manifest.files.map((f) => {
      const bytes = files.get(f.path)!;
      return { ...f, sha256: crypto.hash('sha256', bytes, 'hex'), bytes: bytes.length };
    });
    const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    const signature = crypto
      .sign(
        null,
        Buffer.concat([Buffer.from(MANIFEST_SIGNATURE_PREFIX), manifestBytes]),
        crypto.createPrivateKey(resign.key),
      )
      .toString('base64url');
    const sig = JSON.parse(files.get('manifest.sig')!.toString());
    files.set('manifest.json', manifestBytes);
    files.set('manifest.sig', Buffer.from(`${JSON.stringify({ ...sig, signature })}\n`));
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-evidence-pack-'));
  for (const [name, bytes] of files) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), bytes);
  }
  create({ gzip: true, cwd: dir, portable: true, sync: true, file: path.join(dir, 'out.tar.gz') }, [
    ...files.keys(),
  ]);
  return readFileSync(path.join(dir, 'out.tar.gz'));
}
