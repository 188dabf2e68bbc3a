/**
 * How the cost grows with replicas: decisions/s with 1, 2 and 3 Verdict replicas (separate
 * `node src/main.ts` processes, one worker each, `sync` audit) on ONE Postgres database and one
 * Redis, the tool-call scenario at saturation. One load process (bench/load.ts, autocannon) per
 * driven replica; `--connections` (default 32) are spread over them.
 *
 *   node bench/scale.ts [--seconds 5] [--warmup 2] [--replicas 1,2,3] [--json] [--out file]
 *
 * For each replica count it reports decisions/s (2xx only), the CPU of every process class per
 * decision (the Verdict replicas, every `postgres` process, the load generators, the rest of the
 * host) and which of them holds the CPU, what Postgres's backends waited on (pg_stat_activity
 * samples); and the audit write's cost in Postgres per decision: CPU,
 * table + index bytes (pg_total_relation_size of decision_log's partitions) and WAL bytes
 * (pg_current_wal_lsn()), over the exact number of rows the phase stored (the sum of the chain
 * heads' seq, one chain per replica). Postgres's CPU and WAL are the whole server's: an idle
 * interval before the phases prints what the rest of the host adds on its own.
 * `--without-approvals` leaves out the tool calls whose decision opens or finds a human-approval
 * request (a row-locking transaction besides the audit write), so that Postgres's CPU per decision
 * is the audit write's.
 *
 * On a 2-core host shared by Verdict, Postgres and the load generator, the figures are a floor,
 * not a projection. A run with --seconds ≥ 5 writes bench/results/scale-<date>.json; shorter runs
 * write only with --out. Needs Postgres (`--database-url`; the database `verdict_bench_scale` is
 * created and dropped) and Redis (`--redis-url`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { canonicalJson } from '../src/decisions/canonical-json.ts';
import { evaluateDecision } from '../src/decisions/evaluate.ts';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { type Envelope, loadInputs } from './inputs.ts';
import { type LoadResult, runLoadProcess } from './load.ts';
import { buildScenarios, type RequestSpec } from './scenarios.ts';
import {
  BENCH_CALLER,
  cpuSeconds,
  mintToken,
  postgresCpuSecondsSince,
  postgresTicks,
  type RunningSystem,
  runBenchMain,
  startSystem,
  withDatabase,
} from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const CLOCK_TICKS = 100; // USER_HZ on Linux
const BUNDLE = path.join(root, 'policies/bundle/bundle.tar.gz');
const FULL_RUN_SECONDS = 5;

function options() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: String(FULL_RUN_SECONDS) },
      warmup: { type: 'string', default: '2' },
      replicas: { type: 'string', default: '1,2,3' },
      connections: { type: 'string', default: '32' },
      idle: { type: 'string', default: '2', description: 'seconds of idle host measured first' },
      'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
      'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
      'keep-database': { type: 'boolean', default: false },
      'without-approvals': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const replicas = values.replicas.split(',').map(Number);
  if (replicas.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--replicas: e.g. 1,2,3');
  return {
    seconds: Number(values.seconds),
    warmup: Number(values.warmup),
    replicas,
    connections: Number(values.connections),
    idle: Number(values.idle),
    databaseUrl: values['database-url'],
    redisUrl: values['redis-url'],
    keepDatabase: values['keep-database'],
    withoutApprovals: values['without-approvals'],
    json: values.json,
    out: values.out ?? null,
  };
}

type Options = ReturnType<typeof options>;

/**
 * The tool calls whose decision asks for no human approval. A decision that does opens or finds the
 * pending approval request for its binding (agent, tool, arguments) in a transaction that locks that
 * row (src/grants/approval-store.ts): Postgres work besides the audit write, and a row lock that every
 * replica asking about the same binding waits on. Without them, Postgres's figure is the audit write.
 */
export function withoutApprovals(toolCalls: Envelope[], now: Date): Envelope[] {
  const engine = PolicyEngine.fromBundle(parseBundle(readFileSync(BUNDLE)));
  return toolCalls.filter((envelope) => {
    // NOTE: the server attaches grants itself and ignores a client's `grants` field.
    const { grants: _ignored, ...fields } = envelope as Envelope & { grants?: unknown };
    const input = canonicalJson({ ...fields, caller: BENCH_CALLER, now: now.toISOString() });
    const { result } = evaluateDecision(engine, 'native', 'verdict/decision', input);
    return !result.obligations.some((obligation) => obligation.type === 'human_approval');
  });
}

/** CPU seconds of this process's reaped children (cutime + cstime): the load processes of a phase. */
function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

/** Busy CPU seconds of the whole host (every core: all but idle and iowait). */
function hostBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - cpu[3]! - cpu[4]!) / CLOCK_TICKS;
}

/** What the audit tables hold and how far the WAL went, at one moment. */
interface StoreSnapshot {
  rows: number;
  logBytes: number;
  otherBytes: number;
  walLsn: string;
}

async function storeSnapshot(db: pg.Client): Promise<StoreSnapshot> {
  const { rows } = await db.query<{ rows: string; log: string; other: string; lsn: string }>(
    `SELECT (SELECT coalesce(sum(seq), 0) FROM chain_heads)::text AS rows,
            (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits
              WHERE inhparent = 'decision_log'::regclass)::text AS log,
            (pg_total_relation_size('chain_heads') + pg_total_relation_size('decision_rollup_hourly')
              + pg_total_relation_size('release_gates'))::text AS other,
            pg_current_wal_lsn()::text AS lsn`,
  );
  const row = rows[0]!;
  return {
    rows: Number(row.rows),
    logBytes: Number(row.log),
    otherBytes: Number(row.other),
    walLsn: row.lsn,
  };
}

async function walBytes(db: pg.Client, from: string, to: string): Promise<number> {
  const { rows } = await db.query<{ bytes: string }>('SELECT pg_wal_lsn_diff($2, $1)::text AS bytes', [
    from,
    to,
  ]);
  return Number(rows[0]!.bytes);
}

/** Drives the first `n` replicas at once, `connections` spread over them. */
function driveReplicas(
  replicas: RunningSystem[],
  requests: RequestSpec[],
  connections: number,
  seconds: number,
  workDir: string,
): Promise<LoadResult[]> {
  return Promise.all(
    replicas.map((replica, i) =>
      runLoadProcess(
        {
          url: replica.url,
          requests,
          connections: Math.max(1, Math.round(connections / replicas.length)),
          warmupSeconds: 0,
          durationSeconds: seconds,
        },
        path.join(workDir, `load-${i}.json`),
      ),
    ),
  );
}

/** CPU of one process class over a phase: cores used, µs per decision. */
interface CpuShare {
  cores: number;
  microsPerDecision: number;
}

/** One replica count's results. */
interface Phase {
  replicas: number;
  seconds: number;
  decisionsPerSecond: number;
  failed: number;
  statusCodes: Record<string, number>;
  rowsStored: number;
  cpu: { verdict: CpuShare; postgres: CpuShare; load: CpuShare; other: CpuShare; host: CpuShare };
  verdictCoresPerReplica: number[];
  audit: {
    postgresMicrosPerDecision: number;
    logBytesPerDecision: number;
    otherTableBytesPerDecision: number;
    walBytesPerDecision: number;
  };
  /** Postgres backends of this database by state, summed over 100 ms samples (see sampleWaits). */
  postgresWaits: Record<string, number>;
  bottleneck: string;
}

function bottleneckOf(cpu: Phase['cpu'], hostCores: number, replicas: number): string {
  const busy = cpu.host.cores / hostCores;
  const classes = (['verdict', 'postgres', 'load'] as const)
    .map((name) => ({ name, cores: cpu[name].cores }))
    .sort((a, b) => b.cores - a.cores);
  const top = classes[0]!;
  const who =
    top.name === 'verdict'
      ? `the Verdict replicas (${top.cores.toFixed(2)} cores over ${replicas})`
      : top.name === 'postgres'
        ? `Postgres (${top.cores.toFixed(2)} cores)`
        : `the load generators (${top.cores.toFixed(2)} cores)`;
  const others =
    cpu.other.cores >= 0.1 ? `; other processes on the host took ${cpu.other.cores.toFixed(2)} cores` : '';
  return busy >= 0.9
    ? `host CPU-bound (${Math.round(busy * 100)}% of ${hostCores} cores busy); of this benchmark's processes, most CPU: ${who}${others}`
    : `host ${Math.round(busy * 100)}% busy (not CPU-bound: waiting on commits/fsync or locks); most CPU: ${who}${others}`;
}

/**
 * What the phase's Postgres backends were doing, sampled every 100 ms from pg_stat_activity (only
 * this database's active backends): "CPU" when running, else the wait event (IO:WALSync is the
 * commit's fsync, Lock:* a row lock — e.g. two replicas' batches upserting the same rollup rows).
 */
function sampleWaits(db: pg.Client, database: string): { stop(): Promise<Record<string, number>> } {
  const counts: Record<string, number> = {};
  let running = true;
  const loop = (async () => {
    while (running) {
      const { rows } = await db.query<{ wait: string; n: number }>(
        `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, count(*)::int AS n
           FROM pg_stat_activity
          WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()
          GROUP BY 1`,
        [database],
      );
      for (const row of rows) counts[row.wait] = (counts[row.wait] ?? 0) + row.n;
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return counts;
    },
  };
}

async function measurePhase(
  n: number,
  replicas: RunningSystem[],
  requests: RequestSpec[],
  opts: Options,
  db: pg.Client,
  workDir: string,
): Promise<Phase> {
  const driven = replicas.slice(0, n);
  // Warm the replicas about to be driven (JIT, pools) with the same spread of load.
  if (opts.warmup > 0) await driveReplicas(driven, requests, opts.connections, opts.warmup, workDir);

  const before = await storeSnapshot(db);
  const verdictBefore = replicas.map((r) => cpuSeconds(r.pid));
  const pgBefore = postgresTicks();
  const loadBefore = reapedChildrenCpuSeconds();
  const hostBefore = hostBusySeconds();
  const t0 = performance.now();
  const waits = sampleWaits(db, db.database!);
  const results = await driveReplicas(driven, requests, opts.connections, opts.seconds, workDir);
  const wall = (performance.now() - t0) / 1000;
  const waitSamples = await waits.stop();
  const hostCpu = hostBusySeconds() - hostBefore;
  const loadCpu = reapedChildrenCpuSeconds() - loadBefore;
  const pgCpu = postgresCpuSecondsSince(pgBefore);
  const verdictPerReplica = replicas.map((r, i) => cpuSeconds(r.pid) - verdictBefore[i]!);
  const after = await storeSnapshot(db);

  const verdictCpu = verdictPerReplica.reduce((a, b) => a + b, 0);
  const rows = after.rows - before.rows;
  const wal = await walBytes(db, before.walLsn, after.walLsn);
  const share = (cpuSecs: number): CpuShare => ({
    cores: cpuSecs / wall,
    microsPerDecision: rows > 0 ? (cpuSecs * 1e6) / rows : Number.NaN,
  });
  const statusCodes: Record<string, number> = {};
  for (const r of results)
    for (const [code, count] of Object.entries(r.statusCodes))
      statusCodes[code] = (statusCodes[code] ?? 0) + count;
  const cpu = {
    verdict: share(verdictCpu),
    postgres: share(pgCpu),
    load: share(loadCpu),
    other: share(Math.max(0, hostCpu - verdictCpu - pgCpu - loadCpu)),
    host: share(hostCpu),
  };
  return {
    replicas: n,
    seconds: wall,
    decisionsPerSecond: results.reduce((sum, r) => sum + r.ok / r.seconds, 0),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    statusCodes,
    rowsStored: rows,
    cpu,
    verdictCoresPerReplica: verdictPerReplica.map((c) => c / wall),
    audit: {
      postgresMicrosPerDecision: cpu.postgres.microsPerDecision,
      logBytesPerDecision: rows > 0 ? (after.logBytes - before.logBytes) / rows : Number.NaN,
      otherTableBytesPerDecision: rows > 0 ? (after.otherBytes - before.otherBytes) / rows : Number.NaN,
      walBytesPerDecision: rows > 0 ? wal / rows : Number.NaN,
    },
    postgresWaits: waitSamples,
    bottleneck: bottleneckOf(cpu, os.cpus().length, n),
  };
}

/** What the host and Postgres do with no load from us: the noise in the whole-server figures. */
async function idleBackground(seconds: number, db: pg.Client) {
  const before = await storeSnapshot(db);
  const pgBefore = postgresTicks();
  const hostBefore = hostBusySeconds();
  await sleep(seconds * 1000);
  const after = await storeSnapshot(db);
  return {
    seconds,
    hostCores: (hostBusySeconds() - hostBefore) / seconds,
    postgresCores: postgresCpuSecondsSince(pgBefore) / seconds,
    walBytesPerSecond: (await walBytes(db, before.walLsn, after.walLsn)) / seconds,
  };
}

async function scale(opts: Options, databaseUrl: string, workDir: string) {
  const jwtSecret = `scale-${Date.now()}-${'x'.repeat(40)}`;
  // NOTE: startSystem hands the replicas this process's environment: one Redis for all of them
  // (bundle and grant notices), as in a real fleet.
  process.env.REDIS_URL = opts.redisUrl;
  const replicas: RunningSystem[] = [];
  try {
    for (let i = 0; i < Math.max(...opts.replicas); i++) {
      replicas.push(
        await startSystem(
          { id: `verdict-sync-r${i + 1}`, kind: 'verdict', auditMode: 'sync', workers: 1 },
          {
            bundlePath: BUNDLE,
            opaBundleDir: '',
            databaseUrl,
            jwtSecret,
            workDir,
            cpus: null,
          },
        ),
      );
    }
    const started = new Date();
    const inputs = await loadInputs(200, 42);
    if (opts.withoutApprovals) inputs.toolCalls = withoutApprovals(inputs.toolCalls, started);
    const requests = buildScenarios(
      inputs,
      { caller: BENCH_CALLER, now: started.toISOString() },
      mintToken(jwtSecret),
    ).find((s) => s.name === 'tool-call')!.verdict.requests;

    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const idle = await idleBackground(opts.idle, db);
      if (!opts.json) printHeader(opts, idle, inputs.toolCalls.length);
      const phases: Phase[] = [];
      for (const n of opts.replicas) {
        const phase = await measurePhase(n, replicas, requests, opts, db, workDir);
        phases.push(phase);
        if (!opts.json) printPhase(phase, phases[0]!);
      }
      return {
        started: started.toISOString(),
        machine: {
          cpus: os.cpus().length,
          model: os.cpus()[0]?.model ?? '?',
          node: process.version,
          loadAverage: os.loadavg(),
        },
        options: {
          seconds: opts.seconds,
          warmup: opts.warmup,
          connections: opts.connections,
          scenario: 'tool-call',
          withoutApprovals: opts.withoutApprovals,
          toolCalls: inputs.toolCalls.length,
          auditMode: 'sync',
          workersPerReplica: 1,
        },
        idle,
        phases,
      };
    } finally {
      await db.end();
    }
  } finally {
    for (const replica of replicas) await replica.stop();
  }
}

function printHeader(
  opts: Options,
  idle: { hostCores: number; postgresCores: number; walBytesPerSecond: number },
  toolCalls: number,
) {
  console.log(
    `scale: tool call at saturation, sync audit, 1 worker per replica, one Postgres + one Redis; ${opts.seconds} s phases after ${opts.warmup} s warm-up, ${opts.connections} connections spread over the replicas`,
  );
  console.log(
    `inputs: ${toolCalls} tool calls${opts.withoutApprovals ? ', those whose decision asks for a human approval left out (--without-approvals)' : ' (as npm run bench; some open or find an approval request: see --without-approvals)'}`,
  );
  console.log(
    `idle host before the phases: ${idle.hostCores.toFixed(2)} cores busy, Postgres ${idle.postgresCores.toFixed(2)} cores, WAL ${Math.round(idle.walBytesPerSecond).toLocaleString('en-US')} B/s (whole server: counted in the figures below)`,
  );
}

function printPhase(phase: Phase, first: Phase) {
  const c = phase.cpu;
  const us = (share: CpuShare) => Math.round(share.microsPerDecision);
  console.log(
    `\n${phase.replicas} ${phase.replicas === 1 ? 'replica' : 'replicas'}: ${Math.round(phase.decisionsPerSecond).toLocaleString('en-US')} decisions/s (${(phase.decisionsPerSecond / first.decisionsPerSecond).toFixed(2)}× 1 replica), ${phase.rowsStored.toLocaleString('en-US')} rows stored, failed or non-2xx ${phase.failed}`,
  );
  console.log(
    `  CPU µs/dec: Verdict ${us(c.verdict)} · Postgres ${us(c.postgres)} · load ${us(c.load)} · other ${us(c.other)} · host ${us(c.host)}`,
  );
  console.log(
    `  cores: Verdict ${c.verdict.cores.toFixed(2)} (${phase.verdictCoresPerReplica.map((x) => x.toFixed(2)).join(' + ')}) · Postgres ${c.postgres.cores.toFixed(2)} · load ${c.load.cores.toFixed(2)} · other ${c.other.cores.toFixed(2)}`,
  );
  console.log(
    `  audit write in Postgres per decision: ${us(c.postgres)} µs CPU, ${Math.round(phase.audit.logBytesPerDecision)} B decision_log (table + indexes), ${Math.round(phase.audit.otherTableBytesPerDecision)} B heads/rollups, ${Math.round(phase.audit.walBytesPerDecision)} B WAL`,
  );
  const waits = Object.entries(phase.postgresWaits).sort((a, b) => b[1] - a[1]);
  const samples = waits.reduce((sum, [, n]) => sum + n, 0);
  console.log(
    `  Postgres backends (active, 100 ms samples): ${waits.map(([w, n]) => `${w} ${Math.round((n * 100) / samples)}%`).join(', ') || 'none seen'}`,
  );
  console.log(`  bottleneck: ${phase.bottleneck}`);
}

async function main(): Promise<void> {
  const opts = options();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'verdict-scale-'));
  try {
    const result = await withDatabase(opts.databaseUrl, 'verdict_bench_scale', opts.keepDatabase, (url) =>
      scale(opts, url, workDir),
    );
    const out =
      opts.out ??
      (opts.seconds >= FULL_RUN_SECONDS
        ? path.join(root, 'bench/results', `scale-${result.started.slice(0, 10)}.json`)
        : null);
    if (out) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      console.log(
        `\nOn ${result.machine.cpus} cores shared by the replicas, Postgres and the load generators, these figures are a floor, not a projection of a fleet.`,
      );
      if (out) console.log(`results: ${path.relative(process.cwd(), out)}`);
    }
    if (result.phases.some((p) => p.failed > 0)) {
      console.error('scale: requests failed or answered non-2xx');
      process.exitCode = 1;
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (import.meta.main) runBenchMain('scale', main);
