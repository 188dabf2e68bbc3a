/**
 * Builds policies/ into the committed default OPA wasm bundle, policies/bundle/bundle.tar.gz.
 *
 *   node scripts/build-policies.ts           build (and regenerate policies/capabilities.json)
 *   node scripts/build-policies.ts --check   fail if the committed bundle or capabilities are stale
 *
 * Needs the pinned OPA CLI on PATH (`npm run policies:build` / `policies:check` arrange that).
 * See docs/decisions/0002-policy-bundle.md for the layout, revision derivation and checks.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadPolicy } from '@open-policy-agent/opa-wasm';
import { VERDICT_BUILTINS } from '../src/engine/builtins.ts';
import { readEntries } from '../src/engine/bundle.ts';

const root = path.resolve(import.meta.dirname, '..');
const policiesDir = path.join(root, 'policies');
const bundlePath = path.join(policiesDir, 'bundle', 'bundle.tar.gz');
// Not a *.json directly under policies/: OPA's loader would merge it into the data root.
const capabilitiesPath = path.join(policiesDir, 'bundle', 'capabilities.json');
const rel = (p: string) => path.relative(root, p);

export const ENTRYPOINTS = [
  'verdict/decision',
  'verdict/allow',
  'verdict/tool/decision',
  'verdict/release/decision',
  'verdict/data/decision',
  'system/log/mask',
];

/**
 * Bundle roots: the policy packages (data.verdict.*, data.system.log.*), the data document and the
 * AuthZEN entity catalog derived from it (data.authzen.catalog, see entityCatalog).
 */
export const ROOTS = ['verdict', 'verdict_data', 'system/log', 'authzen'];

/**
 * The AuthZEN entity catalog of the built-in policies (docs/api.md, "Entity catalog"), derived from
 * their own data so that it cannot drift from it: the registered agents as `agent` subjects, the
 * known tools as `tool` resources, and `tool.call` as the action on a tool. Properties stay empty:
 * the policy reads an agent's or a tool's registration from `verdict_data` by id.
 */
export function entityCatalog(data: {
  verdict_data?: { agents?: Record<string, unknown>; tools?: Record<string, unknown> };
}): { authzen: { catalog: Record<string, unknown> } } {
  const ids = (o: Record<string, unknown> | undefined) =>
    Object.fromEntries(
      Object.keys(o ?? {})
        .sort()
        .map((id) => [id, {}]),
    );
  return {
    authzen: {
      catalog: {
        subjects: { agent: ids(data.verdict_data?.agents) },
        resources: { tool: ids(data.verdict_data?.tools) },
        actions: { tool: ['tool.call'] },
      },
    },
  };
}

/**
 * Builtins that OPA's wasm compiler implements natively, copied from `builtinsFunctions` in
 * internal/compiler/wasm/wasm.go of OPA v1.22.3 (plus eq/assign, which the planner compiles away).
 * Re-check this list when .opa-version changes.
 */
// biome-ignore format: a dense list is easier to diff against wasm.go
const WASM_NATIVE_BUILTINS = [
  'eq', 'assign', 'plus', 'minus', 'mul', 'div', 'abs', 'round', 'ceil', 'floor', 'rem',
  'array.concat', 'array.flatten', 'array.reverse', 'array.slice', 'minus', 'and', 'or',
  'intersection', 'union', 'is_number', 'is_string', 'is_boolean', 'is_array', 'is_set', 'is_object',
  'is_null', 'type_name', 'bits.or', 'bits.and', 'bits.negate', 'bits.xor', 'bits.lsh', 'bits.rsh',
  'count', 'sum', 'product', 'max', 'min', 'sort', 'all', 'any', 'base64.is_valid', 'base64.decode',
  'base64.encode', 'base64url.encode', 'base64url.decode', 'net.cidr_contains', 'net.cidr_overlap',
  'net.cidr_intersects', 'equal', 'gt', 'gte', 'lt', 'lte', 'neq', 'glob.match', 'json.marshal',
  'json.unmarshal', 'json.is_valid', 'object.filter', 'object.get', 'object.keys', 'object.remove',
  'object.union', 'object.union_n', 'concat', 'format_int', 'indexof', 'substring', 'lower', 'upper',
  'contains', 'startswith', 'endswith', 'strings.reverse', 'split', 'replace', 'strings.replace_n',
  'trim', 'trim_left', 'trim_prefix', 'trim_right', 'trim_suffix', 'trim_space',
  'internal.template_string', 'numbers.range', 'to_number', 'walk', 'graph.reachable', 'regex.is_valid',
  'regex.match', 're_match', 'regex.find_all_string_submatch_n', 'json.remove', 'json.filter',
  'internal.member_2', 'internal.member_3',
];

/** Builtins implemented in JavaScript: the npm SDK's (read from the installed package) and Verdict's. */
function sdkBuiltins(): string[] {
  const require = createRequire(import.meta.url);
  const sdkSrc = path.dirname(require.resolve('@open-policy-agent/opa-wasm')); // .../src/index.cjs
  const impls = require(path.join(sdkSrc, 'builtins/index.js')) as Record<string, unknown>;
  // Verdict's own JS builtins (src/engine/builtins.ts) are handed to the SDK next to its own.
  return [...Object.keys(impls), ...Object.keys(VERDICT_BUILTINS)].sort();
}

function step(message: string): void {
  console.log(`policies: ${message}`);
}

function fail(message: string): never {
  console.error(`policies: ERROR: ${message}`);
  process.exit(1);
}

function opa(args: string[], cwd = root): string {
  try {
    return execFileSync('opa', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') fail('the OPA CLI is not on PATH (run through `npm run policies:build`)');
    fail(`opa ${args.join(' ')} failed:\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** Policy sources that go into the bundle: *.rego except *_test.rego, plus data.json; sorted. */
function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const relPath = path.relative(policiesDir, full).split(path.sep).join('/');
      if (entry.isDirectory()) {
        if (relPath === 'bundle') continue;
        walk(full);
      } else if (entry.name.endsWith('.rego') && !entry.name.endsWith('_test.rego')) {
        out.push(relPath);
      } else if (entry.name === 'data.json') {
        out.push(relPath);
      }
    }
  };
  walk(policiesDir);
  return out.sort();
}

/**
 * Revision: "sha256:" + the first 16 hex of SHA-256 over the OPA version, the entrypoints, the
 * roots and every source file (path NUL content NUL, in sorted path order). The same sources
 * always give the same revision; any change to what is compiled gives a new one.
 */
function revisionOf(files: string[], opaVersion: string): string {
  const hash = createHash('sha256');
  hash.update(`opa ${opaVersion}\0entrypoints ${ENTRYPOINTS.join(',')}\0roots ${ROOTS.join(',')}\0`);
  for (const file of files) {
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(path.join(policiesDir, file)))
      .update('\0');
  }
  return `sha256:${hash.digest('hex').slice(0, 16)}`;
}

/** Capabilities limited to what the wasm target plus the SDK can actually run. */
function capabilities(sdk: string[]): string {
  const current = JSON.parse(opa(['capabilities', '--current'])) as {
    builtins: { name: string }[];
    [key: string]: unknown;
  };
  const allowed = new Set([...WASM_NATIVE_BUILTINS, ...sdk]);
  const builtins = current.builtins
    .filter((b) => allowed.has(b.name))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const known = new Set(current.builtins.map((b) => b.name));
  const missing = [...allowed].filter((name) => !known.has(name) && name !== 'assign');
  if (missing.length > 0) fail(`builtins expected in OPA capabilities but absent: ${missing.join(', ')}`);
  return `${JSON.stringify({ ...current, builtins }, null, 2)}\n`;
}

type Contents = Map<string, Buffer>;

/** The bundle's files, named as in the tarball with a leading slash ("/policy.wasm"). */
function unpack(tarball: Buffer): Contents {
  return new Map([...readEntries(gunzipSync(tarball))].map(([name, content]) => [`/${name}`, content]));
}

interface Manifest {
  revision?: string;
  roots?: string[];
  wasm?: { entrypoint: string; module: string }[];
}

function manifestOf(contents: Contents): Manifest {
  const raw = contents.get('/.manifest');
  if (!raw) fail('bundle has no /.manifest');
  return JSON.parse(raw.toString('utf8')) as Manifest;
}

/** Canonical JSON (sorted keys) for content comparison independent of formatting. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function compare(a: Contents, b: Contents): string[] {
  const diffs: string[] = [];
  const json = (c: Contents, name: string) => {
    const raw = c.get(name);
    return raw ? canonical(JSON.parse(raw.toString('utf8'))) : undefined;
  };
  if (json(a, '/.manifest') !== json(b, '/.manifest')) diffs.push('/.manifest');
  if (json(a, '/data.json') !== json(b, '/data.json')) diffs.push('/data.json');
  const wa = a.get('/policy.wasm');
  const wb = b.get('/policy.wasm');
  if (!wa || !wb || !wa.equals(wb)) diffs.push('/policy.wasm');
  return diffs;
}

function build(outFile: string, files: string[], revision: string, capsFile: string): Contents {
  // The wasm embeds source file names (for error locations), so build from a staging copy named
  // `policies/` with a relative path: the output then does not depend on the temp directory.
  const tmp = mkdtempSync(path.join(tmpdir(), 'verdict-policies-'));
  const staging = path.join(tmp, 'policies');
  try {
    for (const file of files) {
      mkdirSync(path.dirname(path.join(staging, file)), { recursive: true });
      copyFileSync(path.join(policiesDir, file), path.join(staging, file));
    }
    writeFileSync(path.join(staging, '.manifest'), JSON.stringify({ roots: ROOTS }));
    const data = JSON.parse(readFileSync(path.join(policiesDir, 'data.json'), 'utf8'));
    mkdirSync(path.join(staging, 'authzen'));
    writeFileSync(path.join(staging, 'authzen', 'data.json'), JSON.stringify(entityCatalog(data).authzen));
    const args = [
      'build',
      '-t',
      'wasm',
      '-b',
      'policies',
      '--capabilities',
      capsFile,
      '--revision',
      revision,
    ];
    for (const entrypoint of ENTRYPOINTS) args.push('-e', entrypoint);
    args.push('-o', outFile);
    opa(args, tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return unpack(readFileSync(outFile));
}

function readWasmBuiltins(policy: Awaited<ReturnType<typeof loadPolicy>>): string[] {
  const exports = (policy.wasmInstance as WebAssembly.Instance).exports as Record<string, CallableFunction>;
  const addr = exports.builtins() as number;
  const strAddr = exports.opa_json_dump(addr) as number;
  const bytes = new Uint8Array(policy.mem.buffer);
  let end = strAddr;
  while (bytes[end] !== 0) end++;
  const map = JSON.parse(Buffer.from(bytes.subarray(strAddr, end)).toString('utf8')) as Record<
    string,
    number
  >;
  return Object.keys(map).sort();
}

async function verify(contents: Contents, revision: string, sdk: string[]): Promise<void> {
  for (const name of ['/.manifest', '/policy.wasm', '/data.json']) {
    if (!contents.has(name)) fail(`bundle lacks ${name}`);
  }
  const manifest = manifestOf(contents);
  if (manifest.revision !== revision) fail(`manifest revision ${manifest.revision} != ${revision}`);
  if (canonical(manifest.roots) !== canonical(ROOTS))
    fail(`manifest roots ${JSON.stringify(manifest.roots)}`);
  const wasm = contents.get('/policy.wasm')!;
  const policy = await loadPolicy(new Uint8Array(wasm), { initial: 5, maximum: 1024 }, VERDICT_BUILTINS);
  const imported = readWasmBuiltins(policy);
  const unsupported = imported.filter((name) => !sdk.includes(name));
  if (unsupported.length > 0) {
    fail(`policy.wasm imports builtins the npm SDK does not implement: ${unsupported.join(', ')}`);
  }
  step(
    `wasm imports ${imported.length ? imported.join(', ') : 'no'} JS builtins (all implemented by the SDK)`,
  );
  const missing = ENTRYPOINTS.filter((e) => !(e in (policy.entrypoints as Record<string, number>)));
  if (missing.length > 0) fail(`policy.wasm lacks entrypoints: ${missing.join(', ')}`);
  policy.setData(JSON.parse(contents.get('/data.json')!.toString('utf8')));
  const result = policy.evaluate({ action: { name: 'no.such.action' } }, 'verdict/decision') as {
    result: { allow: boolean; violations: { control: string }[] };
  }[];
  const decision = result[0]?.result;
  const denied = decision?.allow === false && decision.violations.some((v) => v.control === 'DEFAULT-DENY');
  if (!denied) {
    fail(`smoke evaluation of verdict/decision returned ${JSON.stringify(result)}`);
  }
  step('smoke evaluation: an unknown action is denied with DEFAULT-DENY');
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const expectedOpa = readFileSync(path.join(root, '.opa-version'), 'utf8').trim().replace(/^v/, '');
  const version = /^Version: (.+)$/m.exec(opa(['version']))?.[1];
  if (version !== expectedOpa) fail(`OPA CLI is ${version}, .opa-version pins ${expectedOpa}`);
  step(`OPA ${version}`);

  const files = sourceFiles();
  step(`${files.length} source files (tests excluded): ${files.join(' ')}`);
  // `opa test policies/` also loads policies/bundle/bundle.tar.gz (OPA's loader reads any .tar.gz
  // as a bundle), so every module is seen twice; package METADATA annotations then collide.
  const annotated = files.filter((f) =>
    /^# METADATA\s*$/m.test(readFileSync(path.join(policiesDir, f), 'utf8')),
  );
  if (annotated.length > 0) fail(`use plain comments, not METADATA annotations, in: ${annotated.join(', ')}`);
  step('opa check --strict');
  opa(['check', '--strict', 'policies/']);

  const sdk = sdkBuiltins();
  const caps = capabilities(sdk);
  const revision = revisionOf(files, expectedOpa);
  step(`revision ${revision}`);

  const work = mkdtempSync(path.join(tmpdir(), 'verdict-build-'));
  try {
    const capsFile = path.join(work, 'capabilities.json');
    writeFileSync(capsFile, caps);
    step(`capabilities: ${JSON.parse(caps).builtins.length} builtins (wasm-native + SDK: ${sdk.join(', ')})`);

    step('opa build -t wasm (first run)');
    const first = build(path.join(work, 'a.tar.gz'), files, revision, capsFile);
    step('opa build -t wasm (second run, determinism check)');
    const second = build(path.join(work, 'b.tar.gz'), files, revision, capsFile);
    const nondeterministic = compare(first, second);
    if (nondeterministic.length > 0)
      fail(`opa build is not deterministic: ${nondeterministic.join(', ')} differ`);
    step('two builds have identical .manifest, policy.wasm and data.json');

    await verify(first, revision, sdk);

    if (check) {
      let committedCaps = '';
      try {
        committedCaps = readFileSync(capabilitiesPath, 'utf8');
      } catch {}
      if (committedCaps !== caps) {
        fail(`${rel(capabilitiesPath)} is stale: run npm run policies:build`);
      }
      let committed: Contents;
      try {
        committed = unpack(readFileSync(bundlePath));
      } catch {
        fail(`${rel(bundlePath)} is missing or unreadable: run npm run policies:build`);
      }
      const diffs = compare(committed, first);
      if (diffs.length > 0) {
        const was = manifestOf(committed).revision;
        fail(
          `${rel(bundlePath)} is stale: run npm run policies:build (differs in ${diffs.join(', ')}; revision ${was} vs ${revision})`,
        );
      }
      step(`${rel(bundlePath)} is up to date (revision ${revision})`);
    } else {
      writeFileSync(capabilitiesPath, caps);
      step(`wrote ${rel(capabilitiesPath)}`);
      mkdirSync(path.dirname(bundlePath), { recursive: true });
      copyFileSync(path.join(work, 'a.tar.gz'), bundlePath);
      step(`wrote ${rel(bundlePath)} (revision ${revision})`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
