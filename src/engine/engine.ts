import { performance } from 'node:perf_hooks';
import { HOST_BUILTINS, unsupportedBuiltins } from './builtins.ts';
import { BundleError, type ParsedBundle } from './bundle.ts';
import { WasmPolicy } from './wasm-policy.ts';

/** The outcome of evaluating one entrypoint on one input. Never throws: errors are data. */
export interface Evaluation {
  /** True when the entrypoint produced a value (OPA: the result set is not empty). */
  defined: boolean;
  /** The entrypoint's value; undefined when not defined or on error. */
  value: unknown;
  evalMicros: number;
  error: { code: 'evaluation_error' | 'unknown_entrypoint'; message: string } | null;
}

/** The policy revision a decision was made on: the manifest's revision and the bundle's digest. */
export interface RevisionRef {
  revision: string;
  digest: string;
}

/** What the active policy revision is, right now. Swapped atomically by src/bundles. */
export interface ActivePolicy {
  current(): PolicyEngine;
}

// NOTE: compiling a policy module is the expensive step (tens of ms); instantiating one is cheap.
// Modules are cached per bundle digest so that reloading, replaying or recycling an instance of a
// revision already seen never compiles it again.
const moduleCache = new Map<string, WebAssembly.Module>();
const MODULE_CACHE_LIMIT = 32;

function compiledModule(bundle: ParsedBundle): WebAssembly.Module {
  let module = moduleCache.get(bundle.digest);
  if (!module) {
    try {
      module = new WebAssembly.Module(bundle.wasm);
    } catch (err) {
      throw new BundleError(`policy.wasm does not compile: ${(err as Error).message}`);
    }
    if (moduleCache.size >= MODULE_CACHE_LIMIT) {
      const oldest = moduleCache.keys().next().value;
      if (oldest !== undefined) moduleCache.delete(oldest);
    }
    moduleCache.set(bundle.digest, module);
  }
  return module;
}

/** Linear memory is recycled (a fresh instance) once it has grown past this size. */
const RECYCLE_MEMORY_BYTES = 64 * 1024 * 1024;
const MEMORY = { initial: 5, maximum: 4096 }; // 64 KiB pages: 320 KiB initial, 256 MiB cap

const encoder = new TextEncoder();

function walk(value: unknown, segments: string[]): unknown {
  let node = value;
  for (const segment of segments) {
    if (Array.isArray(node) && /^\d+$/.test(segment)) node = node[Number(segment)];
    else if (typeof node === 'object' && node !== null && Object.hasOwn(node, segment)) {
      node = (node as Record<string, unknown>)[segment];
    } else return undefined;
  }
  return node;
}

function message(err: unknown): string {
  if (typeof err === 'string') return err;
  if (err instanceof Error) return err.message;
  // An object thrown with a message (as the npm SDK throws) must not print as [object Object].
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  return JSON.stringify(err) ?? String(err);
}

/** How an engine is built. */
export interface EngineOptions {
  /**
   * Refuse a module that imports a builtin Verdict does not run (the default: upload, activation and
   * boot). Replay and offline evidence checks of a revision stored before that check existed pass
   * false: a call of such a builtin is then the evaluation error it was when the decision was made.
   */
  refuseUnsupported?: boolean;
}

/**
 * One policy revision, ready to evaluate. Evaluation is synchronous and single-threaded: one engine
 * per process (or worker) is all the parallelism a wasm instance allows.
 */
export class PolicyEngine {
  readonly bundle: ParsedBundle;
  readonly ref: RevisionRef;
  readonly entrypoints: readonly string[];
  private readonly dataJson: ArrayBuffer;
  private readonly refuseUnsupported: boolean;
  private policy: WasmPolicy;
  private recycles = 0;

  private constructor(bundle: ParsedBundle, options: EngineOptions) {
    this.bundle = bundle;
    this.refuseUnsupported = options.refuseUnsupported ?? true;
    this.ref = { revision: bundle.revision, digest: bundle.digest };
    this.dataJson = encoder.encode(JSON.stringify(bundle.data)).buffer as ArrayBuffer;
    this.policy = this.instantiate();
    this.entrypoints = Object.keys(this.policy.entrypoints).sort();
  }

  /** Compiles (or reuses the compiled module of) a parsed bundle and loads its data. */
  static fromBundle(bundle: ParsedBundle, options: EngineOptions = {}): PolicyEngine {
    return new PolicyEngine(bundle, options);
  }

  private instantiate(): WasmPolicy {
    let policy: WasmPolicy;
    try {
      policy = new WasmPolicy(compiledModule(this.bundle), { ...MEMORY }, HOST_BUILTINS);
    } catch (err) {
      if (err instanceof BundleError) throw err;
      throw new BundleError(`policy.wasm cannot be instantiated: ${message(err)}`);
    }
    // NOTE: checked before the data is loaded and before any evaluation, so that upload,
    // activation and boot (VERDICT_BUNDLE, VERDICT_BUNDLE_URL) all refuse the bundle the same way.
    const unsupported = this.refuseUnsupported ? unsupportedBuiltins(policy.builtinNames) : null;
    if (unsupported) {
      throw new BundleError(
        `the policy calls builtins Verdict does not run: ${unsupported} (see docs/builtins.md)`,
        'bundle_unsupported_builtin',
      );
    }
    try {
      policy.setData(this.dataJson);
    } catch (err) {
      throw new BundleError(`policy.wasm cannot be instantiated: ${message(err)}`);
    }
    return policy;
  }

  /** The builtins the policy module imports from the host, sorted. */
  get hostBuiltins(): readonly string[] {
    return this.policy.builtinNames;
  }

  hasEntrypoint(entrypoint: string): boolean {
    return Object.hasOwn(this.policy.entrypoints, entrypoint);
  }

  /** How many times the instance was replaced because its memory grew; for metrics and tests. */
  get instanceRecycles(): number {
    return this.recycles;
  }

  /** Bytes of linear memory the current instance holds. */
  get memoryBytes(): number {
    return this.policy.mem.buffer.byteLength;
  }

  /**
   * Evaluates `entrypoint` on `input` (any JSON value; undefined means no input). The input is
   * handed to the module as UTF-8 JSON bytes, which also keeps falsy inputs (false, 0, "", null)
   * from being dropped by the SDK.
   */
  evaluate(entrypoint: string, input: unknown): Evaluation {
    return this.evaluateJson(entrypoint, input === undefined ? undefined : JSON.stringify(input));
  }

  /** Like `evaluate`, for an input that is already JSON text. */
  evaluateJson(entrypoint: string, inputJson: string | undefined): Evaluation {
    const started = performance.now();
    if (!this.hasEntrypoint(entrypoint)) {
      return {
        defined: false,
        value: undefined,
        evalMicros: 0,
        error: { code: 'unknown_entrypoint', message: `entrypoint ${entrypoint} is not in the bundle` },
      };
    }
    let evaluation: Evaluation;
    try {
      const policy = this.policy;
      const resultSet = (
        policy.minorVersion >= 2
          ? policy.evaluateDirect(policy.entrypoints[entrypoint]!, inputJson)
          : policy.evaluate(
              inputJson === undefined ? undefined : (encoder.encode(inputJson).buffer as ArrayBuffer),
              entrypoint,
            )
      ) as { result: unknown }[] | undefined;
      const defined = Array.isArray(resultSet) && resultSet.length > 0;
      evaluation = {
        defined,
        value: defined ? resultSet[0]!.result : undefined,
        evalMicros: 0,
        error: null,
      };
    } catch (err) {
      evaluation = {
        defined: false,
        value: undefined,
        evalMicros: 0,
        error: { code: 'evaluation_error', message: message(err) },
      };
      // NOTE: an abort can leave the instance in an unknown state; replace it before the next call.
      this.recycle();
    }
    if (this.policy.mem.buffer.byteLength > RECYCLE_MEMORY_BYTES) this.recycle();
    evaluation.evalMicros = Math.round((performance.now() - started) * 1000);
    return evaluation;
  }

  /**
   * Evaluates an OPA data API path (`verdict/decision/allow`): the longest entrypoint that prefixes
   * the path is evaluated and the rest of the path is walked into its value, as OPA answers paths
   * below a rule. Undefined when the walk leaves the value; unknown_entrypoint when no entrypoint
   * prefixes the path.
   */
  evaluatePath(path: string, inputJson: string | undefined): Evaluation {
    const segments = path.split('/');
    for (let n = segments.length; n > 0; n--) {
      const entrypoint = n === segments.length ? path : segments.slice(0, n).join('/');
      if (!this.hasEntrypoint(entrypoint)) continue;
      const evaluation = this.evaluateJson(entrypoint, inputJson);
      if (n < segments.length && evaluation.defined) {
        evaluation.value = walk(evaluation.value, segments.slice(n));
        evaluation.defined = evaluation.value !== undefined;
      }
      return evaluation;
    }
    return this.evaluateJson(path, inputJson);
  }

  private recycle(): void {
    this.policy = this.instantiate();
    this.recycles += 1;
  }
}
