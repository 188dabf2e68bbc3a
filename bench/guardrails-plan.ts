/**
 * A/B of the detectors alone, in ONE process: the detector plan (src/guardrails/detectors.ts)
 * against the one-pass plan it replaced (test/fixtures/guardrails/reference-plan.ts), on the 10 KB
 * `model.response` of bench/guardrails.ts, interleaved rounds of scans, process CPU per scan (not
 * wall time: the host is shared), the median of the rounds and of the per-round ratios.
 *
 *   node bench/guardrails-plan.ts [--rounds 20] [--scans 1000]
 *
 * Both plans are compiled from the same detectors (the response path's: no prompt-injection ones,
 * and all of them), and must return the same matches (checked before timing).
 */
import { parseArgs } from 'node:util';
import { DetectorPlan, detectorsFor, type Match } from '../src/guardrails/detectors.ts';
import { ReferencePlan } from '../test/fixtures/guardrails/reference-plan.ts';
import { response } from './guardrails.ts';

const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const shown = (ms: Match[]) => JSON.stringify(ms.map((m) => [m.detector.name, m.start, m.end]));

function main(): void {
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '20' }, scans: { type: 'string', default: '1000' } },
  });
  const rounds = Number(values.rounds);
  const scans = Number(values.scans);
  // Flat, as a parsed request body's string is.
  const text = JSON.parse(JSON.stringify(response(10 * 1024))) as string;
  for (const [label, detectors] of [
    ['response (no injection detectors)', detectorsFor().filter((d) => d.kind !== 'prompt_injection')],
    ['all detectors', detectorsFor()],
  ] as const) {
    const plans = { base: new ReferencePlan(detectors), new: new DetectorPlan(detectors) };
    if (shown(plans.base.matches(text)) !== shown(plans.new.matches(text)))
      throw new Error(`${label}: the plans disagree`);
    const micros = { base: [] as number[], new: [] as number[] };
    for (let r = 0; r < rounds + 2; r++) {
      const order = r % 2 === 0 ? (['base', 'new'] as const) : (['new', 'base'] as const);
      for (const arm of order) {
        const before = cpuMicros();
        for (let i = 0; i < scans; i++) plans[arm].matches(text);
        if (r >= 2) micros[arm].push((cpuMicros() - before) / scans);
      }
    }
    const ratio = median(micros.new.map((n, i) => n / micros.base[i]!));
    console.log(
      `${label}, ${text.length} characters, ${rounds} rounds of ${scans}: CPU per scan base ${median(micros.base).toFixed(1)} µs, new ${median(micros.new).toFixed(1)} µs; new ÷ base per round ${ratio.toFixed(2)}×`,
    );
  }
}

if (import.meta.main) main();
