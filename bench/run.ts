/**
 * Verdict vs `opa run --server`: same machine, same bundle, same inputs, same run.
 *
 *   npm run bench                 # full run (3 rounds; ~20 min on 2 cores)
 *   npm run bench -- --quick      # smoke run (1 round, short phases; ~2 min)
 *   npm run bench -- --quick --strict --systems … --out <file>   # what CI runs: exit 1 on any failure
 *   npm run bench -- --rounds 5 --seconds 10 --systems opa-off,verdict-sync-w2 --scenarios tool-call
 *
 * For every round, system and scenario: a saturation phase (closed loop, many connections: the
 * decisions/s the server sustains, and the CPU it spends per decision), then a fixed-load phase at
 * a rate of `--load-fraction` (default 50%) of OPA's saturation rate for that scenario in that round
 * (latency percentiles). OPA with decision logs off runs first in each round, because its
 * saturation rate sets everyone's offered load. Medians over rounds are printed and written to
 * bench/results/<date>.json. See bench/README.md for what is measured and why.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import canonicalize from 'canonicalize';
import type { MicroResult } from './engine-micro.ts';
import { loadInputs } from './inputs.ts';
import type { LoadResult, LoadSpec } from './load.ts';
import { opaServerBundleDir } from './opa-bundle.ts';
import {
  type CellResult,
  type CellSummary,
  failedCells,
  formatTable,
  medianMicro,
  summarise,
} from './report.ts';
import { buildScenarios, type Scenario } from './scenarios.ts';
import {
  BENCH_CALLER,
  cpuSeconds,
  killAll,
  mintToken,
  postgresCpuSecondsSince,
  postgresTicks,
  type RunningSystem,
  recordedEvalMicros,
  type SystemEnv,
  type SystemSpec,
  sampleRss,
  startSystem,
  withDatabase,
} from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const BASELINE = 'opa-off';

const ALL_SYSTEMS: SystemSpec[] = [
  { id: 'opa-off', kind: 'opa', decisionLogs: 'off' },
  { id: 'opa-console-log', kind: 'opa', decisionLogs: 'console' },
  { id: 'verdict-sync-w1', kind: 'verdict', auditMode: 'sync', workers: 1 },
  { id: 'verdict-sync-w2', kind: 'verdict', auditMode: 'sync', workers: 2 },
  { id: 'verdict-async-w2', kind: 'verdict', auditMode: 'async', workers: 2 },
  { id: 'verdict-off-w2', kind: 'verdict', auditMode: 'off', workers: 2 },
  { id: 'node-http-floor', kind: 'floor' },
];

interface Options {
  quick: boolean;
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  loadFraction: number;
  systems: SystemSpec[];
  scenarios: string[] | null;
  cpus: string | null;
  databaseUrl: string;
  keepDatabase: boolean;
  out: string | null;
  /** Exit 1 when any request of any cell failed or answered non-2xx (the CI smoke run). */
  strict: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string', default: '32' },
      'load-fraction': { type: 'string', default: '0.5' },
      systems: { type: 'string' },
      scenarios: { type: 'string' },
      cpus: { type: 'string' },
      'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
      'keep-database': { type: 'boolean', default: false },
      out: { type: 'string' },
      strict: { type: 'boolean', default: false },
    },
  });
  const quick = values.quick;
  const ids = values.systems?.split(',');
  const systems = ids ? ALL_SYSTEMS.filter((s) => ids.includes(s.id)) : ALL_SYSTEMS;
  if (ids && !systems.some((s) => s.id === BASELINE)) systems.unshift(ALL_SYSTEMS[0]!);
  const num = (raw: string | undefined, fallback: number) => (raw === undefined ? fallback : Number(raw));
  return {
    quick,
    rounds: num(values.rounds, quick ? 1 : 3),
    seconds: num(values.seconds, quick ? 1.5 : 5),
    warmupSeconds: num(values.warmup, quick ? 0.5 : 2),
    connections: Number(values.connections),
    loadFraction: Number(values['load-fraction']),
    systems,
    scenarios: values.scenarios?.split(',') ?? null,
    cpus: values.cpus ?? null,
    databaseUrl: values['database-url'],
    keepDatabase: values['keep-database'],
    out: values.out ?? null,
    strict: values.strict,
  };
}

/** Runs the load generator in its own process and returns what it measured. */
async function load(spec: LoadSpec, workDir: string): Promise<LoadResult> {
  const file = path.join(workDir, 'load-spec.json');
  writeFileSync(file, JSON.stringify(spec));
  const timeoutMs = (spec.warmupSeconds + spec.durationSeconds) * 1000 + 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'bench/load.ts'), file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`load generator failed (${code}): ${err}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult);
    });
  });
}

function requestsFor(scenario: Scenario, system: SystemSpec) {
  return system.kind === 'opa' ? scenario.opa : scenario.verdict;
}

function nonSuccess(...results: LoadResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    for (const [code, n] of Object.entries(r.statusCodes))
      if (!code.startsWith('2')) out[code] = (out[code] ?? 0) + n;
  }
  return out;
}

/** One scenario on one running system: saturation, then the fixed offered load. */
async function measureCell(
  running: RunningSystem,
  scenario: Scenario,
  opts: Options,
  offeredDecisions: number | null,
  round: number,
  workDir: string,
  databaseUrl: string,
): Promise<CellResult> {
  const { requests, decisionsPerRequest } = requestsFor(scenario, running.spec);
  // A batch request carries 20 decisions: fewer connections keep the decisions in flight comparable.
  const connections =
    decisionsPerRequest > 1 ? Math.max(4, Math.round(opts.connections / 4)) : opts.connections;
  const base = { url: running.url, requests, connections };
  const rss = sampleRss(running.pid);
  const cpuBefore = cpuSeconds(running.pid);
  const pgBefore = postgresTicks();
  const saturationStarted = Date.now();
  // Saturation: warm-up inside the same load process, then the measured window.
  const saturation = await load(
    { ...base, warmupSeconds: opts.warmupSeconds, durationSeconds: opts.seconds },
    workDir,
  );
  const saturationEnded = new Date();
  const cpuUsed = cpuSeconds(running.pid) - cpuBefore;
  const pgCpuUsed = postgresCpuSecondsSince(pgBefore);
  const decisionsPerSecond = saturation.requestsPerSecond * decisionsPerRequest;
  // The CPU counter includes the warm-up; so does the request count it is divided by.
  const warmedRequests = saturation.ok * ((opts.warmupSeconds + saturation.seconds) / saturation.seconds);
  const cpuMicrosPerDecision = (cpuUsed * 1e6) / (warmedRequests * decisionsPerRequest);
  // The decisions of the measured window (after the warm-up), for systems that record them.
  const serverEvalMicros =
    running.spec.kind === 'verdict' && running.spec.auditMode !== 'off'
      ? await recordedEvalMicros(
          databaseUrl,
          new Date(saturationStarted + opts.warmupSeconds * 1000),
          saturationEnded,
        )
      : undefined;
  const postgresCpuMicrosPerDecision = (pgCpuUsed * 1e6) / (warmedRequests * decisionsPerRequest);
  const offered = offeredDecisions ?? decisionsPerSecond * opts.loadFraction;
  const fixedCpuBefore = cpuSeconds(running.pid);
  const fixedWarmup = Math.min(1, opts.warmupSeconds);
  const fixed = await load(
    {
      ...base,
      warmupSeconds: fixedWarmup,
      durationSeconds: opts.seconds,
      rate: Math.max(1, Math.round(offered / decisionsPerRequest)),
    },
    workDir,
  );
  // The same CPU per decision at the fixed offered load, where every system serves the same rate
  // and none is saturated (at saturation a server slower than its client also pays for waking it).
  const fixedRequests = fixed.ok * ((fixedWarmup + fixed.seconds) / fixed.seconds);
  const fixedCpuMicrosPerDecision =
    ((cpuSeconds(running.pid) - fixedCpuBefore) * 1e6) / (fixedRequests * decisionsPerRequest);
  return {
    system: running.spec.id,
    scenario: scenario.name,
    round,
    decisionsPerSecond,
    cpuMicrosPerDecision,
    postgresCpuMicrosPerDecision,
    fixedCpuMicrosPerDecision,
    offeredDecisionsPerSecond: fixed.requestsPerSecond * decisionsPerRequest,
    latencyMs: { p50: fixed.latencyMs.p50, p90: fixed.latencyMs.p90, p99: fixed.latencyMs.p99 },
    failed: saturation.failed + fixed.failed,
    failures: nonSuccess(saturation, fixed),
    peakRssBytes: rss.stop(),
    ...(serverEvalMicros !== undefined ? { serverEvalMicros } : {}),
  };
}

/**
 * Before measuring: every scenario answers 200 on the system, and on the shared /v1/data request
 * the system's results equal OPA's — the same policy, not merely the same route.
 */
async function verifyParity(running: RunningSystem, scenarios: Scenario[], reference: Map<string, string>) {
  for (const scenario of scenarios) {
    const { requests } = requestsFor(scenario, running.spec);
    for (const req of requests.slice(0, 20)) {
      const send = () =>
        fetch(running.url + req.path, { method: req.method, headers: req.headers, body: req.body });
      let res = await send();
      // A 503 is Verdict shedding load (a busy machine right after start): wait and ask again.
      for (let retry = 0; res.status === 503 && retry < 10; retry++) {
        await res.text();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        res = await send();
      }
      const text = await res.text();
      if (res.status !== 200)
        throw new Error(`${running.spec.id} ${scenario.name}: HTTP ${res.status}: ${text}`);
      // The floor answers a constant: it is measured, not compared.
      if (scenario.name === 'opa-data' && running.spec.kind !== 'floor') {
        const { result } = JSON.parse(text) as { result: unknown };
        const key = req.body;
        // Canonical JSON: OPA and Verdict order object keys differently.
        const seen = canonicalize(result) ?? 'undefined';
        if (!reference.has(key)) reference.set(key, seen);
        else if (reference.get(key) !== seen) {
          throw new Error(
            `${running.spec.id} disagrees with OPA on ${key}: ${seen} vs ${reference.get(key)}`,
          );
        }
      }
    }
  }
}

function machine(opaVersion: string) {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    opa: opaVersion,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

async function runMicroInChild(bundlePath: string, seconds: number): Promise<MicroResult[]> {
  const out = execFileSync(
    process.execPath,
    [
      path.join(root, 'bench/engine-micro.ts'),
      '--json',
      '--seconds',
      String(seconds),
      '--bundle',
      bundlePath,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!) as MicroResult[];
}

/** The three targets, computed from the medians. */
function targets(summaries: CellSummary[], micro: MicroResult[]) {
  const find = (system: string, scenario: string) =>
    summaries.find((s) => s.system === system && s.scenario === scenario);
  const out: Record<string, unknown>[] = [];
  for (const scenario of [...new Set(summaries.map((s) => s.scenario))]) {
    const opa = find(BASELINE, scenario);
    const verdict = find('verdict-sync-w2', scenario) ?? find('verdict-sync-w1', scenario);
    const w1 = find('verdict-sync-w1', scenario);
    const kind = scenario === 'release-gate' ? 'release-gate' : 'tool-call';
    const policy = micro.find((m) => m.name === `${kind} policy`)?.microsPerEval;
    const mask = micro.find((m) => m.name === `${kind} mask`)?.microsPerEval;
    const overhead = w1 && policy ? (w1.cpuMicrosPerDecision - policy) / policy : Number.NaN;
    // Where a decision's CPU goes: Node's own HTTP floor (per decision), the policy, the mask
    // evaluation, and the rest — Verdict's own code (auth, validation, digest, chain, audit client).
    const floorCell = find('node-http-floor', scenario);
    const split = (cpu: number | undefined, floor: number | undefined) =>
      cpu !== undefined && Number.isFinite(cpu) && floor !== undefined && Number.isFinite(floor)
        ? policy !== undefined && mask !== undefined
          ? { cpuMicros: cpu, nodeHttpFloor: floor, policy, mask, verdictOwn: cpu - floor - policy - mask }
          : null
        : null;
    // At saturation, and at the fixed offered load (same rate for every system, none saturated).
    const breakdown = split(w1?.cpuMicrosPerDecision, floorCell?.cpuMicrosPerDecision);
    const breakdownAtLoad = split(w1?.fixedCpuMicrosPerDecision, floorCell?.fixedCpuMicrosPerDecision);
    // The same ratio against the policy's evaluation time inside the server (the records'
    // eval_micros), where it runs on caches the rest of the request has used: slower than in the
    // floor's hot loop (bench/README.md, "What limits it").
    const inServer = w1?.serverEvalMicros;
    const overheadInServer = w1 && inServer ? (w1.cpuMicrosPerDecision - inServer) / inServer : Number.NaN;
    const overheadAtLoad =
      w1?.fixedCpuMicrosPerDecision !== undefined && policy
        ? (w1.fixedCpuMicrosPerDecision - policy) / policy
        : Number.NaN;
    out.push({
      scenario,
      verdict: verdict?.system,
      throughputRatio: opa && verdict ? verdict.decisionsPerSecond / opa.decisionsPerSecond : null,
      throughputMet: opa && verdict ? verdict.decisionsPerSecond >= opa.decisionsPerSecond : null,
      p99Ratio: opa && verdict ? verdict.latencyMs.p99 / opa.latencyMs.p99 : null,
      p99Met: opa && verdict ? verdict.latencyMs.p99 <= opa.latencyMs.p99 : null,
      engineMicrosPerEval: policy ?? null,
      verdictCpuMicrosPerDecision: w1?.cpuMicrosPerDecision ?? null,
      overheadToEngineRatio: Number.isFinite(overhead) ? overhead : null,
      overheadMet: Number.isFinite(overhead) ? overhead <= 3 : null,
      breakdownMicrosPerDecision: breakdown,
      serverEvalMicros: inServer ?? null,
      overheadToServerEvalRatio: Number.isFinite(overheadInServer) ? overheadInServer : null,
      overheadToEngineRatioAtOfferedLoad: Number.isFinite(overheadAtLoad) ? overheadAtLoad : null,
      breakdownMicrosPerDecisionAtOfferedLoad: breakdownAtLoad,
    });
  }
  return out;
}

async function main(): Promise<void> {
  const opts = options();
  const started = new Date();
  const bundlePath = path.join(root, 'policies/bundle/bundle.tar.gz');
  const opaVersion =
    /^Version: (.+)$/m.exec(execFileSync('opa', ['version'], { encoding: 'utf8' }))?.[1] ?? '?';
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'verdict-bench-'));
  const inputs = await loadInputs(200, 42);
  const jwtSecret = `bench-${Date.now()}-${'x'.repeat(40)}`;
  const server = { caller: BENCH_CALLER, now: started.toISOString() };
  const scenarios = buildScenarios(inputs, server, mintToken(jwtSecret)).filter(
    (s) => !opts.scenarios || opts.scenarios.includes(s.name),
  );
  console.log(
    `verdict bench: ${opts.rounds} round(s), ${opts.seconds}s phases, ${opts.connections} connections`,
  );
  console.log(`inputs: ${inputs.source}; systems: ${opts.systems.map((s) => s.id).join(', ')}`);

  const microRounds: MicroResult[][] = [];

  const env: SystemEnv = {
    bundlePath,
    opaBundleDir: opaServerBundleDir(bundlePath),
    databaseUrl: '',
    jwtSecret,
    workDir,
    cpus: opts.cpus,
  };
  const cells: CellResult[] = [];
  const parity = new Map<string, string>();
  await withDatabase(opts.databaseUrl, 'verdict_bench_http', opts.keepDatabase, async (databaseUrl) => {
    env.databaseUrl = databaseUrl;
    for (let round = 1; round <= opts.rounds; round++) {
      // The floor is measured in every round, next to the cells it is compared with (medianMicro).
      const micro = await runMicroInChild(bundlePath, opts.quick ? 1 : 3);
      microRounds.push(micro);
      console.log(
        `  round ${round} engine floor (in-process): ` +
          micro.map((m) => `${m.name} ${m.microsPerEval.toFixed(1)} µs`).join(', '),
      );
      const offered = new Map<string, number>();
      for (const system of opts.systems) {
        const running = await startSystem(system, env);
        try {
          await verifyParity(running, scenarios, parity);
          for (const scenario of scenarios) {
            const cell = await measureCell(
              running,
              scenario,
              opts,
              offered.get(scenario.name) ?? null,
              round,
              workDir,
              databaseUrl,
            );
            if (system.id === BASELINE) offered.set(scenario.name, cell.offeredDecisionsPerSecond);
            cells.push(cell);
            console.log(
              `  round ${round} ${system.id.padEnd(18)} ${scenario.name.padEnd(13)} ` +
                `${Math.round(cell.decisionsPerSecond).toString().padStart(7)} dec/s  ` +
                `p99 ${cell.latencyMs.p99.toFixed(2)} ms @ ${Math.round(cell.offeredDecisionsPerSecond)}/s` +
                (cell.failed ? `  (${cell.failed} failed: ${JSON.stringify(cell.failures)})` : ''),
            );
          }
        } finally {
          await running.stop();
        }
      }
    }
  });

  const summaries = summarise(cells);
  const micro = medianMicro(microRounds);
  console.log('\nengine floor (in-process, median over rounds):');
  for (const m of micro)
    console.log(`  ${m.name.padEnd(20)} ${m.microsPerEval.toFixed(1).padStart(8)} µs/eval`);
  const goals = targets(summaries, micro);
  console.log(formatTable(summaries, BASELINE));
  console.log('\ntargets (Verdict sync audit vs OPA with decision logs off):');
  for (const t of goals) console.log(`  ${JSON.stringify(t)}`);
  const micros = (n: number) => `${n.toFixed(0)} µs`;
  for (const t of goals) {
    if (typeof t.serverEvalMicros === 'number' && typeof t.engineMicrosPerEval === 'number') {
      console.log(
        `  ${t.scenario}: the policy inside verdict-sync-w1 (median eval_micros of its records) ` +
          `${micros(t.serverEvalMicros)} per evaluation vs ${micros(t.engineMicrosPerEval)} in the hot loop; ` +
          `overhead vs the in-server evaluation ${(t.overheadToServerEvalRatio as number).toFixed(1)}×`,
      );
    }
    for (const [when, key] of [
      ['at saturation', 'breakdownMicrosPerDecision'],
      ['at the offered load', 'breakdownMicrosPerDecisionAtOfferedLoad'],
    ] as const) {
      const b = t[key] as Record<string, number> | null;
      if (!b) continue;
      console.log(
        `  ${t.scenario} ${when}: verdict-sync-w1 CPU per decision ${micros(b.cpuMicros!)} = Node HTTP floor ${micros(
          b.nodeHttpFloor!,
        )} + policy ${micros(b.policy!)} + mask ${micros(b.mask!)} + Verdict's own ${micros(b.verdictOwn!)}`,
      );
    }
  }

  const result = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: machine(opaVersion),
    options: { ...opts, systems: opts.systems.map((s) => s.id) },
    inputs: { source: inputs.source, toolCalls: inputs.toolCalls.length, releases: inputs.releases.length },
    micro,
    microRounds,
    summaries,
    targets: goals,
    cells,
  };
  const out =
    opts.out ??
    path.join(
      root,
      'bench/results',
      `${started.toISOString().slice(0, 10)}${opts.quick ? '-quick' : ''}.json`,
    );
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nresults: ${path.relative(root, out)}`);
  rmSync(workDir, { recursive: true, force: true });
  const failed = failedCells(summaries);
  if (opts.strict && failed.length > 0) {
    console.error(`bench: ${failed.join('; ')}`);
    process.exitCode = 1;
  }
}

// NOTE: every child is in its own process group; kill them all on any way out.
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  killAll();
  process.exit(1);
});
