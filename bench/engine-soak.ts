/**
 * Engine soak: evaluates the default bundle's verdict/decision over varied generated inputs, in
 * process, and proves memory stays flat.
 *
 *   node bench/engine-soak.ts [--evaluations 1000000] [--every 100000] [--max-growth-mib 32]
 *
 * Prints, every `--every` evaluations: wasm linear memory bytes, instance recycles, process RSS and
 * V8 heap. After the first report (the warm-up: modules compiled, JIT settled, wasm memory grown
 * to its working size) RSS may grow by at most `--max-growth-mib` by the end, and wasm memory may
 * never exceed the engine's recycle threshold plus one growth step; otherwise it exits 1.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { loadInputs } from './inputs.ts';
import { BENCH_CALLER } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const MIB = 1024 * 1024;
/** The engine recycles an instance whose memory passed 64 MiB; one evaluation may grow it a little more. */
const WASM_BOUND_BYTES = 64 * MIB + 16 * MIB;

const { values } = parseArgs({
  options: {
    evaluations: { type: 'string', default: '1000000' },
    every: { type: 'string', default: '100000' },
    'max-growth-mib': { type: 'string', default: '32' },
    bundle: { type: 'string', default: path.join(root, 'policies/bundle/bundle.tar.gz') },
  },
});
const total = Number(values.evaluations);
const every = Number(values.every);
const maxGrowth = Number(values['max-growth-mib']) * MIB;

const engine = PolicyEngine.fromBundle(parseBundle(readFileSync(values.bundle)));
const inputs = await loadInputs(500, 7);
const envelopes = [...inputs.toolCalls, ...inputs.releases];
// Vary `now` too (a minute apart), so no two consecutive inputs are the same text.
const base = Date.parse('2026-11-26T12:00:00Z');
const inputFor = (i: number) =>
  JSON.stringify({
    ...envelopes[i % envelopes.length],
    caller: BENCH_CALLER,
    now: new Date(base + (i % 10_000) * 60_000).toISOString(),
  });

console.log(
  `engine soak: ${total.toLocaleString('en-US')} evaluations of verdict/decision over ${envelopes.length} inputs (${inputs.source})`,
);
console.log('evaluations      wasm MiB  recycles   RSS MiB  heap MiB   evals/s  allows');
let warmRss = 0;
let peakWasm = 0;
let allows = 0;
let errors = 0;
let lap = performance.now();
for (let i = 1; i <= total; i++) {
  const evaluation = engine.evaluateJson('verdict/decision', inputFor(i));
  if (evaluation.error) errors += 1;
  else if ((evaluation.value as { allow?: unknown })?.allow === true) allows += 1;
  peakWasm = Math.max(peakWasm, engine.memoryBytes);
  if (i % every === 0) {
    const now = performance.now();
    const { rss, heapUsed } = process.memoryUsage();
    if (warmRss === 0) warmRss = rss;
    console.log(
      [
        i.toLocaleString('en-US').padStart(11),
        (engine.memoryBytes / MIB).toFixed(1).padStart(13),
        String(engine.instanceRecycles).padStart(9),
        (rss / MIB).toFixed(1).padStart(9),
        (heapUsed / MIB).toFixed(1).padStart(9),
        Math.round((every * 1000) / (now - lap))
          .toString()
          .padStart(9),
        String(allows).padStart(7),
      ].join(' '),
    );
    lap = now;
  }
}
const finalRss = process.memoryUsage().rss;
const growth = finalRss - warmRss;
console.log(
  `RSS growth after warm-up: ${(growth / MIB).toFixed(1)} MiB (bound ${values['max-growth-mib']} MiB); ` +
    `peak wasm memory ${(peakWasm / MIB).toFixed(1)} MiB (bound ${WASM_BOUND_BYTES / MIB} MiB); ` +
    `evaluation errors ${errors}`,
);
if (growth > maxGrowth || peakWasm > WASM_BOUND_BYTES || errors > 0) {
  console.error('engine soak: FAILED — memory grew beyond the bound, or evaluations failed');
  process.exit(1);
}
console.log('engine soak: memory flat');
