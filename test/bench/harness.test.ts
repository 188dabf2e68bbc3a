import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInputs } from '../../bench/inputs.ts';
import { opaServerBundleDir } from '../../bench/opa-bundle.ts';
import {
  type CellResult,
  failedCells,
  formatTable,
  median,
  medianMicro,
  summarise,
} from '../../bench/report.ts';
import { BATCH_SIZE, buildScenarios } from '../../bench/scenarios.ts';
import { mintToken, recordedEvalMicros } from '../../bench/systems.ts';
import { Chain } from '../../src/audit/chain.ts';
import { storeBatch } from '../../src/audit/writer.ts';
import { envelopeOf } from '../../src/http/envelope.ts';
import { decisionRecord } from '../audit/records.support.ts';
import { DEFAULT_BUNDLE } from '../support/bundle.ts';
import { createTestDatabase } from '../support/database.ts';

function cell(system: string, round: number, dps: number, p99: number): CellResult {
  return {
    system,
    scenario: 'tool-call',
    round,
    decisionsPerSecond: dps,
    cpuMicrosPerDecision: 100,
    postgresCpuMicrosPerDecision: system.startsWith('verdict') ? 40 : 0,
    fixedCpuMicrosPerDecision: 150,
    offeredDecisionsPerSecond: 500,
    latencyMs: { p50: p99 / 4, p90: p99 / 2, p99 },
    failed: round === 1 ? 1 : 0,
    peakRssBytes: round * 1024 * 1024,
  };
}

describe('bench report', () => {
  it('takes medians over rounds, sums failures and keeps the peak RSS', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const [opa] = summarise([
      cell('opa-off', 1, 1000, 2),
      cell('opa-off', 2, 3000, 6),
      cell('opa-off', 3, 2000, 4),
    ]);
    expect(opa).toMatchObject({
      rounds: 3,
      decisionsPerSecond: 2000,
      failed: 1,
      peakRssBytes: 3 * 1024 * 1024,
    });
    expect(opa!.latencyMs.p99).toBe(4);
  });

  it('takes the engine floor as the median of the per-round measurements', () => {
    const round = (policy: number, mask: number) => [
      { name: 'tool-call policy', evaluations: 100, perSecond: 1e6 / policy, microsPerEval: policy },
      { name: 'tool-call mask', evaluations: 100, perSecond: 1e6 / mask, microsPerEval: mask },
    ];
    const floor = medianMicro([round(40, 10), round(20, 30), round(25, 12)]);
    expect(floor).toEqual([
      { name: 'tool-call policy', evaluations: 300, perSecond: 1e6 / 25, microsPerEval: 25 },
      { name: 'tool-call mask', evaluations: 300, perSecond: 1e6 / 12, microsPerEval: 12 },
    ]);
  });

  it('prints Verdict/OPA ratios for throughput and p99', () => {
    const table = formatTable(
      summarise([cell('opa-off', 1, 1000, 2), cell('verdict-sync-w2', 1, 1500, 1)]),
      'opa-off',
    );
    const row = table.split('\n').find((line) => line.startsWith('verdict-sync-w2'))!;
    expect(row).toContain('1,500');
    expect(row).toContain('1.50×');
    expect(row).toContain('0.50×');
  });

  it('a strict run fails on any failed request or a cell that decided nothing', () => {
    const ok = cell('verdict-sync-w1', 2, 1000, 1);
    expect(failedCells(summarise([ok]))).toEqual([]);
    expect(failedCells(summarise([cell('verdict-sync-w1', 1, 1000, 1)]))).toEqual([
      'verdict-sync-w1/tool-call: 1 failed, 1000 decisions/s',
    ]);
    expect(failedCells(summarise([{ ...ok, decisionsPerSecond: 0 }]))).toHaveLength(1);
  });

  it('counts the CPU of Postgres processes (the audit write happens there too)', async () => {
    const { postgresCpuSecondsSince, postgresTicks } = await import('../../bench/systems.ts');
    const before = postgresTicks();
    expect(before.size, 'no postgres process visible in /proc: is Postgres running locally?').toBeGreaterThan(
      0,
    );
    expect(postgresCpuSecondsSince(before)).toBeGreaterThanOrEqual(0);
    const table = formatTable(
      summarise([cell('opa-off', 1, 1000, 2), cell('verdict-sync-w2', 1, 1500, 1)]),
      'opa-off',
    );
    expect(table).toContain('PG µs/dec');
    expect(table).toContain('µs/dec@load');
    expect(table.split('\n').find((line) => line.startsWith('verdict-sync-w2'))).toMatch(/ 100 +40 +150 /);
  });
});

describe('the policy inside the server', () => {
  it('is the median eval_micros of the records in a window, and the median over rounds', async () => {
    const test = await createTestDatabase('bench_eval_micros');
    try {
      const at = (second: number) => new Date(Date.UTC(2026, 10, 27, 12, 0, second));
      const records = [
        ...[10, 30, 20, 90, 40].map((evalMicros, i) =>
          decisionRecord(i, { decidedAt: at(10 + i).toISOString(), evalMicros }),
        ),
        // Outside the window: the warm-up, and the next cell.
        decisionRecord(9, { decidedAt: at(5).toISOString(), evalMicros: 5_000 }),
        decisionRecord(8, { decidedAt: at(40).toISOString(), evalMicros: 5_000 }),
      ];
      const { rows, json } = new Chain('bench-test').appendJson(records);
      await storeBatch(test.db, rows, json);
      expect(await recordedEvalMicros(test.url, at(10), at(20))).toBe(30);
      expect(await recordedEvalMicros(test.url, at(50), at(60))).toBeUndefined();
    } finally {
      await test.drop();
    }
    const rounds = [25, 70, 40].map((serverEvalMicros, i) => ({
      ...cell('verdict-sync-w1', i + 1, 1000, 2),
      serverEvalMicros,
    }));
    const [summary] = summarise(rounds);
    expect(summary!.serverEvalMicros).toBe(40);
    // A round that recorded nothing is left out, not counted as a value.
    expect(summarise([...rounds, cell('verdict-sync-w1', 4, 1000, 2)])[0]!.serverEvalMicros).toBe(40);
    expect(summarise([cell('opa-off', 1, 1000, 2)])[0]).not.toHaveProperty('serverEvalMicros');
  });
});

describe('bench/engine-cold.ts', () => {
  it('times the policy warm and after touching other memory, and prints both', () => {
    const out = execFileSync(
      process.execPath,
      ['bench/engine-cold.ts', '--seconds', '0.2', '--touch-mb', '1'],
      { cwd: path.resolve(import.meta.dirname, '../..'), encoding: 'utf8' },
    );
    const rounds = [...out.matchAll(/warm ([\d.]+) µs\/eval, cold ([\d.]+) µs\/eval/g)];
    expect(rounds).toHaveLength(2);
    for (const [, warm, cold] of rounds) {
      expect(Number(warm)).toBeGreaterThan(0);
      expect(Number(cold)).toBeGreaterThan(0);
    }
  });
});

describe('bench inputs and scenarios', () => {
  it('generates the same accepted envelopes for a seed, release gates of a few KB', async () => {
    const a = await loadInputs(40, 42);
    const b = await loadInputs(40, 42);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.toolCalls).toHaveLength(40);
    for (const e of [...a.toolCalls, ...a.releases])
      expect(() => envelopeOf(e as Record<string, unknown>)).not.toThrow();
    const sizes = a.releases.map((e) => JSON.stringify(e).length).sort((x, y) => x - y);
    expect(sizes[20]).toBeGreaterThan(2000);
  });

  it('sends OPA the envelope plus what Verdict adds server-side, and Verdict a bearer token', async () => {
    const inputs = await loadInputs(40, 42);
    const server = { caller: { sub: 'bench' }, now: '2026-11-26T12:00:00.000Z' };
    const scenarios = buildScenarios(inputs, server, mintToken('s'.repeat(40)));
    const tool = scenarios.find((s) => s.name === 'tool-call')!;
    const opaBody = JSON.parse(tool.opa.requests[0]!.body);
    expect(opaBody.input).toEqual({ ...inputs.toolCalls[0], ...server });
    expect(JSON.parse(tool.verdict.requests[0]!.body)).toEqual(inputs.toolCalls[0]);
    expect(tool.verdict.requests[0]!.headers.authorization).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    const batch = scenarios.find((s) => s.name === 'batch-20')!;
    expect(JSON.parse(batch.verdict.requests[0]!.body).items).toHaveLength(BATCH_SIZE);
    expect(batch.verdict.decisionsPerRequest).toBe(BATCH_SIZE);
  });

  it('gives OPA the Rego sources and data of the committed bundle, without the wasm', () => {
    expect(existsSync(DEFAULT_BUNDLE), 'policies/bundle/bundle.tar.gz (npm run policies:build)').toBe(true);
    const dir = opaServerBundleDir(DEFAULT_BUNDLE);
    const manifest = JSON.parse(readFileSync(path.join(dir, '.manifest'), 'utf8'));
    expect(manifest.wasm).toBeUndefined();
    expect(manifest.revision).toMatch(/^sha256:/);
    const files = readdirSync(dir, { recursive: true }).map(String);
    expect(files.some((f) => f.endsWith('.wasm'))).toBe(false);
    expect(files.some((f) => f.endsWith('_test.rego'))).toBe(false);
    expect(files).toContain(path.join('policies', 'verdict.rego'));
    expect(readFileSync(path.join(dir, 'policies', 'verdict.rego'), 'utf8')).toContain('decision :=');
  });
});
