import { BuiltinError, type EvaluationContext, type HostBuiltin } from './builtins/types.ts';
import { parseValue, valueText } from './rego-value.ts';

/**
 * One instance of an OPA wasm policy module (ABI 1.x), loaded by Verdict rather than by the npm
 * SDK's `loadPolicySync`: the SDK hands builtins their arguments through `opa_json_dump` and takes
 * results back through `opa_json_parse`, which cannot carry a set or an integer beyond 2^53, and it
 * throws plain objects that print as `[object Object]`. Here arguments and results cross in the
 * value format (`opa_value_dump` / `opa_value_parse`), and every failure is an Error with OPA's or the
 * builtin's own message.
 */

type Exports = {
  memory?: WebAssembly.Memory;
  opa_malloc(size: number): number;
  opa_json_parse(addr: number, len: number): number;
  opa_value_parse(addr: number, len: number): number;
  opa_json_dump(addr: number): number;
  opa_value_dump(addr: number): number;
  opa_heap_ptr_get(): number;
  opa_heap_ptr_set(addr: number): void;
  builtins(): number;
  entrypoints(): number;
  opa_eval?: (...args: number[]) => number;
  opa_eval_ctx_new(): number;
  opa_eval_ctx_set_input(ctx: number, addr: number): void;
  opa_eval_ctx_set_data(ctx: number, addr: number): void;
  opa_eval_ctx_set_entrypoint(ctx: number, entrypoint: number): void;
  opa_eval_ctx_get_result(ctx: number): number;
  eval(ctx: number): number;
  opa_wasm_abi_version?: WebAssembly.Global;
  opa_wasm_abi_minor_version?: WebAssembly.Global;
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const WASM_PAGE_BYTES = 64 * 1024;

/** Builtins a module needs, by name, read from its `builtins()` export. */
export function moduleBuiltinNames(
  exports: Pick<Exports, 'builtins' | 'opa_json_dump'>,
  mem: WebAssembly.Memory,
) {
  return Object.keys(readJson(mem, exports.opa_json_dump(exports.builtins())) as Record<string, number>);
}

function readText(mem: WebAssembly.Memory, addr: number): string {
  const bytes = new Uint8Array(mem.buffer);
  const end = bytes.indexOf(0, addr);
  return decoder.decode(bytes.subarray(addr, end));
}

function readJson(mem: WebAssembly.Memory, addr: number): unknown {
  return JSON.parse(readText(mem, addr));
}

/** A loaded module instance with its data; evaluation is synchronous. */
export class WasmPolicy {
  readonly mem: WebAssembly.Memory;
  readonly wasmInstance: WebAssembly.Instance;
  readonly entrypoints: Record<string, number>;
  /** The builtins the module imports from the host, by name. */
  readonly builtinNames: readonly string[];
  minorVersion: number;
  dataAddr = 0;
  dataHeapPtr = 0;
  private readonly baseHeapPtr: number;
  private readonly exports: Exports;
  private context: EvaluationContext = { inputJson: undefined };

  /**
   * Instantiates `module` with `memory` and `host`'s builtins. A builtin the module imports but the
   * host lacks fails at the call with "not provided"; callers check `builtinNames` before (upload).
   */
  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.MemoryDescriptor,
    host: Record<string, HostBuiltin>,
  ) {
    this.mem = new WebAssembly.Memory(memory);
    let ids: Record<number, string> = {};
    const call = (id: number, args: number[]): number => this.callBuiltin(ids[id] ?? `#${id}`, host, args);
    this.wasmInstance = new WebAssembly.Instance(module, {
      env: {
        memory: this.mem,
        opa_abort: (addr: number) => {
          throw new Error(readText(this.mem, addr));
        },
        opa_println: () => {},
        opa_builtin0: (id: number, _ctx: number) => call(id, []),
        opa_builtin1: (id: number, _ctx: number, a: number) => call(id, [a]),
        opa_builtin2: (id: number, _ctx: number, a: number, b: number) => call(id, [a, b]),
        opa_builtin3: (id: number, _ctx: number, a: number, b: number, c: number) => call(id, [a, b, c]),
        opa_builtin4: (id: number, _ctx: number, a: number, b: number, c: number, d: number) =>
          call(id, [a, b, c, d]),
      },
    });
    this.exports = this.wasmInstance.exports as unknown as Exports;
    const major = this.exports.opa_wasm_abi_version?.value ?? 1;
    if (major !== 1) throw new Error(`unsupported wasm ABI version ${major}`);
    this.minorVersion = this.exports.opa_wasm_abi_minor_version?.value ?? 0;
    const byName = readJson(this.mem, this.exports.opa_json_dump(this.exports.builtins())) as Record<
      string,
      number
    >;
    ids = Object.fromEntries(Object.entries(byName).map(([name, id]) => [id, name]));
    this.builtinNames = Object.keys(byName).sort();
    this.dataAddr = this.loadJson(encoder.encode('{}'));
    this.baseHeapPtr = this.exports.opa_heap_ptr_get();
    this.dataHeapPtr = this.baseHeapPtr;
    this.entrypoints = readJson(this.mem, this.exports.opa_json_dump(this.exports.entrypoints())) as Record<
      string,
      number
    >;
  }

  private loadJson(bytes: Uint8Array): number {
    const addr = this.exports.opa_malloc(bytes.byteLength);
    new Uint8Array(this.mem.buffer).set(bytes, addr);
    const parsed = this.exports.opa_json_parse(addr, bytes.byteLength);
    if (parsed === 0) throw new Error('the wasm module could not parse a JSON value');
    return parsed;
  }

  private callBuiltin(name: string, host: Record<string, HostBuiltin>, addrs: number[]): number {
    const impl = host[name];
    if (!impl) throw new Error(`builtin ${name} is not provided by Verdict`);
    if (impl.valueText) return this.callValueText(name, impl.valueText, addrs);
    const rawNumbers = (impl as { rawNumbers?: boolean }).rawNumbers === true;
    const args = addrs.map((addr) =>
      parseValue(readText(this.mem, this.exports.opa_value_dump(addr)), {
        sets: true,
        exactIntegers: true,
        rawNumbers,
      }),
    );
    let result: unknown;
    try {
      result = impl(args, this.context);
    } catch (err) {
      // OPA (non-strict, as `opa eval` and OPA's server run by default) makes a builtin's error an
      // undefined expression; any other exception is the engine's own failure and surfaces.
      if (err instanceof BuiltinError) return 0;
      throw err;
    }
    if (result === undefined) return 0;
    const bytes = encoder.encode(valueText(result));
    const addr = this.exports.opa_malloc(bytes.byteLength);
    new Uint8Array(this.mem.buffer).set(bytes, addr);
    const parsed = this.exports.opa_value_parse(addr, bytes.byteLength);
    if (parsed === 0) throw new Error(`builtin ${name} produced a value the module cannot read`);
    return parsed;
  }

  /** A builtin that takes and gives OPA's value format as it is (HostBuiltin.valueText). */
  private callValueText(name: string, impl: NonNullable<HostBuiltin['valueText']>, addrs: number[]): number {
    const operands = addrs.map((addr) => readText(this.mem, this.exports.opa_value_dump(addr)));
    let text: string | undefined;
    try {
      text = impl(operands, this.context);
    } catch (err) {
      if (err instanceof BuiltinError) return 0;
      throw err;
    }
    if (text === undefined) return 0;
    const bytes = encoder.encode(text);
    const addr = this.exports.opa_malloc(bytes.byteLength);
    new Uint8Array(this.mem.buffer).set(bytes, addr);
    const parsed = this.exports.opa_value_parse(addr, bytes.byteLength);
    if (parsed === 0) throw new Error(`builtin ${name} produced a value the module cannot read`);
    return parsed;
  }

  /** Replaces the data document (resets the heap to where data starts). */
  setData(json: ArrayBuffer): void {
    this.exports.opa_heap_ptr_set(this.baseHeapPtr);
    this.dataAddr = this.loadJson(new Uint8Array(json));
    this.dataHeapPtr = this.exports.opa_heap_ptr_get();
  }

  /**
   * Evaluates through OPA's single-call ABI (1.2+): the input text is encoded straight into linear
   * memory and the result set comes back in the value format, sets sorted as OPA sorts them.
   */
  evaluateDirect(entrypoint: number, inputJson: string | undefined): unknown {
    return readResultSet(this.evaluateText(entrypoint, inputJson));
  }

  /** The result set as the module writes it in the value format (exact numbers, sets unsorted). */
  evaluateText(entrypoint: number, inputJson: string | undefined): string {
    this.context = { inputJson };
    let inputAddr = 0;
    let inputLength = 0;
    if (inputJson !== undefined) {
      inputAddr = this.dataHeapPtr;
      // UTF-8 needs at most 3 bytes per UTF-16 code unit.
      const room = inputJson.length * 3;
      const missing = inputAddr + room - this.mem.buffer.byteLength;
      if (missing > 0) this.mem.grow(Math.ceil(missing / WASM_PAGE_BYTES));
      inputLength = encoder.encodeInto(inputJson, new Uint8Array(this.mem.buffer, inputAddr, room)).written;
    }
    const heap = this.dataHeapPtr + inputLength;
    // Format 1 is the value format: sets stay sets.
    const resultAddr = this.exports.opa_eval!(0, entrypoint, this.dataAddr, inputAddr, inputLength, heap, 1);
    return readText(this.mem, resultAddr);
  }

  /** Evaluates through the multi-call ABI (every 1.x version): what modules older than 1.2 need. */
  evaluate(input: ArrayBuffer | undefined, entrypoint: string): unknown {
    const id = this.entrypoints[entrypoint];
    if (id === undefined) throw new Error(`entrypoint ${entrypoint} is not in the module`);
    this.context = { inputJson: input === undefined ? undefined : decoder.decode(input) };
    const x = this.exports;
    x.opa_heap_ptr_set(this.dataHeapPtr);
    const inputAddr = input === undefined ? 0 : this.loadJson(new Uint8Array(input));
    const ctx = x.opa_eval_ctx_new();
    if (inputAddr) x.opa_eval_ctx_set_input(ctx, inputAddr);
    x.opa_eval_ctx_set_data(ctx, this.dataAddr);
    x.opa_eval_ctx_set_entrypoint(ctx, id);
    x.eval(ctx);
    return readResultSet(readText(this.mem, x.opa_value_dump(x.opa_eval_ctx_get_result(ctx))));
  }
}

/**
 * The result set in the value format: `{{"result": …}}` or `set()`. Most results hold no set and
 * the inside of the outer braces is then JSON, which the native parser reads fastest.
 */
function readResultSet(text: string): unknown {
  if (text.startsWith('{{') && text.endsWith('}}')) {
    try {
      return [JSON.parse(text.slice(1, -1))];
    } catch {
      // a set or a non-string key somewhere inside: the full parser below
    }
  }
  return parseValue(text, { sets: false, exactIntegers: false });
}
