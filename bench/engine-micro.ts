/**
 * The floor: how fast the wasm policy itself evaluates the benchmark's inputs in-process, with no
 * HTTP and no recording. Compared with the HTTP numbers it shows how much of a request is the
 * policy and how much is Verdict.
 *
 *   node bench/engine-micro.ts [--seconds 3] [--json]
 *
 * Measures, per input kind (tool call, release gate):
 *   policy      PolicyEngine.evaluateJson('verdict/decision', json) — the policy alone
 *   mask        PolicyEngine.evaluate('system/log/mask', …) — the second evaluation every record needs
 *   decide      DecisionService.decide() with recording off — policy + mask + canonical JSON,
 *               digest, id and record construction: everything but HTTP and the audit write
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DisabledRecorder } from '../src/audit/memory-recorder.ts';
import { DecisionService } from '../src/decisions/service.ts';
import type { Caller } from '../src/decisions/types.ts';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { type Envelope, loadInputs } from './inputs.ts';
import { BENCH_CALLER } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');

/** One measured loop. */
export interface MicroResult {
  name: string;
  evaluations: number;
  perSecond: number;
  microsPerEval: number;
}

function measure(
  name: string,
  seconds: number,
  inputs: unknown[],
  fn: (input: unknown) => unknown,
): MicroResult {
  // Warm-up: let V8 optimise the JS around the wasm call before timing it.
  const warmUntil = performance.now() + Math.min(1000, seconds * 300);
  for (let i = 0; performance.now() < warmUntil; i++) fn(inputs[i % inputs.length]);
  let evaluations = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  // Check the clock every 64 evaluations so timing overhead stays negligible.
  while (performance.now() < deadline) {
    for (let k = 0; k < 64; k++, evaluations++) fn(inputs[evaluations % inputs.length]);
  }
  const elapsed = (performance.now() - started) / 1000;
  return {
    name,
    evaluations,
    perSecond: evaluations / elapsed,
    microsPerEval: (elapsed * 1e6) / evaluations,
  };
}

/** Runs every micro-benchmark; the runner calls it through a child process for isolation. */
export async function runMicro(options: { seconds: number; bundlePath: string }): Promise<MicroResult[]> {
  const engine = PolicyEngine.fromBundle(parseBundle(readFileSync(options.bundlePath)));
  const inputs = await loadInputs(200, 42);
  const now = new Date().toISOString();
  const full = (e: Envelope) => ({ ...e, caller: BENCH_CALLER, now });
  const service = new DecisionService({
    policy: { current: () => engine },
    recorder: new DisabledRecorder(),
  });
  const results: MicroResult[] = [];
  for (const [kind, envelopes] of [
    ['tool-call', inputs.toolCalls],
    ['release-gate', inputs.releases],
  ] as const) {
    const json = envelopes.map((e) => JSON.stringify(full(e)));
    results.push(
      measure(`${kind} policy`, options.seconds, json, (j) => {
        const evaluation = engine.evaluateJson('verdict/decision', j as string);
        if (evaluation.error) throw new Error(evaluation.error.message);
        return evaluation;
      }),
    );
    if (engine.hasEntrypoint('system/log/mask')) {
      const events = envelopes.map((e) => ({ input: full(e) }));
      results.push(
        measure(`${kind} mask`, options.seconds, events, (e) => engine.evaluate('system/log/mask', e)),
      );
    }
    results.push(
      measure(`${kind} decide`, options.seconds, envelopes, (e) =>
        service.decide({
          surface: 'native',
          entrypoint: 'verdict/decision',
          input: e,
          caller: BENCH_CALLER as Caller,
          traceId: null,
        }),
      ),
    );
  }
  return results;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      bundle: { type: 'string', default: path.join(root, 'policies/bundle/bundle.tar.gz') },
    },
  });
  const results = await runMicro({ seconds: Number(values.seconds), bundlePath: values.bundle });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(results)}\n`);
    return;
  }
  console.log('engine micro-benchmark (in-process, no HTTP, one core)');
  for (const r of results) {
    console.log(
      `${r.name.padEnd(22)} ${Math.round(r.perSecond).toString().padStart(9)} /s  ${r.microsPerEval.toFixed(1).padStart(7)} µs`,
    );
  }
}

if (import.meta.main) {
  main().catch((err) => {
    process.stderr.write(`engine-micro: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
