import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import * as tar from 'tar';
import { freePort } from '../test/support/net.ts';
import { cerbosBinary, cerbosConfig } from './cerbos/pdp.ts';

const root = path.resolve(import.meta.dirname, '..');

/**
 * One system under test: Verdict in an audit mode and worker count, OPA with or without decision
 * logs, or the Cerbos PDP with its file audit log on or off.
 */
export type SystemSpec =
  | { id: string; kind: 'verdict'; auditMode: 'sync' | 'async' | 'off'; workers: number }
  | { id: string; kind: 'opa'; decisionLogs: 'off' | 'console' }
  | { id: string; kind: 'cerbos'; audit: 'file' | 'off' }
  /** Not a PDP: bench/floor-server.ts, what a request costs in Node before any PDP work. */
  | { id: string; kind: 'floor' };

/** The peers Verdict is measured against: the other PDPs (not Verdict, not the Node floor). */
export function isPeer(spec: SystemSpec): boolean {
  return spec.kind === 'opa' || spec.kind === 'cerbos';
}

/** A started system, on loopback. */
export interface RunningSystem {
  spec: SystemSpec;
  url: string;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

const BENCH_SUB = 'bench-agent-runtime';

/** The caller Verdict derives from the bench token; OPA's inputs carry the same object. */
export const BENCH_CALLER = { sub: BENCH_SUB, iss: null, clientId: null, scopes: ['decisions:evaluate'] };

/**
 * An HS256 bearer token with scope decisions:evaluate. Hand-rolled (a dozen lines of node:crypto)
 * because this is a test client's token, not verification: the server's JWT library checks it.
 */
export function mintToken(secret: string): string {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({
    sub: BENCH_SUB,
    scope: 'decisions:evaluate',
    iat: now,
    exp: now + 6 * 3600,
  })}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

async function waitHealthy(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${url} exited during start; log:\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${url} did not become healthy in 30 s; log:\n${tail(logFile)}`);
    await sleep(100);
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

const live = new Set<ChildProcess>();

/**
 * Runs a benchmark script's `main`: every server it started (each in its own process group) is
 * killed on any way out — normal exit, Ctrl-C, SIGTERM, or a failure, which exits 1 naming `name`.
 */
export function runBenchMain(name: string, main: () => Promise<void>): void {
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
  main().catch((err) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.stack : String(err)}\n`);
    killAll();
    process.exit(1);
  });
}

/** Kills every process group this module started; called on exit, even on failure. */
export function killAll(): void {
  for (const child of live) {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timedOut = await Promise.race([exited.then(() => false), sleep(10_000).then(() => true)]);
      if (timedOut) process.kill(-child.pid, 'SIGKILL');
    }
    live.delete(child);
  };
}

/** Environment and paths a run shares between systems. */
export interface SystemEnv {
  bundlePath: string;
  opaBundleDir: string;
  databaseUrl: string;
  jwtSecret: string;
  workDir: string;
  /** `taskset -c <cpus>` for every server; null → no pinning. */
  cpus: string | null;
  /** Extra node flags for Verdict (bench/profile.ts passes --cpu-prof). */
  verdictNodeArgs?: string[];
  /** Where Verdict's `src/main.ts` is run from (bench/request-ab.ts runs an older tree); default: this checkout. */
  verdictRoot?: string;
  /** Verdict's entry point (default `src/main.ts`; an A/B run points at another checkout's). */
  verdictMain?: string;
  /** Extra environment for Verdict (bench/request-ab.ts's `--old-env`/`--new-env`). */
  verdictEnv?: Record<string, string>;
}

function launch(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  cpus: string | null,
  cwd: string = root,
) {
  const out = openSync(logFile, 'a');
  const [cmd, argv] = cpus ? ['taskset', ['-c', cpus, command, ...args]] : [command, args];
  // NOTE: detached → its own process group, so stop() and killAll() reach cluster workers too.
  const child = spawn(cmd, argv, { cwd, env, stdio: ['ignore', out, out], detached: true });
  live.add(child);
  return child;
}

/** The committed default bundle (what `npm run bench` and the single-server benches run on). */
export const DEFAULT_BUNDLE = path.join(root, 'policies/bundle/bundle.tar.gz');

/**
 * The committed bundle under another revision, written to `<dir>/<revision>.tar.gz` (its path is
 * returned): a distinct digest with the same policy, for a second revision to activate, shadow or
 * reload (bench/reload.ts, soak-http.ts, paths.ts).
 */
export function bundleVariant(revision: string, dir: string): string {
  const tree = path.join(dir, revision);
  mkdirSync(tree, { recursive: true });
  tar.x({ file: DEFAULT_BUNDLE, cwd: tree, sync: true });
  const manifest = JSON.parse(readFileSync(path.join(tree, '.manifest'), 'utf8'));
  manifest.revision = revision;
  writeFileSync(path.join(tree, '.manifest'), JSON.stringify(manifest));
  const out = path.join(dir, `${revision}.tar.gz`);
  tar.c({ gzip: true, file: out, cwd: tree, sync: true, portable: true }, ['.']);
  return out;
}

/**
 * One Verdict server with one worker on the committed bundle, unpinned: what the benches that
 * measure a single server start (bench/mcp-proxy.ts, sdk-call.ts, profile.ts, paths.ts, …).
 */
export function startVerdict(
  options: {
    id: string;
    auditMode: 'sync' | 'async' | 'off';
    databaseUrl: string;
    jwtSecret: string;
    workDir: string;
  } & Pick<SystemEnv, 'verdictNodeArgs' | 'verdictMain'>,
): Promise<RunningSystem> {
  const { id, auditMode, ...env } = options;
  return startSystem(
    { id, kind: 'verdict', auditMode, workers: 1 },
    { bundlePath: DEFAULT_BUNDLE, opaBundleDir: '', cpus: null, ...env },
  );
}

/** Starts one system and waits until it answers its health endpoint. */
export async function startSystem(spec: SystemSpec, env: SystemEnv): Promise<RunningSystem> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(env.workDir, `${spec.id}.log`);
  let child: ChildProcess;
  let health: string;
  if (spec.kind === 'opa') {
    const args = ['run', '--server', '--addr', `127.0.0.1:${port}`, '--bundle', env.opaBundleDir];
    // NOTE: console decision logs are written by OPA's logger at info level; with --log-level error
    // OPA drops them, so the logging variant runs at info (output goes to a file, not a terminal).
    if (spec.decisionLogs === 'console')
      args.push('--log-level', 'info', '--set', 'decision_logs.console=true');
    else args.push('--log-level', 'error');
    child = launch('opa', args, { ...process.env }, logFile, env.cpus);
    health = `${url}/health?bundles`;
  } else if (spec.kind === 'cerbos') {
    // The file backend writes decision logs to the run's temp dir (removed at the end of the run).
    const config = path.join(env.workDir, `${spec.id}.cerbos.yaml`);
    const auditFile = spec.audit === 'file' ? path.join(env.workDir, `${spec.id}-audit.log`) : null;
    writeFileSync(config, cerbosConfig(port, await freePort(), auditFile));
    child = launch(
      cerbosBinary(),
      ['server', `--config=${config}`, '--log-level=error'],
      { ...process.env },
      logFile,
      env.cpus,
    );
    health = `${url}/_cerbos/health`;
  } else if (spec.kind === 'floor') {
    child = launch(
      process.execPath,
      ['bench/floor-server.ts'],
      { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
      logFile,
      env.cpus,
    );
    health = `${url}/health`;
  } else {
    child = launch(
      process.execPath,
      [...(env.verdictNodeArgs ?? []), env.verdictMain ?? 'src/main.ts'],
      {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        VERDICT_BUNDLE: env.bundlePath,
        VERDICT_AUDIT_MODE: spec.auditMode,
        VERDICT_WORKERS: String(spec.workers),
        VERDICT_DATA_DIR: path.join(env.workDir, `${spec.id}-data`),
        DATABASE_URL: env.databaseUrl,
        JWT_SECRET: env.jwtSecret,
        NODE_ENV: 'production',
        ...env.verdictEnv,
      },
      logFile,
      env.cpus,
      env.verdictRoot,
    );
    health = `${url}/health/ready`;
  }
  await waitHealthy(health, child, logFile);
  return { spec, url, pid: child.pid!, logFile, stop: stopper(child) };
}

/** Every pid in the process tree rooted at `pid` (cluster workers, the taskset'd server). */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim();
        if (children) pids.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // the process exited between reads
    }
  }
  return pids;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) used so far by a process tree. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {
      // gone
    }
  }
  return ticks / CLOCK_TICKS;
}

/**
 * CPU ticks (user + system) of every process named `postgres` on the machine, by pid: the
 * backends serving Verdict's pool plus the WAL writer, checkpointer and background writer.
 */
export function postgresTicks(): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // gone, or not ours to read
    }
  }
  return ticks;
}

/**
 * Postgres CPU seconds used since `before` (a postgresTicks() snapshot). Backends that exited in
 * between are not counted; Verdict's pool keeps its connections open, so its backends are.
 */
export function postgresCpuSecondsSince(before: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, now] of postgresTicks()) ticks += now - (before.get(pid) ?? 0);
  return ticks / CLOCK_TICKS;
}

/** Resident set size of a process tree, in bytes. */
export function rssBytes(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (match) kb += Number(match[1]);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}

/** Samples a process tree's RSS every 200 ms; `stop()` returns the peak. */
export function sampleRss(pid: number): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 200);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

/**
 * Runs `fn` with a fresh database `name` on the Postgres server of `adminUrl` (dropped first if a
 * previous run left it) and drops it afterwards unless `keep`.
 */
export async function withDatabase<T>(
  adminUrl: string,
  name: string,
  keep: boolean,
  fn: (url: string) => Promise<T>,
) {
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `Postgres at ${adminUrl} is needed for the sync/async audit modes: ${(err as Error).message}`,
    );
  }
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    if (!keep) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

/**
 * The median `eval_micros` of the decisions a server recorded between `from` and `to`: the
 * policy's evaluation time as the service measured it inside the server (src/decisions/service.ts
 * times every evaluation and stores it in the record). Undefined when nothing was recorded.
 */
export async function recordedEvalMicros(
  databaseUrl: string,
  from: Date,
  to: Date,
): Promise<number | undefined> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ p50: number | null }>(
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY eval_micros) AS p50
         FROM decision_log WHERE decided_at >= $1 AND decided_at < $2`,
      [from, to],
    );
    return rows[0]?.p50 ?? undefined;
  } finally {
    await client.end();
  }
}
