import { performance } from 'node:perf_hooks';
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';
import * as opaWasm from '@open-policy-agent/opa-wasm';
import { VERDICT_BUILTINS } from './builtins.ts';
import { BundleError, type ParsedBundle } from './bundle.ts';

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

// NOTE: the SDK's ESM entry exports only the async loader by name; its default export is the
// CommonJS module, which has the synchronous one (it lets an instance be replaced in the middle of a
// request). Its type declarations name only the named exports, hence the cast.
const { loadPolicySync } = (opaWasm as unknown as { default: typeof import('@open-policy-agent/opa-wasm') })
  .default;

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
const decoder = new TextDecoder();
const WASM_PAGE_BYTES = 64 * 1024;

/**
 * What the direct `opa_eval` call below reads from the SDK's LoadedPolicy (opa-wasm 1.10, pinned).
 * test/engine/engine.test.ts evaluates through it, so an SDK that renamed these fails there.
 */
interface PolicyInternals {
  minorVersion: number;
  mem: WebAssembly.Memory;
  wasmInstance: WebAssembly.Instance;
  dataAddr: number;
  dataHeapPtr: number;
  entrypoints: Record<string, number>;
}

type OpaEval = (
  reserved: number,
  entrypoint: number,
  data: number,
  input: number,
  inputLength: number,
  heap: number,
  format: number,
) => number;

/**
 * One evaluation through OPA's single-call ABI (1.2+), as the SDK's `evaluate` does, minus its
 * per-call costs: the input text is encoded straight into linear memory (no intermediate buffer),
 * the result's end is found with a native scan, and one TextDecoder serves every call. Returns the
 * result set (`[{result}]`, empty when undefined). Throws what the module throws.
 */
function evaluateDirect(policy: PolicyInternals, entrypoint: number, inputJson: string | undefined): unknown {
  // The input goes where the heap starts (after the data); address 0 means no input.
  let inputAddr = 0;
  let inputLength = 0;
  if (inputJson !== undefined) {
    inputAddr = policy.dataHeapPtr;
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    const room = inputJson.length * 3;
    const missing = inputAddr + room - policy.mem.buffer.byteLength;
    if (missing > 0) policy.mem.grow(Math.ceil(missing / WASM_PAGE_BYTES));
    inputLength = encoder.encodeInto(inputJson, new Uint8Array(policy.mem.buffer, inputAddr, room)).written;
  }
  const opaEval = policy.wasmInstance.exports.opa_eval as OpaEval;
  // Evaluation allocates after the input; format 0 asks for the result set as JSON text.
  const heap = policy.dataHeapPtr + inputLength;
  const resultAddr = opaEval(0, entrypoint, policy.dataAddr, inputAddr, inputLength, heap, 0);
  const memory = new Uint8Array(policy.mem.buffer);
  const end = memory.indexOf(0, resultAddr);
  return JSON.parse(decoder.decode(memory.subarray(resultAddr, end)));
}

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
  return String(err);
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
  private policy: LoadedPolicy;
  private recycles = 0;

  private constructor(bundle: ParsedBundle) {
    this.bundle = bundle;
    this.ref = { revision: bundle.revision, digest: bundle.digest };
    this.dataJson = encoder.encode(JSON.stringify(bundle.data)).buffer as ArrayBuffer;
    this.policy = this.instantiate();
    this.entrypoints = Object.keys(this.policy.entrypoints).sort();
  }

  /** Compiles (or reuses the compiled module of) a parsed bundle and loads its data. */
  static fromBundle(bundle: ParsedBundle): PolicyEngine {
    return new PolicyEngine(bundle);
  }

  private instantiate(): LoadedPolicy {
    let policy: LoadedPolicy;
    try {
      policy = loadPolicySync(compiledModule(this.bundle), { ...MEMORY }, VERDICT_BUILTINS);
      policy.setData(this.dataJson);
    } catch (err) {
      if (err instanceof BundleError) throw err;
      throw new BundleError(`policy.wasm cannot be instantiated: ${message(err)}`);
    }
    return policy;
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
      const internals = this.policy as unknown as PolicyInternals;
      const resultSet = (
        internals.minorVersion >= 2
          ? evaluateDirect(internals, internals.entrypoints[entrypoint]!, inputJson)
          : this.policy.evaluate(
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
