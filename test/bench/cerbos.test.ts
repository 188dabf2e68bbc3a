import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectedCerbosAllow, type PolicyResult, tallyParity } from '../../bench/cerbos/parity.ts';
import { cerbosConfig, compileCerbosPolicies } from '../../bench/cerbos/pdp.ts';
import { loadInputs } from '../../bench/inputs.ts';
import {
  type CellResult,
  computeTargets,
  formatTable,
  formatTargets,
  summarise,
} from '../../bench/report.ts';
import { BATCH_SIZE, buildScenarios } from '../../bench/scenarios.ts';

const root = path.resolve(import.meta.dirname, '../..');
const binary = path.join(root, 'node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64');

describe('the Cerbos policy (bench/cerbos/policies)', () => {
  it.skipIf(!existsSync(binary))('compiles, and `cerbos compile` passes every policy test', () => {
    const result = compileCerbosPolicies(binary);
    expect(result.suites).toBe(2);
    expect(result.tests).toBeGreaterThanOrEqual(25);
    expect(result.passed).toBe(result.tests);
  });

  it('writes decision logs to a file with the audit on, nothing with it off', () => {
    const on = JSON.parse(cerbosConfig(1, 2, '/tmp/x/audit.log'));
    expect(on.audit).toMatchObject({ enabled: true, decisionLogsEnabled: true, backend: 'file' });
    expect(on.audit.file.path).toBe('/tmp/x/audit.log');
    expect(JSON.parse(cerbosConfig(1, 2, null)).audit).toEqual({ enabled: false });
  });
});

describe('parity with OPA', () => {
  const deny = (...controls: string[]): PolicyResult => ({
    allow: false,
    violations: controls.map((control) => ({ control })),
  });
  const allow: PolicyResult = { allow: true, violations: [] };

  it('expects Cerbos to deny exactly when a control it expresses denied', () => {
    expect(expectedCerbosAllow(allow)).toBe(true);
    expect(expectedCerbosAllow(deny('TOOL-001'))).toBe(false);
    expect(expectedCerbosAllow(deny('TOOL-005'))).toBe(false);
    // INPUT-001 (the envelope's shape) is not in the Cerbos policy.
    expect(expectedCerbosAllow(deny('INPUT-001'))).toBe(true);
    expect(expectedCerbosAllow(deny('INPUT-001', 'TOOL-004'))).toBe(false);
    // A waived violation does not decide.
    expect(expectedCerbosAllow({ allow: true, violations: [{ control: 'TOOL-004', waived_by: 'w1' }] })).toBe(
      true,
    );
  });

  it('counts agreements, inputs decided by controls Cerbos does not express, and disagreements', () => {
    const tally = tallyParity(
      [allow, deny('TOOL-001'), deny('INPUT-001'), deny('INPUT-001', 'DATA-001'), deny('TOOL-004'), allow],
      [true, false, true, true, true, false],
    );
    expect(tally).toMatchObject({
      inputs: 6,
      agreeAllow: 1,
      agreeDeny: 1,
      notExpressible: 2,
      notExpressibleByControl: { 'INPUT-001': 2, 'DATA-001': 1 },
    });
    expect(tally.disagreements).toEqual([
      { input: 4, cerbosAllow: true, opaControls: ['TOOL-004'] },
      { input: 5, cerbosAllow: false, opaControls: [] },
    ]);
  });
});

describe('Cerbos requests', () => {
  it('sends one CheckResources request per decision, and a batch of 20 resources of one principal', async () => {
    const inputs = await loadInputs(200, 42);
    const scenarios = buildScenarios(inputs, { caller: {}, now: '2026-11-28T12:00:00.000Z' }, null);
    const tool = scenarios.find((s) => s.name === 'tool-call')!.cerbos!;
    const first = JSON.parse(tool.requests[0]!.body);
    const envelope = inputs.toolCalls[0]!;
    expect(tool.requests[0]!.path).toBe('/api/check/resources');
    expect(first.principal).toEqual({ id: envelope.subject.id, roles: [envelope.subject.type] });
    expect(first.resources).toEqual([
      {
        actions: ['tool.call'],
        resource: {
          kind: 'tool',
          id: envelope.resource.id,
          attr: {
            subject: envelope.subject.properties,
            properties: envelope.resource.properties,
            context: envelope.context,
            now: '2026-11-28T12:00:00.000Z',
            grants: {},
          },
        },
      },
    ]);
    const batch = scenarios.find((s) => s.name === 'batch-20')!.cerbos!;
    expect(batch.decisionsPerRequest).toBe(BATCH_SIZE);
    expect(batch.requests.length).toBeGreaterThanOrEqual(4);
    batch.requests.forEach((req, i) => {
      const body = JSON.parse(req.body);
      expect(body.resources).toHaveLength(BATCH_SIZE);
      for (const index of batch.inputIndexes[i]!)
        expect(inputs.toolCalls[index]!.subject.id).toBe(body.principal.id);
    });
    expect(scenarios.find((s) => s.name === 'opa-data')!.cerbos).toBeNull();
  });
});

describe('targets against the best peer', () => {
  const cell = (system: string, scenario: string, dps: number, p99: number, cpu = 100): CellResult => ({
    system,
    scenario,
    round: 1,
    decisionsPerSecond: dps,
    cpuMicrosPerDecision: cpu,
    postgresCpuMicrosPerDecision: 0,
    fixedCpuMicrosPerDecision: cpu,
    offeredDecisionsPerSecond: 500,
    latencyMs: { p50: 1, p90: 2, p99 },
    failed: 0,
    peakRssBytes: 1,
  });
  const micro = [
    { name: 'tool-call policy', evaluations: 1, perSecond: 1, microsPerEval: 40 },
    { name: 'tool-call mask', evaluations: 1, perSecond: 1, microsPerEval: 10 },
  ];
  const peers = { opa: ['opa-off'], cerbos: ['cerbos-audit', 'cerbos-off'] };

  it('takes the fastest peer, and the overhead net of policy and mask', () => {
    const summaries = summarise([
      cell('opa-off', 'tool-call', 2000, 10),
      cell('cerbos-audit', 'tool-call', 1800, 8),
      cell('cerbos-off', 'tool-call', 2200, 6),
      cell('verdict-sync-w1', 'tool-call', 3000, 5, 210),
      cell('verdict-sync-w2', 'tool-call', 3400, 3),
      cell('opa-off', 'batch-20', 2000, 10),
      cell('verdict-sync-w1', 'batch-20', 8000, 20, 110),
    ]);
    const [tool, batch] = computeTargets(summaries, micro, peers);
    expect(tool).toMatchObject({ bestPeer: 'cerbos-off', verdict: 'verdict-sync-w2', overheadTarget: 4 });
    expect(tool!.throughputRatio).toBeCloseTo(3400 / 2200);
    expect(tool!.throughputMet).toBe(true);
    expect(tool!.p99Ratio).toBeCloseTo(0.5);
    expect(tool!.vsOpa.throughput.w1).toBeCloseTo(1.5);
    expect(tool!.vsCerbos.system).toBe('cerbos-off');
    expect(tool!.overheadToEngineRatio).toBeCloseTo((210 - 40 - 10) / 40);
    expect(tool!.overheadMet).toBe(true);
    expect(batch).toMatchObject({ bestPeer: 'opa-off', verdict: 'verdict-sync-w1', overheadTarget: 1.5 });
    expect(batch!.overheadToEngineRatio).toBeCloseTo(1.5);
    // The throughput and p99 targets are the tool call's and the release gate's: a batch's p99 is
    // reported against the same peer, without a verdict.
    expect(batch!.p99Ratio).toBeCloseTo(2);
    expect(batch!.p99Met).toBeNull();
    const printed = formatTargets([tool!, batch!]);
    expect(printed).toMatch(/tool-call +cerbos-off +1\.55 \(w2\), 1\.36 \(w1\) — met/);
    expect(printed).toMatch(/batch-20 .*2\.00 \(w1\) — no target/);
    const table = formatTable(summaries, 'opa-off', peers);
    expect(table).toContain('scenario: tool-call — best peer cerbos-off');
    expect(table).toContain(
      'scenario: batch-20 — best peer opa-off (2,000 decisions/s); cerbos-audit, cerbos-off: n/a',
    );
    const row = table.split('\n').find((line) => line.startsWith('verdict-sync-w2'))!;
    expect(row).toContain('1.70×'); // vs OPA
    expect(row).toContain('1.55×'); // vs Cerbos
  });
});
