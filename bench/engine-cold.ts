/**
 * The policy on warm and on cold caches: the engine floor's hot loop evaluates one policy after
 * another, so its code and memory stay in the core's caches; inside a server the rest of every
 * request (and the other processes on the core) runs between two evaluations. This evaluates the
 * tool-call policy on the benchmark inputs in turns: back to back ("warm"), and after touching
 * `--touch-mb` MB of other memory before each evaluation ("cold"); only the evaluation is timed.
 *
 *   node bench/engine-cold.ts [--touch-mb 16] [--seconds 3]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { loadInputs } from './inputs.ts';
import { BENCH_CALLER } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    'touch-mb': { type: 'string', default: '16' },
    seconds: { type: 'string', default: '3' },
  },
});
const engine = PolicyEngine.fromBundle(
  parseBundle(readFileSync(path.join(root, 'policies/bundle/bundle.tar.gz'))),
);
const inputs = await loadInputs(200, 42);
const now = new Date().toISOString();
const json = inputs.toolCalls.map((e) => JSON.stringify({ ...e, caller: BENCH_CALLER, now }));
const other = new Float64Array(Math.round(Number(values['touch-mb']) * 131_072));

/** Writes one value per 64-byte cache line of `other`. */
function touch(): number {
  let sum = 0;
  for (let i = 0; i < other.length; i += 8) {
    other[i]! += 1;
    sum += other[i]!;
  }
  return sum;
}

function measure(cold: boolean): number {
  let timed = 0;
  let evaluations = 0;
  const deadline = performance.now() + Number(values.seconds) * 1000;
  while (performance.now() < deadline) {
    if (cold) touch();
    const started = performance.now();
    const evaluation = engine.evaluateJson('verdict/decision', json[evaluations % json.length]!);
    timed += performance.now() - started;
    if (evaluation.error) throw new Error(evaluation.error.message);
    evaluations += 1;
  }
  return (timed * 1000) / evaluations;
}

console.log(`tool-call policy, ${values['touch-mb']} MB touched before each cold evaluation`);
for (let round = 1; round <= 2; round++) {
  const warm = measure(false);
  const cold = measure(true);
  console.log(
    `  round ${round}: warm ${warm.toFixed(1)} µs/eval, cold ${cold.toFixed(1)} µs/eval (${(cold / warm).toFixed(1)}×)`,
  );
}
