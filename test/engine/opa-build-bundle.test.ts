/**
 * Bundles are accepted as `opa build` writes them: without `--revision` the manifest's revision is
 * "" and the revision becomes the bundle's digest. Bundles that are not wasm bundles are refused
 * with a BundleError that says how to build one.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Header, Parser, type ReadEntry } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { BundleError, parseBundle } from '../../src/engine/bundle.ts';
import { buildTestApp } from '../support/app.ts';

const POLICY = `package verdict

default decision := {"allow": false, "violations": [{"control": "T-1", "message": "no", "severity": "low"}], "obligations": [], "exceptions": []}

decision := {"allow": true, "violations": [], "obligations": [], "exceptions": []} if input.action.name == "read"
`;

const dir = mkdtempSync(path.join(tmpdir(), 'verdict-opa-build-'));
writeFileSync(path.join(dir, 'policy.rego'), POLICY);

/** Runs the real OPA CLI in `dir` with the arguments given; returns the bundle's bytes. */
function opaBuild(args: string[], out: string): Buffer {
  try {
    execFileSync('opa', ['build', ...args, '-o', out, 'policy.rego'], { cwd: dir, stdio: 'pipe' });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`opa build failed (is the OPA CLI on PATH? use npm test): ${stderr}`);
  }
  return readFileSync(path.join(dir, out));
}

/** The files of a gzip'd tarball, by name. */
function unpack(bytes: Buffer): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => entries.set(entry.path.replace(/^\.?\//, ''), Buffer.concat(chunks)));
    },
  });
  parser.end(gunzipSync(bytes));
  return entries;
}

/** A gzip'd tarball of the files given (ustar headers, 512-byte blocks). */
function pack(files: Map<string, Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of files) {
    const header = Buffer.alloc(512);
    new Header({ path: name, mode: 0o644, size: content.length, type: 'File', mtime: new Date(0) }).encode(
      header,
    );
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

const standard = opaBuild(['-t', 'wasm', '-e', 'verdict/decision'], 'standard.tar.gz');
const apps: { close(): Promise<unknown> }[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
});

describe('a bundle built by `opa build -t wasm -e verdict/decision policy.rego`', () => {
  it('has an empty revision in its manifest, and Verdict takes its digest as the revision', () => {
    const manifest = JSON.parse(unpack(standard).get('.manifest')!.toString('utf8'));
    expect(manifest.revision).toBe('');
    const bundle = parseBundle(standard);
    expect(bundle.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(bundle.revision).toBe(bundle.digest);
  });

  it('serves decisions, which name the digest as their revision', async () => {
    const bundlePath = path.join(dir, 'standard.tar.gz');
    const { app, injectWithToken } = await buildTestApp({ bundlePath });
    apps.push(app);
    const digest = parseBundle(standard).digest;
    const body = (action: string) => ({
      subject: { type: 'user', id: 'u1' },
      action: { name: action },
      resource: { type: 'doc', id: 'd1' },
    });
    const allowed = await injectWithToken({ method: 'POST', url: '/v1/decisions', payload: body('read') });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.json()).toMatchObject({ allow: true, policy: { revision: digest, digest } });
    const denied = await injectWithToken({ method: 'POST', url: '/v1/decisions', payload: body('write') });
    expect(denied.json()).toMatchObject({ allow: false, violations: [{ control: 'T-1' }] });
  });

  it('keeps an explicit --revision', () => {
    const bundle = parseBundle(
      opaBuild(['-t', 'wasm', '-e', 'verdict/decision', '--revision', 'r7'], 'r7.tar.gz'),
    );
    expect(bundle.revision).toBe('r7');
  });
});

describe('bundles that are not wasm bundles', () => {
  it('a rego bundle (opa build without -t wasm) is refused: its manifest lists no wasm entrypoints', () => {
    const rego = opaBuild([], 'rego.tar.gz');
    expect(() => parseBundle(rego)).toThrow(BundleError);
    expect(() => parseBundle(rego)).toThrow(/no wasm entrypoints.*opa build -t wasm/);
  });

  it('a bundle without a .manifest is refused, saying how to build one', () => {
    const files = unpack(standard);
    files.delete('.manifest');
    expect(files.has('policy.wasm')).toBe(true);
    expect(() => parseBundle(pack(files))).toThrow(BundleError);
    expect(() => parseBundle(pack(files))).toThrow(/no \.manifest.*opa build -t wasm -e/);
  });

  it.each([
    [
      'a revision that is not a string',
      { revision: 7, wasm: [{ entrypoint: 'verdict/decision', module: '/policy.wasm' }] },
    ],
    ['a wasm entry without a module', { revision: 'r', wasm: [{ entrypoint: 'verdict/decision' }] }],
    ['a manifest that is not an object', ['x']],
  ])('a manifest with %s is refused', (_name, manifest) => {
    const files = unpack(standard);
    files.set('.manifest', Buffer.from(JSON.stringify(manifest)));
    expect(() => parseBundle(pack(files))).toThrow(BundleError);
  });
});
