/** Statistics and the printed table of a benchmark run; pure functions, unit-tested. */
import type { MicroResult } from './engine-micro.ts';

/** One measured cell: one system, one scenario, one round. */
export interface CellResult {
  system: string;
  scenario: string;
  round: number;
  /** Decisions per second at saturation (requests/s × decisions per request). */
  decisionsPerSecond: number;
  /** CPU time of the server's process tree per decision at saturation, in µs. */
  cpuMicrosPerDecision: number;
  /**
   * CPU time of every Postgres process per decision at saturation, in µs (0 for a server that does
   * not write to Postgres, apart from background noise).
   */
  postgresCpuMicrosPerDecision: number;
  /** CPU time of the server's process tree per decision at the fixed offered load, in µs. */
  fixedCpuMicrosPerDecision?: number;
  /** The offered load of the fixed-rate phase, in decisions/s. */
  offeredDecisionsPerSecond: number;
  /** Latency per request at the offered load, in ms. */
  latencyMs: { p50: number; p90: number; p99: number };
  /** Requests that failed or answered non-2xx, over both phases. */
  failed: number;
  /** Non-2xx answers by status (503 = Verdict's load shedding), over both phases. */
  failures?: Record<string, number>;
  peakRssBytes: number;
  /**
   * The policy's evaluation time inside the server at saturation, in µs: the median of the
   * `eval_micros` the service measures around every evaluation and stores in the decision record
   * (systems that record to Postgres only). The engine floor is the same evaluation in a hot loop.
   */
  serverEvalMicros?: number;
}

/** The median over rounds of one system × scenario. */
export type CellSummary = Omit<CellResult, 'round'> & { rounds: number };

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The engine floor over rounds: the median µs/eval per measurement. The runner measures it at the
 * start of every round, next to the HTTP cells it is compared with, because a shared host's speed
 * drifts (by 40% within an hour on session 3's machine) and a single measurement at the start
 * would skew every overhead ratio the same way.
 */
export function medianMicro(rounds: MicroResult[][]): MicroResult[] {
  const names = [...new Set(rounds.flat().map((m) => m.name))];
  return names.map((name) => {
    const of = rounds.flat().filter((m) => m.name === name);
    const microsPerEval = median(of.map((m) => m.microsPerEval));
    return {
      name,
      evaluations: of.reduce((sum, m) => sum + m.evaluations, 0),
      perSecond: 1e6 / microsPerEval,
      microsPerEval,
    };
  });
}

/** Medians per (system, scenario) over rounds; failures are summed, peak RSS is the maximum. */
export function summarise(cells: CellResult[]): CellSummary[] {
  const groups = new Map<string, CellResult[]>();
  for (const cell of cells) {
    const key = `${cell.system}\0${cell.scenario}`;
    groups.set(key, [...(groups.get(key) ?? []), cell]);
  }
  return [...groups.values()].map((group) => {
    const m = (f: (c: CellResult) => number) => median(group.map(f));
    // Over the rounds that recorded decisions (a round that stored none has no value, not a zero).
    const evalMicros = group.flatMap((c) => (c.serverEvalMicros === undefined ? [] : [c.serverEvalMicros]));
    return {
      system: group[0]!.system,
      scenario: group[0]!.scenario,
      rounds: group.length,
      decisionsPerSecond: m((c) => c.decisionsPerSecond),
      cpuMicrosPerDecision: m((c) => c.cpuMicrosPerDecision),
      postgresCpuMicrosPerDecision: m((c) => c.postgresCpuMicrosPerDecision ?? 0),
      fixedCpuMicrosPerDecision: m((c) => c.fixedCpuMicrosPerDecision ?? Number.NaN),
      offeredDecisionsPerSecond: m((c) => c.offeredDecisionsPerSecond),
      latencyMs: {
        p50: m((c) => c.latencyMs.p50),
        p90: m((c) => c.latencyMs.p90),
        p99: m((c) => c.latencyMs.p99),
      },
      failed: group.reduce((sum, c) => sum + c.failed, 0),
      peakRssBytes: Math.max(...group.map((c) => c.peakRssBytes)),
      ...(evalMicros.length > 0 ? { serverEvalMicros: median(evalMicros) } : {}),
    };
  });
}

/**
 * The cells a strict run (`--strict`, CI's smoke) fails on: any failed or non-2xx request, or no
 * decisions at all. Described one per entry, e.g. "verdict-sync-w1/tool-call: 3 failed".
 */
export function failedCells(summaries: CellSummary[]): string[] {
  return summaries
    .filter((s) => s.failed > 0 || !(s.decisionsPerSecond > 0))
    .map(
      (s) => `${s.system}/${s.scenario}: ${s.failed} failed, ${Math.round(s.decisionsPerSecond)} decisions/s`,
    );
}

function pad(text: string, width: number, left = false): string {
  return left ? text.padEnd(width) : text.padStart(width);
}

const fmt = {
  int: (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'),
  ms: (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-'),
  ratio: (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '-'),
  mb: (n: number) => (n / (1024 * 1024)).toFixed(0),
};

/**
 * The table: one block per scenario, one row per system, with each Verdict row's ratio to OPA
 * (decision logs off) on throughput (higher is better) and p99 (lower is better).
 */
export function formatTable(summaries: CellSummary[], baseline: string): string {
  const lines: string[] = [];
  const header = [
    pad('system', 22, true),
    pad('decisions/s', 12),
    pad('vs OPA', 7),
    pad('CPU µs/dec', 10),
    pad('PG µs/dec', 9),
    pad('µs/dec@load', 11),
    pad('offered/s', 10),
    pad('p50 ms', 7),
    pad('p90 ms', 7),
    pad('p99 ms', 7),
    pad('p99 vs OPA', 10),
    pad('RSS MB', 7),
    pad('fail', 5),
  ].join(' ');
  for (const scenario of [...new Set(summaries.map((s) => s.scenario))]) {
    const rows = summaries.filter((s) => s.scenario === scenario);
    const base = rows.find((r) => r.system === baseline);
    lines.push('', `scenario: ${scenario}`, header, '-'.repeat(header.length));
    for (const r of rows) {
      const isBase = r.system === baseline;
      lines.push(
        [
          pad(r.system, 22, true),
          pad(fmt.int(r.decisionsPerSecond), 12),
          pad(isBase || !base ? '' : fmt.ratio(r.decisionsPerSecond / base.decisionsPerSecond), 7),
          pad(fmt.int(r.cpuMicrosPerDecision), 10),
          pad(fmt.int(r.postgresCpuMicrosPerDecision), 9),
          pad(fmt.int(r.fixedCpuMicrosPerDecision ?? Number.NaN), 11),
          pad(fmt.int(r.offeredDecisionsPerSecond), 10),
          pad(fmt.ms(r.latencyMs.p50), 7),
          pad(fmt.ms(r.latencyMs.p90), 7),
          pad(fmt.ms(r.latencyMs.p99), 7),
          pad(isBase || !base ? '' : fmt.ratio(r.latencyMs.p99 / base.latencyMs.p99), 10),
          pad(fmt.mb(r.peakRssBytes), 7),
          pad(String(r.failed), 5),
        ].join(' '),
      );
    }
  }
  return lines.join('\n');
}
