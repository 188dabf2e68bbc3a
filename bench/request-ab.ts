/**
 * The request around the policy, old against new in one run (issue 27): the tool-call decision
 * through HTTP on two Verdict servers — this checkout and an older tree of the same repository
 * (`git archive <ref>` into `.bench-old/<sha>/`, which finds this checkout's node_modules) — with
 * their load phases alternating (old, new, new, old, …) so that a shared host's drift hits both.
 *
 *   node bench/request-ab.ts [--old main] [--new <ref>] [--rounds 4] [--seconds 5] [--rate 600] [--audit off]
 *                            [--connections 16] [--no-saturation] [--old-env K=V …] [--new-env K=V …] [--json]
 *
 * `--old-env`/`--new-env` (repeatable) set a side's environment: with `--old` at this checkout's
 * commit, the two sides differ only in a setting (e.g. `VERDICT_AUDIT_BATCH_WAIT_MS`).
 *
 * Per phase: the server's process CPU per decision (`/proc`, user + system, the load generator in
 * its own process) at a fixed offered load, and decisions/s (2xx only) and CPU per decision at
 * saturation (where report.ts reads the issue's `sync-w1` figure), with every `postgres` process's
 * CPU per decision beside it (the machine's, so other work lands in it too). Printed: the
 * medians per side and the ratios new/old, and each side's overhead over its own policy's
 * evaluation — (CPU per decision − policy − mask) / policy, the policy and mask timed in-process by
 * each tree's bench/engine-micro.ts, as bench/report.ts computes it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadInputs } from './inputs.ts';
import { type LoadResult, runLoadProcess } from './load.ts';
import { buildScenarios } from './scenarios.ts';
import {
  BENCH_CALLER,
  cpuSeconds,
  killAll,
  mintToken,
  postgresCpuSecondsSince,
  postgresTicks,
  type RunningSystem,
  startSystem,
  withDatabase,
} from './systems.ts';
import { treeAt } from './tree-at.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    old: { type: 'string', default: 'main' },
    /** A commit for the new side too (one lever at a time); default: this checkout as it is. */
    new: { type: 'string' },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    rate: { type: 'string', default: '600' },
    audit: { type: 'string', default: 'off' },
    connections: { type: 'string', default: '16' },
    scenario: { type: 'string', default: 'tool-call' },
    'no-saturation': { type: 'boolean', default: false },
    'old-env': { type: 'string', multiple: true, default: [] },
    'new-env': { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});

interface Side {
  name: string;
  dir: string;
  running?: RunningSystem;
  cpuMicros: number[];
  /** CPU per decision at saturation (the issue's target is read there: report.ts, `sync-w1`). */
  satCpuMicros: number[];
  /** Postgres CPU per decision at saturation. */
  satPgMicros: number[];
  /** Records per group-commit batch in each fixed-load phase (audit sync/async only). */
  batch: number[];
  rps: number[];
  p50: number[];
  failed: number;
  policy?: number;
  mask?: number;
  env: Record<string, string>;
}

/** `K=V` settings as an environment. */
function envOf(settings: string[]): Record<string, string> {
  return Object.fromEntries(
    settings.map((setting) => {
      const at = setting.indexOf('=');
      if (at < 1) throw new Error(`expected K=V, got ${JSON.stringify(setting)}`);
      return [setting.slice(0, at), setting.slice(at + 1)];
    }),
  );
}
const label = (env: Record<string, string>) =>
  Object.entries(env)
    .map(([k, v]) => ` ${k}=${v}`)
    .join('');

function micro(dir: string): { policy: number; mask: number } {
  const out = execFileSync(process.execPath, ['bench/engine-micro.ts', '--seconds', '1.5', '--json'], {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const results = JSON.parse(out) as { name: string; microsPerEval: number }[];
  const kind = values.scenario === 'release-gate' ? 'release-gate' : 'tool-call';
  const at = (name: string) => results.find((r) => r.name === `${kind} ${name}`)!.microsPerEval;
  return { policy: at('policy'), mask: at('mask') };
}

/** The server's group-commit batches so far (verdict_audit_batch_size): records and batches. */
async function batches(url: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { sum: read('verdict_audit_batch_size_sum'), count: read('verdict_audit_batch_size_count') };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? Number.NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  process.on('exit', killAll);
  const old = treeAt(values.old);
  const next = values.new ? treeAt(values.new) : null;
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'verdict-request-ab-'));
  const jwtSecret = `request-ab-${'x'.repeat(40)}`;
  const inputs = await loadInputs(200, 42);
  const scenario = buildScenarios(
    inputs,
    { caller: BENCH_CALLER, now: new Date().toISOString() },
    mintToken(jwtSecret),
  ).find((s) => s.name === values.scenario);
  if (!scenario) throw new Error(`unknown scenario ${values.scenario}`);
  const sides: Side[] = [
    {
      name: `old (${old.sha})${label(envOf(values['old-env']))}`,
      dir: old.dir,
      env: envOf(values['old-env']),
      cpuMicros: [],
      satCpuMicros: [],
      satPgMicros: [],
      batch: [],
      rps: [],
      p50: [],
      failed: 0,
    },
    {
      name: `${next ? `new (${next.sha})` : 'new (this checkout)'}${label(envOf(values['new-env']))}`,
      dir: next?.dir ?? root,
      env: envOf(values['new-env']),
      cpuMicros: [],
      satCpuMicros: [],
      satPgMicros: [],
      batch: [],
      rps: [],
      p50: [],
      failed: 0,
    },
  ];
  for (const side of sides) Object.assign(side, micro(side.dir));
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const per = scenario.verdict.decisionsPerRequest;
  // NOTE: a database per side, so that neither server does the other's share of a cluster's work
  // (the leases and periodic jobs one replica runs for all). A/A runs read 0.81–1.15× CPU per
  // decision either way with a shared database or not (bench/README.md, session 14): the noise.
  const admin = values['database-url'];
  const measure = async (oldUrl: string, newUrl: string): Promise<void> => {
    for (const side of sides) {
      side.running = await startSystem(
        {
          id: `ab-${side === sides[0] ? 'old' : 'new'}`,
          kind: 'verdict',
          auditMode: values.audit as 'off',
          workers: 1,
        },
        {
          bundlePath: path.join(side.dir, 'policies/bundle/bundle.tar.gz'),
          opaBundleDir: '',
          databaseUrl: side === sides[0] ? oldUrl : newUrl,
          jwtSecret,
          workDir,
          cpus: null,
          verdictRoot: side.dir,
          verdictEnv: side.env,
        },
      );
    }
    const phase = async (
      side: Side,
      rate: number | undefined,
    ): Promise<{ result: LoadResult; cpu: number; pgCpu: number; batch: number }> => {
      const running = side.running!;
      const spec = {
        url: running.url,
        requests: scenario.verdict.requests,
        connections: Number(values.connections),
      };
      await runLoadProcess(
        { ...spec, warmupSeconds: 0, durationSeconds: warmup, rate },
        path.join(workDir, 'w.json'),
      );
      const batchesBefore = await batches(running.url);
      const before = cpuSeconds(running.pid);
      const pgBefore = postgresTicks();
      const result = await runLoadProcess(
        { ...spec, warmupSeconds: 0, durationSeconds: seconds, rate },
        path.join(workDir, 'spec.json'),
      );
      const cpu = cpuSeconds(running.pid) - before;
      const pgCpu = postgresCpuSecondsSince(pgBefore);
      const batchesAfter = await batches(running.url);
      const batch = (batchesAfter.sum - batchesBefore.sum) / (batchesAfter.count - batchesBefore.count);
      return { result, cpu, pgCpu, batch };
    };
    for (let round = 1; round <= Number(values.rounds); round++) {
      const order = round % 2 ? [sides[0]!, sides[1]!] : [sides[1]!, sides[0]!];
      for (const side of order) {
        const fixed = await phase(side, Number(values.rate));
        const decisions = (fixed.result.ok + fixed.result.failed) * per;
        side.cpuMicros.push((fixed.cpu / decisions) * 1e6);
        side.p50.push(fixed.result.latencyMs.p50);
        if (Number.isFinite(fixed.batch)) side.batch.push(fixed.batch);
        side.failed += fixed.result.failed;
        let line = `round ${round} ${side.name.padEnd(20)} CPU/decision ${side.cpuMicros.at(-1)!.toFixed(0)} µs @ ${Math.round(fixed.result.requestsPerSecond * per)}/s, p50 ${fixed.result.latencyMs.p50.toFixed(2)} ms`;
        if (Number.isFinite(fixed.batch)) line += ` (${fixed.batch.toFixed(1)} records per batch)`;
        if (!values['no-saturation']) {
          const sat = await phase(side, undefined);
          side.rps.push(sat.result.requestsPerSecond * per);
          const satDecisions = (sat.result.ok + sat.result.failed) * per;
          side.satCpuMicros.push((sat.cpu / satDecisions) * 1e6);
          side.satPgMicros.push((sat.pgCpu / satDecisions) * 1e6);
          side.failed += sat.result.failed;
          line += `; saturation ${Math.round(side.rps.at(-1)!)} decisions/s, CPU/decision ${side.satCpuMicros.at(-1)!.toFixed(0)} µs + Postgres ${side.satPgMicros.at(-1)!.toFixed(0)} µs`;
        }
        if (!values.json) console.log(line);
      }
    }
    for (const side of sides) await side.running!.stop();
  };
  await withDatabase(admin, 'verdict_bench_request_ab_old', false, (oldUrl) =>
    withDatabase(admin, 'verdict_bench_request_ab_new', false, (newUrl) => measure(oldUrl, newUrl)),
  );

  const summary = sides.map((s) => {
    const cpu = median(s.cpuMicros);
    return {
      side: s.name,
      cpuMicrosPerDecision: cpu,
      saturationCpuMicrosPerDecision: median(s.satCpuMicros),
      saturationPostgresMicrosPerDecision: median(s.satPgMicros),
      recordsPerBatch: median(s.batch),
      decisionsPerSecond: median(s.rps),
      p50Ms: median(s.p50),
      failed: s.failed,
      policyMicros: s.policy!,
      maskMicros: s.mask!,
      overhead: (cpu - s.policy! - s.mask!) / s.policy!,
    };
  });
  const [o, n] = summary as [(typeof summary)[0], (typeof summary)[0]];
  // Each round's new/old pair was measured minutes apart at most: the median of the per-round
  // ratios cancels more of a shared host's drift than the ratio of the medians.
  const paired = (xs: number[], ys: number[]) => median(xs.map((x, i) => ys[i]! / x));
  const ratios = {
    cpuPerDecision: n.cpuMicrosPerDecision / o.cpuMicrosPerDecision,
    decisionsPerSecond: n.decisionsPerSecond / o.decisionsPerSecond,
    cpuPerDecisionPaired: paired(sides[0]!.cpuMicros, sides[1]!.cpuMicros),
    saturationCpuPerDecision: n.saturationCpuMicrosPerDecision / o.saturationCpuMicrosPerDecision,
    saturationCpuPerDecisionPaired: paired(sides[0]!.satCpuMicros, sides[1]!.satCpuMicros),
    saturationPostgresPerDecisionPaired: paired(sides[0]!.satPgMicros, sides[1]!.satPgMicros),
    decisionsPerSecondPaired: paired(sides[0]!.rps, sides[1]!.rps),
  };
  const load = os.loadavg()[0]!.toFixed(1);
  if (values.json) {
    console.log(JSON.stringify({ options: values, loadAverage: Number(load), summary, ratios }, null, 2));
    return;
  }
  console.log(
    `\n${values.scenario}, audit ${values.audit}, medians of ${values.rounds} rounds (load average now ${load}):`,
  );
  for (const s of summary) {
    console.log(
      `  ${s.side.padEnd(20)} CPU/decision ${s.cpuMicrosPerDecision.toFixed(0)} µs, ${Number.isNaN(s.decisionsPerSecond) ? '-' : Math.round(s.decisionsPerSecond)} decisions/s, p50 ${s.p50Ms.toFixed(2)} ms, ` +
        `${Number.isNaN(s.recordsPerBatch) ? '' : `${s.recordsPerBatch.toFixed(1)} records per batch, `}policy ${s.policyMicros.toFixed(1)} µs + mask ${s.maskMicros.toFixed(1)} µs → overhead ${s.overhead.toFixed(1)}×, failed ${s.failed}`,
    );
  }
  console.log(
    `  new/old: CPU per decision ${ratios.cpuPerDecision.toFixed(2)}× (median of per-round ratios ${ratios.cpuPerDecisionPaired.toFixed(2)}×), ` +
      `decisions/s ${Number.isNaN(ratios.decisionsPerSecond) ? '-' : `${ratios.decisionsPerSecond.toFixed(2)}× (paired ${ratios.decisionsPerSecondPaired.toFixed(2)}×)`}`,
  );
  if (!values['no-saturation']) {
    console.log(
      `  at saturation: CPU per decision ${summary.map((s) => s.saturationCpuMicrosPerDecision.toFixed(0)).join(' → ')} µs, ` +
        `${ratios.saturationCpuPerDecision.toFixed(2)}× (median of per-round ratios ${ratios.saturationCpuPerDecisionPaired.toFixed(2)}×); ` +
        `Postgres ${summary.map((s) => s.saturationPostgresMicrosPerDecision.toFixed(0)).join(' → ')} µs (paired ${ratios.saturationPostgresPerDecisionPaired.toFixed(2)}×)`,
    );
  }
}

await main();
