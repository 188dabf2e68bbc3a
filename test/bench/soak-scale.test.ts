import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadInputs } from '../../bench/inputs.ts';
import { withoutApprovals } from '../../bench/scale.ts';
import { rssWindows, type Sample } from '../../bench/soak-http.ts';
import { BENCH_CALLER } from '../../bench/systems.ts';
import { canonicalJson } from '../../src/decisions/canonical-json.ts';
import { evaluateDecision } from '../../src/decisions/evaluate.ts';
import { parseBundle } from '../../src/engine/bundle.ts';
import { PolicyEngine } from '../../src/engine/engine.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';

/** RSS samples every 10 decisions following `rss(decisions)`. */
function samples(upTo: number, rss: (decisions: number) => number): Sample[] {
  const out: Sample[] = [];
  for (let d = 0; d <= upTo; d += 10) out.push({ decisions: d, seconds: d / 100, rssMb: rss(d), failed: 0 });
  return out;
}

describe('bench/soak-http.ts rssWindows', () => {
  it('keeps each window peak and trough after the warm-up, the remainder joining the last window', () => {
    // A saw-tooth with a 40-decision period between 100 and 140 MB: flat peaks.
    const windows = rssWindows(
      samples(250, (d) => 100 + (d % 40)),
      50,
      80,
    );
    expect(windows.map((w) => [w.from, w.to])).toEqual([
      [50, 130],
      [130, 250],
    ]);
    expect(windows.map((w) => w.peakMb)).toEqual([130, 130]);
    expect(windows.map((w) => w.troughMb)).toEqual([100, 100]);
  });

  it('shows a leak as climbing peaks', () => {
    const windows = rssWindows(
      samples(400, (d) => 100 + (d % 40) + d / 4),
      0,
      100,
    );
    const peaks = windows.map((w) => w.peakMb);
    expect(peaks).toEqual([...peaks].sort((a, b) => a - b));
    expect(peaks.at(-1)! / peaks[0]!).toBeGreaterThan(1.1);
  });

  it('ignores the samples of the warm-up', () => {
    const windows = rssWindows(
      samples(100, (d) => (d <= 20 ? 500 : 100)),
      20,
      40,
    );
    expect(Math.max(...windows.map((w) => w.peakMb))).toBe(100);
  });
});

describe('bench/scale.ts withoutApprovals', () => {
  it('leaves out exactly the tool calls whose decision asks for a human approval', async () => {
    const { toolCalls } = await loadInputs(200, 42);
    const now = new Date();
    const kept = withoutApprovals(toolCalls, now);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(toolCalls.length);
    const engine = PolicyEngine.fromBundle(parseBundle(readFileSync(DEFAULT_BUNDLE)));
    const asks = (envelope: object) => {
      const { grants: _ignored, ...fields } = envelope as { grants?: unknown };
      const input = canonicalJson({ ...fields, caller: BENCH_CALLER, now: now.toISOString() });
      return evaluateDecision(engine, 'native', 'verdict/decision', input).result.obligations.some(
        (o) => o.type === 'human_approval',
      );
    };
    expect(kept.filter(asks)).toEqual([]);
    expect(toolCalls.filter((e) => !kept.includes(e)).every(asks)).toBe(true);
  });
});
