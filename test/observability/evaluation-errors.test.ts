/**
 * Evaluation errors are counted and logged, the log rate-limited (issue 23): a policy that fails
 * every decision writes one line per entrypoint per 10 s window, saying how many it suppressed,
 * with the engine's real message; the counter sees every one.
 */
import { describe, expect, it } from 'vitest';
import type { ActivePolicy } from '../../src/engine/engine.ts';
import { observeDecisions } from '../../src/observability/decisions.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { sampleValue } from './scrape.ts';

type Observer = ReturnType<typeof observeDecisions>;

function failed(id: string, message: string): Parameters<Observer> {
  const decision = {
    id,
    allow: false,
    error: { code: 'evaluation_error', message },
    result: { allow: false, violations: [{ control: 'EVAL-ERROR' }], obligations: [], exceptions: [] },
  };
  const record = { entrypoint: 'verdict/decision', evalMicros: 12 };
  return [decision, record, { recorded: true, seconds: 0.001 }] as unknown as Parameters<Observer>;
}

describe('evaluation errors', () => {
  it('are counted every time and logged once per entrypoint per window, with the real message', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const policy = { current: () => ({ hasEntrypoint: () => true }) } as unknown as ActivePolicy;
    const lines: { fields: Record<string, unknown>; message: string }[] = [];
    let clock = 1_000_000;
    const observe = observeDecisions(
      metrics,
      policy,
      { warn: (fields, message) => lines.push({ fields: fields as Record<string, unknown>, message }) },
      () => clock,
    );
    const message = 'time.now_ns: the input has no RFC 3339 `now`';
    for (let i = 0; i < 50; i++) observe(...failed(`d${i}`, message));
    clock += 10_001;
    observe(...failed('d50', message));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toEqual({
      message: 'policy evaluation error',
      fields: { entrypoint: 'verdict/decision', decision_id: 'd0', err: message, suppressed: 0 },
    });
    expect(lines[1]!.fields).toMatchObject({ decision_id: 'd50', suppressed: 49 });
    const text = await metrics.registry.metrics();
    expect(
      sampleValue(text, 'verdict_policy_evaluation_errors_total', { entrypoint: 'verdict/decision' }),
    ).toBe(51);
  });
});
