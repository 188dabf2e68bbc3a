import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tar from 'tar';

/** A scratch directory for one test file. */
export function scratchDir(label: string): string {
  return mkdtempSync(path.join(tmpdir(), `verdict-${label}-`));
}

/** An asymmetric key pair as PEM files in `dir`. */
export function keyPair(dir: string, type: 'rsa' | 'ec' = 'rsa'): { privatePath: string; publicPem: string } {
  const { privateKey, publicKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privatePath = path.join(dir, `${type}-${randomBytes(4).toString('hex')}.pem`);
  writeFileSync(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return { privatePath, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A minimal decision policy: allow is `data.allow_all`, or `allow` when a rule is given. */
export function writePolicy(
  dir: string,
  options: { allow?: boolean; files?: Record<string, string>; rego?: string } = {},
): string {
  const src = path.join(dir, `src-${randomBytes(4).toString('hex')}`);
  mkdirSync(src, { recursive: true });
  writeFileSync(
    path.join(src, 'policy.rego'),
    options.rego ??
      `package verdict
import rego.v1
default allow := ${options.allow ?? true}
decision := {"allow": allow, "violations": violations, "obligations": [], "exceptions": []}
violations := [] if allow
violations := [{"control": "TEST-001", "message": "denied", "severity": "high"}] if not allow
`,
  );
  for (const [name, content] of Object.entries(options.files ?? {})) {
    mkdirSync(path.dirname(path.join(src, name)), { recursive: true });
    writeFileSync(path.join(src, name), content);
  }
  return src;
}

/**
 * Runs the real `opa build -t wasm` on `src` (bundle mode), optionally signing it, and returns the
 * tarball's path. Needs `opa` on PATH (VERDICT_TOOLS_OPA=1 source scripts/tools.sh).
 */
export function opaBuild(
  src: string,
  out: string,
  options: { entrypoints?: string[]; revision?: string; signingKey?: string; signingAlg?: string } = {},
): string {
  const args = ['build', '-b', '-t', 'wasm', '-o', out];
  for (const entrypoint of options.entrypoints ?? ['verdict/decision']) args.push('-e', entrypoint);
  if (options.revision) args.push('--revision', options.revision);
  if (options.signingKey) args.push('--signing-key', options.signingKey);
  if (options.signingAlg) args.push('--signing-alg', options.signingAlg);
  args.push(src);
  try {
    execFileSync('opa', args, { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`opa build failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
  }
  return out;
}

/** Unpacks a bundle into a fresh directory and returns it. */
export function unpack(bundle: string, dir: string): string {
  const out = path.join(dir, `unpacked-${randomBytes(4).toString('hex')}`);
  mkdirSync(out, { recursive: true });
  tar.x({ file: bundle, cwd: out, sync: true });
  return out;
}

/** Packs a directory's files (names relative to it) into a gzip'd tarball and returns its bytes. */
export function pack(dir: string, files: string[]): Buffer {
  const out = path.join(tmpdir(), `verdict-pack-${randomBytes(6).toString('hex')}.tar.gz`);
  tar.c({ gzip: true, file: out, cwd: dir, sync: true, portable: true }, files);
  return readFileSync(out);
}

/** The files under `dir`, as paths relative to it. */
export function filesIn(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}
