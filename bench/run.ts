/**
 * Verdict vs its peers, `opa run --server` and the Cerbos PDP: same machine, same inputs, same run.
 *
 *   npm run bench                 # full run (3 rounds; ~20 min on 2 cores)
 *   npm run bench -- --quick      # smoke run (1 round, short phases; ~2 min)
 *   npm run bench -- --quick --strict --systems … --out <file>   # what CI runs: exit 1 on any failure
 *   npm run bench -- --rounds 5 --seconds 10 --systems opa-off,verdict-sync-w2 --scenarios tool-call
 *
 * For every round, system and scenario: a saturation phase (closed loop, many connections: the
 * decisions/s the server sustains, and the CPU it spends per decision), then a fixed-load phase at
 * a rate of `--load-fraction` (default 50%) of the best peer's saturation rate for that scenario in
 * that round (latency percentiles). The peers (OPA, Cerbos) therefore run first in each round: all
 * their saturation phases, then, started again, their fixed-load phases; then Verdict and the floor.
 * Medians over rounds are printed and written to bench/results/<date>.json, with issue 17's
 * targets. See bench/README.md for what is measured and why.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import canonicalize from 'canonicalize';
import { type ParityTally, type PolicyResult, tallyParity } from './cerbos/parity.ts';
import { CERBOS_POLICY_DIR, compileCerbosPolicies } from './cerbos/pdp.ts';
import type { MicroResult } from './engine-micro.ts';
import { loadInputs } from './inputs.ts';
import { type LoadResult, type LoadSpec, runLoadProcess } from './load.ts';
import { opaServerBundleDir } from './opa-bundle.ts';
import { formatPaths, measurePaths, type PathsResult } from './paths.ts';
import {
  type CellResult,
  computeTargets,
  failedCells,
  formatTable,
  formatTargets,
  medianMicro,
  type Peers,
  summarise,
} from './report.ts';
import { buildScenarios, type RequestSpec, type Scenario, type ScenarioRequests } from './scenarios.ts';
import {
  BENCH_CALLER,
  cpuSeconds,
  isPeer,
  mintToken,
  postgresCpuSecondsSince,
  postgresTicks,
  type RunningSystem,
  recordedEvalMicros,
  runBenchMain,
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
  { id: 'cerbos-audit', kind: 'cerbos', audit: 'file' },
  { id: 'cerbos-off', kind: 'cerbos', audit: 'off' },
  { id: 'verdict-sync-w1', kind: 'verdict', auditMode: 'sync', workers: 1 },
  { id: 'verdict-sync-w2', kind: 'verdict', auditMode: 'sync', workers: 2 },
  { id: 'verdict-async-w2', kind: 'verdict', auditMode: 'async', workers: 2 },
  { id: 'verdict-off-w2', kind: 'verdict', auditMode: 'off', workers: 2 },
  { id: 'verdict-off-w1', kind: 'verdict', auditMode: 'off', workers: 1 },
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
  /** Measure the new paths (bench/paths.ts) after the systems. */
  paths: boolean;
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
      /** Skip bench/paths.ts (shadow, waiver, AuthZEN search, model.response) after the systems (the CI smoke run). */
      'skip-paths': { type: 'boolean', default: false },
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
    paths: !values['skip-paths'],
  };
}

/** Runs the load generator in its own process and returns what it measured. */
function load(spec: LoadSpec, workDir: string): Promise<LoadResult> {
  return runLoadProcess(spec, path.join(workDir, 'load-spec.json'));
}

/** A system's requests for a scenario; null where it has none (Cerbos on the OPA data API). */
function requestsFor(scenario: Scenario, system: SystemSpec): ScenarioRequests | null {
  if (system.kind === 'opa') return scenario.opa;
  if (system.kind === 'cerbos') return scenario.cerbos;
  return scenario.verdict;
}

function nonSuccess(...results: LoadResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    for (const [code, n] of Object.entries(r.statusCodes))
      if (!code.startsWith('2')) out[code] = (out[code] ?? 0) + n;
  }
  return out;
}

/** What the saturation phase of a cell measured. */
type Saturation = Omit<
  CellResult,
  'offeredDecisionsPerSecond' | 'latencyMs' | 'failed' | 'failures' | 'fixedCpuMicrosPerDecision'
> & { result: LoadResult };

/** The connections of a scenario's phases: a batch request carries 20 decisions, so fewer. */
function connectionsFor(decisionsPerRequest: number, opts: Options): number {
  // A batch request carries 20 decisions: fewer connections keep the decisions in flight comparable.
  return decisionsPerRequest > 1 ? Math.max(4, Math.round(opts.connections / 4)) : opts.connections;
}

/** One scenario on one running system, closed loop: decisions/s and CPU per decision. */
async function measureSaturation(
  running: RunningSystem,
  scenario: Scenario,
  opts: Options,
  round: number,
  workDir: string,
  databaseUrl: string,
): Promise<Saturation> {
  const { requests, decisionsPerRequest } = requestsFor(scenario, running.spec)!;
  const base = { url: running.url, requests, connections: connectionsFor(decisionsPerRequest, opts) };
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
  return {
    system: running.spec.id,
    scenario: scenario.name,
    round,
    decisionsPerSecond,
    cpuMicrosPerDecision,
    postgresCpuMicrosPerDecision,
    peakRssBytes: rss.stop(),
    ...(serverEvalMicros !== undefined ? { serverEvalMicros } : {}),
    result: saturation,
  };
}

/**
 * The fixed offered load after a saturation phase: latency percentiles at `offeredDecisions`/s, the
 * same rate for every system in the round. Returns the whole cell.
 */
async function measureFixedLoad(
  running: RunningSystem,
  scenario: Scenario,
  opts: Options,
  offeredDecisions: number,
  workDir: string,
  saturation: Saturation,
): Promise<CellResult> {
  const { requests, decisionsPerRequest } = requestsFor(scenario, running.spec)!;
  const base = { url: running.url, requests, connections: connectionsFor(decisionsPerRequest, opts) };
  const rss = sampleRss(running.pid);
  const fixedCpuBefore = cpuSeconds(running.pid);
  const fixedWarmup = Math.min(1, opts.warmupSeconds);
  const fixed = await load(
    {
      ...base,
      warmupSeconds: fixedWarmup,
      durationSeconds: opts.seconds,
      rate: Math.max(1, Math.round(offeredDecisions / decisionsPerRequest)),
    },
    workDir,
  );
  // The same CPU per decision at the fixed offered load, where every system serves the same rate
  // and none is saturated (at saturation a server slower than its client also pays for waking it).
  const fixedRequests = fixed.ok * ((fixedWarmup + fixed.seconds) / fixed.seconds);
  const fixedCpuMicrosPerDecision =
    ((cpuSeconds(running.pid) - fixedCpuBefore) * 1e6) / (fixedRequests * decisionsPerRequest);
  const { result, ...measured } = saturation;
  return {
    ...measured,
    fixedCpuMicrosPerDecision,
    offeredDecisionsPerSecond: fixed.requestsPerSecond * decisionsPerRequest,
    latencyMs: { p50: fixed.latencyMs.p50, p90: fixed.latencyMs.p90, p99: fixed.latencyMs.p99 },
    failed: result.failed + fixed.failed,
    failures: nonSuccess(result, fixed),
    peakRssBytes: Math.max(saturation.peakRssBytes, rss.stop()),
  };
}

/** Sends one request; a 503 (Verdict shedding load on a busy machine right after start) is retried. */
async function ask(url: string, req: RequestSpec): Promise<{ status: number; text: string }> {
  const send = () => fetch(url + req.path, { method: req.method, headers: req.headers, body: req.body });
  let res = await send();
  for (let retry = 0; res.status === 503 && retry < 10; retry++) {
    await res.text();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    res = await send();
  }
  return { status: res.status, text: await res.text() };
}

/**
 * Before measuring: every scenario answers 200 on the system, and on the shared /v1/data request
 * the system's results equal OPA's — the same policy, not merely the same route. Cerbos is checked
 * on every input against OPA's results instead (verifyCerbosParity).
 */
async function verifyParity(running: RunningSystem, scenarios: Scenario[], reference: Map<string, string>) {
  for (const scenario of scenarios) {
    const requests = requestsFor(scenario, running.spec)?.requests ?? [];
    for (const req of requests.slice(0, 20)) {
      const { status, text } = await ask(running.url, req);
      if (status !== 200) throw new Error(`${running.spec.id} ${scenario.name}: HTTP ${status}: ${text}`);
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

/** The inputs a scenario decides: the tool calls (tool-call, batch-20, opa-data) or the release gates. */
const inputSetOf = (scenario: string) => (scenario === 'release-gate' ? 'release-gate' : 'tool-call');

/**
 * OPA's full result for every tool-call and release-gate input, in input order: what Cerbos's
 * answers are checked against. Taken from `opa-off` (the baseline, which runs first).
 */
async function opaResults(running: RunningSystem, all: Scenario[]): Promise<Map<string, PolicyResult[]>> {
  const out = new Map<string, PolicyResult[]>();
  for (const name of ['tool-call', 'release-gate']) {
    const scenario = all.find((s) => s.name === name)!;
    const results: PolicyResult[] = [];
    for (const req of scenario.opa.requests) {
      const { status, text } = await ask(running.url, req);
      if (status !== 200) throw new Error(`${running.spec.id} ${name}: HTTP ${status}: ${text}`);
      results.push((JSON.parse(text) as { result: PolicyResult }).result);
    }
    out.set(name, results);
  }
  return out;
}

/**
 * Cerbos against OPA on every input of every scenario it runs (bench/cerbos/parity.ts): fails when
 * Cerbos's allow/deny differs on an input whose deciding control the Cerbos policy expresses, and
 * counts the inputs OPA denied only on controls it does not express.
 */
async function verifyCerbosParity(
  running: RunningSystem,
  scenarios: Scenario[],
  opa: Map<string, PolicyResult[]>,
  print: boolean,
): Promise<Record<string, ParityTally>> {
  const tallies: Record<string, ParityTally> = {};
  for (const scenario of scenarios) {
    const cerbos = scenario.cerbos;
    if (!cerbos) {
      if (print) console.log(`  ${running.spec.id} ${scenario.name}: n/a (Cerbos has no OPA data API)`);
      continue;
    }
    const reference = opa.get(inputSetOf(scenario.name))!;
    const expected: PolicyResult[] = [];
    const allowed: boolean[] = [];
    for (const [i, req] of cerbos.requests.entries()) {
      const { status, text } = await ask(running.url, req);
      if (status !== 200) throw new Error(`${running.spec.id} ${scenario.name}: HTTP ${status}: ${text}`);
      const { results } = JSON.parse(text) as { results: { actions: Record<string, string> }[] };
      const inputs = cerbos.inputIndexes[i]!;
      if (results.length !== inputs.length)
        throw new Error(
          `${running.spec.id} ${scenario.name}: ${results.length} results for ${inputs.length} resources`,
        );
      results.forEach((r, k) => {
        expected.push(reference[inputs[k]!]!);
        const effects = Object.values(r.actions);
        allowed.push(effects.length > 0 && effects.every((e) => e === 'EFFECT_ALLOW'));
      });
    }
    const tally = tallyParity(expected, allowed);
    tallies[scenario.name] = tally;
    if (print || tally.disagreements.length > 0) {
      const byControl = Object.entries(tally.notExpressibleByControl)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ');
      console.log(
        `  ${running.spec.id} parity ${scenario.name}: ${tally.inputs} decisions, ` +
          `${tally.agreeAllow + tally.agreeDeny} agree with OPA (${tally.agreeAllow} allow, ${tally.agreeDeny} deny), ` +
          `${tally.notExpressible} denied by OPA only on controls the Cerbos policy does not express` +
          (byControl ? ` (${byControl})` : '') +
          `, ${tally.disagreements.length} disagreements`,
      );
    }
    if (tally.disagreements.length > 0) {
      throw new Error(
        `${running.spec.id} disagrees with OPA on ${scenario.name} inputs whose deciding control it expresses: ` +
          JSON.stringify(tally.disagreements.slice(0, 5)),
      );
    }
  }
  return tallies;
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
  const allScenarios = buildScenarios(inputs, server, mintToken(jwtSecret));
  const scenarios = allScenarios.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  console.log(
    `verdict bench: ${opts.rounds} round(s), ${opts.seconds}s phases, ${opts.connections} connections`,
  );
  console.log(`inputs: ${inputs.source}; systems: ${opts.systems.map((s) => s.id).join(', ')}`);

  // The peers run first in every round: the best peer's saturation sets everyone's fixed load.
  const peers = opts.systems.filter(isPeer);
  const others = opts.systems.filter((s) => !isPeer(s));
  const peerIds: Peers = {
    opa: peers.filter((s) => s.kind === 'opa').map((s) => s.id),
    cerbos: peers.filter((s) => s.kind === 'cerbos').map((s) => s.id),
  };
  // Cerbos's policies compile and pass their tests before any Cerbos server starts.
  const cerbosPolicyTests = peerIds.cerbos.length > 0 ? compileCerbosPolicies() : null;
  if (cerbosPolicyTests)
    console.log(
      `cerbos compile ${path.relative(root, CERBOS_POLICY_DIR)}: ${cerbosPolicyTests.passed} of ` +
        `${cerbosPolicyTests.tests} policy tests passed`,
    );

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
  let opaReference: Map<string, PolicyResult[]> | null = null;
  const cerbosParity: Record<string, Record<string, ParityTally>> = {};
  const fixedLoads: {
    round: number;
    scenario: string;
    bestPeer: string;
    bestPeerDecisionsPerSecond: number;
    offeredDecisionsPerSecond: number;
  }[] = [];
  const applicable = (system: SystemSpec) => scenarios.filter((s) => requestsFor(s, system) !== null);
  const key = (system: SystemSpec, scenario: Scenario) => `${system.id}\0${scenario.name}`;
  const withSystem = async (system: SystemSpec, fn: (running: RunningSystem) => Promise<void>) => {
    const running = await startSystem(system, env);
    try {
      await fn(running);
    } finally {
      await running.stop();
    }
  };
  const checkParity = async (running: RunningSystem, round: number) => {
    await verifyParity(running, scenarios, parity);
    if (running.spec.id === BASELINE && !opaReference && peerIds.cerbos.length > 0)
      opaReference = await opaResults(running, allScenarios);
    if (running.spec.kind === 'cerbos') {
      if (!opaReference)
        throw new Error(`${BASELINE} must run before Cerbos (its results are the reference)`);
      cerbosParity[running.spec.id] = await verifyCerbosParity(running, scenarios, opaReference, round === 1);
    }
  };
  const logCell = (round: number, cell: CellResult) =>
    console.log(
      `  round ${round} ${cell.system.padEnd(18)} ${cell.scenario.padEnd(13)} ` +
        `${Math.round(cell.decisionsPerSecond).toString().padStart(7)} dec/s  ` +
        `p99 ${cell.latencyMs.p99.toFixed(2)} ms @ ${Math.round(cell.offeredDecisionsPerSecond)}/s` +
        (cell.failed ? `  (${cell.failed} failed: ${JSON.stringify(cell.failures)})` : ''),
    );
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
      // 1. Every peer's saturation.
      const saturations = new Map<string, Saturation>();
      for (const system of peers) {
        await withSystem(system, async (running) => {
          await checkParity(running, round);
          for (const scenario of applicable(system)) {
            const saturation = await measureSaturation(running, scenario, opts, round, workDir, databaseUrl);
            saturations.set(key(system, scenario), saturation);
          }
        });
      }
      // 2. The fixed load of the round: a fraction of the best peer's saturation, per scenario.
      const offered = new Map<string, number>();
      for (const scenario of scenarios) {
        const best = peers
          .flatMap((p) => saturations.get(key(p, scenario)) ?? [])
          .sort((x, y) => y.decisionsPerSecond - x.decisionsPerSecond)[0];
        if (!best) continue;
        offered.set(scenario.name, best.decisionsPerSecond * opts.loadFraction);
        fixedLoads.push({
          round,
          scenario: scenario.name,
          bestPeer: best.system,
          bestPeerDecisionsPerSecond: best.decisionsPerSecond,
          offeredDecisionsPerSecond: best.decisionsPerSecond * opts.loadFraction,
        });
        console.log(
          `  round ${round} ${scenario.name}: best peer ${best.system} ${Math.round(best.decisionsPerSecond)} ` +
            `dec/s; fixed load ${Math.round(best.decisionsPerSecond * opts.loadFraction)}/s`,
        );
      }
      // 3. Every peer again (started fresh) at that load.
      for (const system of peers) {
        await withSystem(system, async (running) => {
          for (const scenario of applicable(system)) {
            const cell = await measureFixedLoad(
              running,
              scenario,
              opts,
              offered.get(scenario.name)!,
              workDir,
              saturations.get(key(system, scenario))!,
            );
            cells.push(cell);
            logCell(round, cell);
          }
        });
      }
      // 4. Verdict and the floor: saturation, then the same fixed load.
      for (const system of others) {
        await withSystem(system, async (running) => {
          await checkParity(running, round);
          for (const scenario of applicable(system)) {
            const saturation = await measureSaturation(running, scenario, opts, round, workDir, databaseUrl);
            const rate = offered.get(scenario.name) ?? saturation.decisionsPerSecond * opts.loadFraction;
            const cell = await measureFixedLoad(running, scenario, opts, rate, workDir, saturation);
            cells.push(cell);
            logCell(round, cell);
          }
        });
      }
    }
  });

  const summaries = summarise(cells);
  const micro = medianMicro(microRounds);
  console.log('\nengine floor (in-process, median over rounds):');
  for (const m of micro)
    console.log(`  ${m.name.padEnd(20)} ${m.microsPerEval.toFixed(1).padStart(8)} µs/eval`);
  const goals = computeTargets(summaries, micro, peerIds);
  console.log(formatTable(summaries, BASELINE, peerIds));
  console.log('');
  const micros = (n: number) => `${n.toFixed(0)} µs`;
  for (const t of goals) {
    if (
      t.serverEvalMicros !== null &&
      t.engineMicrosPerEval !== null &&
      t.overheadToServerEvalRatio !== null
    ) {
      console.log(
        `  ${t.scenario}: the policy inside verdict-sync-w1 (median eval_micros of its records) ` +
          `${micros(t.serverEvalMicros)} per evaluation vs ${micros(t.engineMicrosPerEval)} in the hot loop; ` +
          `overhead vs the in-server evaluation ${t.overheadToServerEvalRatio.toFixed(1)}×`,
      );
    }
    for (const [when, b] of [
      ['at saturation', t.breakdownMicrosPerDecision],
      ['at the offered load', t.breakdownMicrosPerDecisionAtOfferedLoad],
    ] as const) {
      if (!b) continue;
      console.log(
        `  ${t.scenario} ${when}: verdict-sync-w1 CPU per decision ${micros(b.cpuMicros)} = Node HTTP floor ${micros(
          b.nodeHttpFloor,
        )} + policy ${micros(b.policy)} + mask ${micros(b.mask)} + Verdict's own ${micros(b.verdictOwn)}`,
      );
    }
  }
  console.log(`\n${formatTargets(goals)}`);

  // The new paths (shadow evaluation, waiver-bearing decisions, AuthZEN search, 10 KB model.response), in the same run.
  let paths: PathsResult | null = null;
  if (opts.paths) {
    console.log('');
    paths = await measurePaths({
      quick: opts.quick,
      databaseUrl: opts.databaseUrl,
      workDir,
      log: (line) => console.log(line),
    });
    console.log(`\n${formatPaths(paths)}`);
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
    peers: peerIds,
    fixedLoads,
    cerbosPolicyTests,
    cerbosParity,
    targets: goals,
    paths,
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
  if (paths && paths.failedRequests > 0) failed.push(`paths: ${paths.failedRequests} failed requests`);
  if (opts.strict && failed.length > 0) {
    console.error(`bench: ${failed.join('; ')}`);
    process.exitCode = 1;
  }
}

runBenchMain('bench', main);
