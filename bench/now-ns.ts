/**
 * `now_ns` (issue 27), in process: the tool-call policy of an older tree's bundle on inputs with
 * `now` only (it parses `now` through the `time.parse_rfc3339_ns` builtin) against this checkout's
 * bundle on the same inputs with `now_ns` beside `now` (no builtin call), both on this checkout's
 * engine, in alternating blocks. Prints µs per evaluation and the ratio.
 *
 *   node bench/now-ns.ts [--old df79eb1] [--blocks 30] [--evals 2000]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { epochNanos } from '../src/decisions/epoch-nanos.ts';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { loadInputs } from './inputs.ts';
import { BENCH_CALLER } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    old: { type: 'string', default: 'df79eb1' },
    blocks: { type: 'string', default: '30' },
    evals: { type: 'string', default: '2000' },
  },
});
const oldBundle = execFileSync('git', ['show', `${values.old}:policies/bundle/bundle.tar.gz`], {
  cwd: root,
  maxBuffer: 1 << 26,
});
const engines = {
  old: PolicyEngine.fromBundle(parseBundle(oldBundle)),
  new: PolicyEngine.fromBundle(parseBundle(readFileSync(path.join(root, 'policies/bundle/bundle.tar.gz')))),
};
const inputs = await loadInputs(200, 42);
const at = new Date();
const now = at.toISOString();
const texts = {
  old: inputs.toolCalls.map((e) => JSON.stringify({ ...e, caller: BENCH_CALLER, now })),
  new: inputs.toolCalls.map((e) =>
    JSON.stringify({ ...e, caller: BENCH_CALLER, now, now_ns: epochNanos(at.getTime()) }),
  ),
};
// The same answers on every input, or the comparison means nothing.
texts.old.forEach((t, i) => {
  const a = JSON.stringify(engines.old.evaluateJson('verdict/decision', t).value);
  const b = JSON.stringify(engines.new.evaluateJson('verdict/decision', texts.new[i]!).value);
  if (a !== b) throw new Error(`input ${i}: ${a} vs ${b}`);
});
const run = (side: 'old' | 'new') => {
  const n = Number(values.evals);
  const t = performance.now();
  for (let i = 0; i < n; i++)
    engines[side].evaluateJson('verdict/decision', texts[side][i % texts[side].length]!);
  return ((performance.now() - t) * 1000) / n;
};
const micros = { old: [] as number[], new: [] as number[] };
for (let b = 0; b < Number(values.blocks) + 2; b++) {
  for (const side of b % 2 ? (['new', 'old'] as const) : (['old', 'new'] as const)) {
    const m = run(side);
    if (b >= 2) micros[side].push(m);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratios = micros.old.map((o, i) => micros.new[i]! / o);
console.log(
  `tool-call policy: old ${median(micros.old).toFixed(1)} µs (parses now), new ${median(micros.new).toFixed(1)} µs (now_ns); ` +
    `new/old ${(median(micros.new) / median(micros.old)).toFixed(3)}× (median of per-block ratios ${median(ratios).toFixed(3)}×)`,
);
