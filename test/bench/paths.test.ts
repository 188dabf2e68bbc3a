import { describe, expect, it } from 'vitest';
import type { ResponseVsToolCall } from '../../bench/guardrails.ts';
import {
  formatPaths,
  type PathsResult,
  type Ratio,
  SHADOW_TARGET,
  WAIVER_TARGET,
  type WaiverRatios,
  type WaiverSide,
} from '../../bench/paths.ts';

const r = (ratio: number, target: number): Ratio => ({ ratio, target, met: ratio <= target });
const side = (cpu: number): WaiverSide => ({
  decisionsPerSecond: 1000,
  cpuMicros: cpu,
  cpuMicrosAtLoad: cpu + 50,
  postgresCpuMicros: 60,
  p50Ms: 5,
  p99Ms: 20,
});
const ratios = (cpuAtLoad: number): WaiverRatios => ({
  cpuAtLoad: r(cpuAtLoad, WAIVER_TARGET),
  cpuAtSaturation: r(1, WAIVER_TARGET),
  throughput: r(1, WAIVER_TARGET),
  p50: r(1, WAIVER_TARGET),
  p99: r(1, WAIVER_TARGET),
});

function result(shadowInProcess: number, waiverSame: number, responseRatio = 0.46): PathsResult {
  return {
    quick: true,
    shadow: {
      inProcess: {
        ...r(shadowInProcess, SHADOW_TARGET),
        decideMicros: 90,
        decideWithShadowMicros: 130,
        policyEvalMicros: 40,
        extraMicros: 40,
        rounds: 15,
      },
      http: {
        ...r(1.5, SHADOW_TARGET),
        offeredPerSecond: 800,
        cpuMicros: 300,
        cpuWithShadowMicros: 360,
        extraMicros: 60,
        serverEvalMicros: 40,
        serverShadowEvalMicros: 30,
        records: r(0.75, SHADOW_TARGET),
        rounds: 2,
      },
    },
    waiver: {
      inProcess: {
        decideMicros: { waived: 100, denied: 90, plain: 85 },
        evalMicros: { waived: 50, denied: 40, plain: 38 },
        vsSameEnvelopes: r(1.05, WAIVER_TARGET),
        vsPlainAllow: r(1.2, WAIVER_TARGET),
        rounds: 15,
      },
      http: {
        offeredPerSecond: 800,
        waived: side(330),
        denied: side(300),
        plain: side(290),
        vsSameEnvelopes: ratios(waiverSame),
        vsPlainAllow: ratios(1.2),
        rounds: 2,
      },
    },
    search: {
      candidates: 10_000,
      returned: 100,
      searches: 10,
      p50Ms: 250,
      p99Ms: 600,
      microsPerCandidate: 25,
      records: 13,
      target: 'reported',
    },
    modelResponse: responseVsToolCall(responseRatio),
    failedRequests: 0,
  };
}

function responseVsToolCall(ratio: number): ResponseVsToolCall {
  return {
    rounds: 3,
    toolCallPerSecond: 2000,
    modelResponsePerSecond: 2000 * ratio,
    toolCallCpuMicros: 250,
    modelResponseCpuMicros: 520,
    toolCallPgCpuMicros: 110,
    modelResponsePgCpuMicros: 170,
    ratio,
    ratios: [ratio, ratio, ratio],
    target: 0.5,
    met: ratio >= 0.5,
    failed: 0,
  };
}

describe('bench/paths.ts report', () => {
  it('prints each ratio with its target, met or MISSED, as measured', () => {
    const text = formatPaths(result(1, 1.05));
    expect(text).toContain("shadow evaluation vs the policy's own evaluation: 1.00× (target ≤ 1.2×) met");
    expect(text).toMatch(/= 1\.50× \(target ≤ 1\.2×\) MISSED/);
    expect(text).toContain(
      'waiver-bearing decision vs the same envelopes without the waiver: 1.05× (target ≤ 1.1×) met',
    );
    expect(text).toContain('vs an ordinary allow 1.20× (target ≤ 1.1×) MISSED');
    expect(text).toContain('p50 250.0 ms, p99 600.0 ms');
    expect(text).toContain('failed or non-2xx requests over all HTTP phases: 0');
  });

  it("prints the guardrails' model.response ratio against its ≥ 50 % target", () => {
    expect(formatPaths(result(1, 1, 0.46))).toContain('920.0/s vs 2000.0/s = 46 % (target ≥ 50 %) MISSED');
    expect(formatPaths(result(1, 1, 0.55))).toContain('= 55 % (target ≥ 50 %) met');
  });

  it('prints the English-prose reading beside the mixed-script one when the run measured it', () => {
    const quick = formatPaths(result(1, 1, 0.46));
    expect(quick).toContain('10 KB model.response (mixed-script prose) vs tool call');
    expect(quick).not.toContain('English prose');
    const full = formatPaths({ ...result(1, 1, 0.46), modelResponseAscii: responseVsToolCall(0.57) });
    expect(full).toMatch(
      /= 46 % \(target ≥ 50 %\) MISSED[^\n]*\n {2}the same in English prose: 1140\.0\/s vs 2000\.0\/s = 57 % \(target ≥ 50 %\) met/,
    );
  });

  it('never rounds a miss onto its target', () => {
    const text = formatPaths(result(1.203, 1.104));
    expect(text).toContain('1.203× (target ≤ 1.2×) MISSED');
    expect(text).toContain('1.104× (target ≤ 1.1×) MISSED');
  });
});
