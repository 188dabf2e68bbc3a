/**
 * The builtins whose answers are Go structures marshalled by Go — x509 certificates, keys and
 * requests, GraphQL and Rego syntax trees, JSON Schema errors, `text/template` output, `net/url`
 * parts — are answered by OPA's own Go implementation, compiled to WebAssembly from `builtins-go/`
 * (ADR 0022). The module is a build output: `scripts/tools.sh` builds it into
 * `.tools/go-builtins/<OPA version>-<source hash>/` (or VERDICT_GO_BUILTINS_WASM names it), and it is
 * loaded on the first bundle that imports one of these builtins, never otherwise. It runs with no
 * file, environment or network access: its WASI imports are answered here, and every one that
 * would reach the host fails.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { decisionNow } from './builtins/time.ts';
import { BuiltinError, type EvaluationContext, type HostBuiltin } from './builtins/types.ts';
import { parseValue, valueText as valueTextOf } from './rego-value.ts';

/** The builtins answered by OPA's Go implementation, sorted. */
export const GO_BUILTINS: readonly string[] = [
  'crypto.parse_private_keys',
  'crypto.x509.parse_and_verify_certificates',
  'crypto.x509.parse_and_verify_certificates_with_options',
  'crypto.x509.parse_certificate_request',
  'crypto.x509.parse_certificates',
  'crypto.x509.parse_keypair',
  'crypto.x509.parse_rsa_private_key',
  'graphql.is_valid',
  'graphql.parse',
  'graphql.parse_and_verify',
  'graphql.parse_query',
  'graphql.parse_schema',
  'graphql.schema_is_valid',
  'json.match_schema',
  'json.verify_schema',
  'regex.globs_match',
  'rego.parse_module',
  'strings.render_template',
  'uri.is_valid',
  'uri.parse',
];

const ROOT = path.resolve(import.meta.dirname, '../..');
const SOURCE_FILES = ['go.mod', 'go.sum', 'main.go'];

/** The command that builds the module (what scripts/test.sh and .ci/run do). */
export const GO_BUILTINS_BUILD_COMMAND = 'VERDICT_TOOLS_OPA=1 source scripts/tools.sh';

/**
 * Where scripts/tools.sh puts the module: keyed by the pinned OPA version and a digest of the Go
 * sources, so that a changed source or OPA version is never answered by a stale build. The same
 * key is computed there (`sha256sum` of the version line and the files, in this order).
 */
export function defaultGoBuiltinsPath(root: string = ROOT): string | undefined {
  const dir = path.join(root, 'builtins-go');
  if (!existsSync(path.join(dir, 'main.go'))) return undefined;
  const opaVersion = readFileSync(path.join(root, '.opa-version'), 'utf8').trim();
  const hash = createHash('sha256').update(`${opaVersion}\n`);
  for (const file of SOURCE_FILES) hash.update(readFileSync(path.join(dir, file)));
  const key = `${opaVersion}-${hash.digest('hex').slice(0, 16)}`;
  return path.join(root, '.tools', 'go-builtins', key, 'verdict-builtins.wasm');
}

let configuredPath: string | undefined;
let loaded: GoBuiltinsModule | undefined;
let loadError: string | undefined;

/**
 * Names the module file (VERDICT_GO_BUILTINS_WASM, set by src/create-verdict.ts); undefined: the
 * build of scripts/tools.sh in this checkout. Forgets a module loaded from another path.
 */
export function useGoBuiltinsModule(file: string | undefined): void {
  if (file === configuredPath) return;
  configuredPath = file;
  loaded = undefined;
  loadError = undefined;
}

/**
 * The loaded module, loading it on first use; a string saying why it cannot be loaded (the
 * refusal's reason) otherwise.
 */
export function goBuiltinsModule(): GoBuiltinsModule | string {
  if (loaded) return loaded;
  if (loadError !== undefined) return loadError;
  const file = configuredPath ?? defaultGoBuiltinsPath();
  // NOTE: not remembered: a module built while the server runs is found by the next upload.
  if (file === undefined || !existsSync(file)) {
    return `needs OPA's Go builtins module, which is not built${file ? ` (${file})` : ''}: run \`${GO_BUILTINS_BUILD_COMMAND}\` (or set VERDICT_GO_BUILTINS_WASM to a built verdict-builtins.wasm)`;
  }
  try {
    loaded = new GoBuiltinsModule(new WebAssembly.Module(readFileSync(file)));
  } catch (err) {
    loadError = `OPA's Go builtins module at ${file} cannot be loaded: ${(err as Error).message}`;
    return loadError;
  }
  return loaded;
}

/** True when `names` include a builtin of this module (so that it must be loaded). */
export function needsGoBuiltins(names: readonly string[]): boolean {
  return names.some((name) => GO_BUILTINS.includes(name));
}

type GoExports = {
  memory: WebAssembly.Memory;
  _initialize(): void;
  verdict_input(size: number): number;
  verdict_call(size: number): number;
  verdict_output(): number;
};

// WASI errno values (wasi_snapshot_preview1).
const SUCCESS = 0;
const EBADF = 8;
const ENOTCAPABLE = 76;
const CLOCK_REALTIME = 0;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * One instance of the module. Calls are synchronous; the Go runtime keeps its heap between them.
 * The realtime clock the Go code reads is the decision's `now` for x509 chain verification without
 * a `CurrentTime` (as `time.now_ns` answers, so that a replay gives the same answer), the Unix epoch
 * for every other call.
 */
export class GoBuiltinsModule {
  private readonly exports: GoExports;
  /** What the realtime clock reads during the current call (see `callText`). */
  private now = 0n;
  /** Milliseconds the instantiation (Go runtime start and OPA's package init) took. */
  readonly startMillis: number;

  constructor(module: WebAssembly.Module) {
    const started = performance.now();
    let memory: WebAssembly.Memory | undefined;
    const view = () => new DataView(memory!.buffer);
    const none = () => EBADF;
    const wasi: Record<string, (...args: never[]) => number> = {
      args_sizes_get: (countPtr: number, sizePtr: number) => {
        view().setUint32(countPtr, 0, true);
        view().setUint32(sizePtr, 0, true);
        return SUCCESS;
      },
      args_get: () => SUCCESS,
      environ_sizes_get: (countPtr: number, sizePtr: number) => {
        view().setUint32(countPtr, 0, true);
        view().setUint32(sizePtr, 0, true);
        return SUCCESS;
      },
      environ_get: () => SUCCESS,
      clock_time_get: (id: number, _precision: bigint, timePtr: number) => {
        view().setBigUint64(timePtr, id === CLOCK_REALTIME ? this.now : process.hrtime.bigint(), true);
        return SUCCESS;
      },
      random_get: (ptr: number, length: number) => {
        randomFillSync(new Uint8Array(memory!.buffer, ptr, length));
        return SUCCESS;
      },
      // Output (Go's own panic text, never the builtins') is counted as written and dropped.
      fd_write: (_fd: number, iovs: number, count: number, writtenPtr: number) => {
        let total = 0;
        for (let i = 0; i < count; i++) total += view().getUint32(iovs + i * 8 + 4, true);
        view().setUint32(writtenPtr, total, true);
        return SUCCESS;
      },
      poll_oneoff: (_in: number, _out: number, _count: number, eventsPtr: number) => {
        view().setUint32(eventsPtr, 0, true);
        return SUCCESS;
      },
      sched_yield: () => SUCCESS,
      proc_exit: (code: number) => {
        throw new Error(`OPA's Go builtins module exited (${code})`);
      },
      fd_read: none,
      fd_close: none,
      fd_seek: none,
      fd_readdir: none,
      fd_filestat_get: none,
      fd_fdstat_get: none,
      fd_fdstat_set_flags: none,
      fd_prestat_get: none,
      fd_prestat_dir_name: none,
      path_open: () => ENOTCAPABLE,
      path_filestat_get: () => ENOTCAPABLE,
      path_readlink: () => ENOTCAPABLE,
    };
    const imports = WebAssembly.Module.imports(module);
    const foreign = imports.filter(
      (i) => i.module !== 'wasi_snapshot_preview1' || !Object.hasOwn(wasi, i.name),
    );
    if (foreign.length > 0) {
      throw new Error(
        `it imports what Verdict does not grant: ${foreign.map((i) => `${i.module}.${i.name}`).join(', ')}`,
      );
    }
    const instance = new WebAssembly.Instance(module, { wasi_snapshot_preview1: wasi });
    this.exports = instance.exports as unknown as GoExports;
    memory = this.exports.memory;
    this.exports._initialize();
    this.startMillis = performance.now() - started;
  }

  /**
   * Calls builtin `name` on operands in OPA's value format; the Go code's realtime clock reads `now`
   * (nanoseconds since the Unix epoch). Returns the result in that format, or undefined; throws
   * BuiltinError for the builtin's error (undefined in OPA's non-strict evaluation) and Error for
   * one that halts evaluation.
   */
  callText(name: string, operands: string[], now = 0n): string | undefined {
    const request = encoder.encode(`{"name":${JSON.stringify(name)},"args":[${operands.join(',')}]}`);
    const x = this.exports;
    this.now = now;
    let reply: string;
    try {
      const at = x.verdict_input(request.byteLength);
      new Uint8Array(x.memory.buffer, at, request.byteLength).set(request);
      const length = x.verdict_call(request.byteLength);
      reply = decoder.decode(new Uint8Array(x.memory.buffer, x.verdict_output(), length));
    } catch (err) {
      // A trap leaves the Go runtime in an unknown state: the next call starts a fresh instance.
      if (loaded === this) loaded = undefined;
      throw new Error(`${name}: OPA's Go builtins module failed: ${(err as Error).message}`);
    } finally {
      this.now = 0n;
    }
    switch (reply[0]) {
      case 'v':
        return reply.slice(1);
      case 'u':
        return undefined;
      case 'e':
        throw new BuiltinError(reply.slice(1));
      default:
        throw new Error(`${name}: ${reply.slice(1)}`);
    }
  }
}

/**
 * The decision time a call verifies at, for the builtins whose answer depends on the clock: x509
 * chain verification (Go's `x509.Verify` at `time.Now()`), unless the options give `CurrentTime`.
 * Other builtins get the Unix epoch: the Go runtime reads the clock for itself (its collector), but
 * their answers never depend on it (the differential test runs them at the wall clock in OPA).
 * `options` is the second operand in OPA's value format (read only for `…_with_options`).
 */
function decisionTime(name: string, options: () => unknown, context: EvaluationContext): bigint {
  if (name === 'crypto.x509.parse_and_verify_certificates_with_options') {
    const value = options();
    const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
    if (!isObject || Object.hasOwn(value, 'CurrentTime')) return 0n;
  } else if (name !== 'crypto.x509.parse_and_verify_certificates') return 0n;
  try {
    return decisionNow(context);
  } catch (err) {
    throw new Error(
      `${name} verifies at the decision time: ${(err as Error).message.replace(/^time\.now_ns: /, '')}`,
    );
  }
}

function loadedModule(name: string): GoBuiltinsModule {
  const module = goBuiltinsModule();
  if (typeof module === 'string') throw new Error(`${name} ${module}`);
  return module;
}

/**
 * A host builtin that calls the module (loaded by the engine before any evaluation). The engine
 * calls `valueText`, with the module's own dumps of the operands; the plain form serves callers
 * that hold JavaScript values (the npm SDK's calling convention, tests).
 */
function goBuiltin(name: string): HostBuiltin {
  const valueText = (operands: string[], context: EvaluationContext) =>
    loadedModule(name).callText(
      name,
      operands,
      decisionTime(
        name,
        () => parseValue(operands[1] ?? 'null', { sets: true, exactIntegers: true }),
        context,
      ),
    );
  const impl = (args: unknown[], context: EvaluationContext) => {
    const text = valueText(args.map(valueTextOf), context);
    return text === undefined
      ? undefined
      : parseValue(text, { sets: true, exactIntegers: true, rawNumbers: true });
  };
  return Object.assign(impl, { valueText });
}

/** The host builtins of the module, by name. */
export const GO_HOST_BUILTINS: Readonly<Record<string, HostBuiltin>> = Object.fromEntries(
  GO_BUILTINS.map((name) => [name, goBuiltin(name)]),
);
