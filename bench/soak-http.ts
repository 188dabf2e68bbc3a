/**
 * Memory soak through HTTP: one Verdict server (`node src/main.ts`, one worker, `sync` audit to its
 * own Postgres database) with a SHADOW revision active, answering `--decisions` tool-call decisions
 * (default 1,000,000) sent by autocannon over keep-alive connections from a separate process.
 *
 *   node bench/soak-http.ts [--decisions 1000000] [--warmup 100000] [--json] [--out file]
 *
 * The server's RSS (its process tree, from /proc) is sampled every `--sample-every` decisions
 * (default 5,000), with V8's heap from the server's GET /metrics beside it. RSS does not move
 * smoothly: in two of three runs on the 2-core host it fell by ~110 MB at once (after ~90,000 and
 * ~175,000 decisions) and climbed back within ~30,000, while V8's reserved heap (the "heap max"
 * column) moved between 170 and 190 MB (the policy engines' wasm memory stays under a MiB:
 * bench/engine-soak.ts). A band around one sample would judge where that sample fell, so "flat" is
 * judged on peaks: after the warm-up (default: the first 100,000 decisions, or a tenth of a shorter
 * run) the run is cut into windows of `--window` decisions (default 200,000; the remainder joins
 * the last window), and every window's peak RSS must be within ±`--band` % (default 10) of the first
 * window's. A leak shows as peaks that climb. Prints one line per `--every` decisions (default
 * 100,000): decisions, RSS MB, heap MB, decisions/s, failures. Exits 1 if RSS was not flat, if any
 * request failed or answered non-2xx, or if the shadow revision did not evaluate every decision (the
 * shadow report's `compared` count against the 2xx answers). A run under 300,000 decisions is a
 * smoke test of the script: its first window still holds the climb from start-up.
 *
 * A full run (at least 1,000,000 decisions) writes bench/results/soak-<date>.json; a shorter one
 * writes a file only when `--out` is given. Needs Postgres (`--database-url`, default the local
 * one): the database `verdict_bench_soak` is created and dropped (`--keep-database` keeps it).
 *
 * The load process is this file again, with `--client <spec.json>`: it drives autocannon for a
 * fixed number of requests and prints a JSON progress line every `--sample-every` answers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
// @ts-expect-error autocannon ships no type declarations
import autocannon from 'autocannon';
import { mintToken as mintAdminToken } from '../src/auth/dev-token.ts';
import { loadInputs } from './inputs.ts';
import { buildScenarios, type RequestSpec } from './scenarios.ts';
import {
  BENCH_CALLER,
  bundleVariant,
  mintToken,
  rssBytes,
  runBenchMain,
  startVerdict,
  withDatabase,
} from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const MB = 1024 * 1024;
const FULL_RUN = 1_000_000;
/** Shorter runs test the script, not memory (see above). */
const SHORTEST_MEMORY_RUN = 300_000;

/** What the load process is asked to do. */
interface ClientSpec {
  url: string;
  requests: RequestSpec[];
  connections: number;
  amount: number;
  reportEvery: number;
}

/** One progress line of the load process. */
interface Progress {
  done: number;
  ok: number;
  failed: number;
  statusCodes: Record<string, number>;
  final: boolean;
}

/** One RSS sample of the server. */
export interface Sample {
  decisions: number;
  seconds: number;
  rssMb: number;
  failed: number;
  /** V8's heap (used / reserved) and external memory, from the server's GET /metrics. */
  heapUsedMb?: number;
  heapTotalMb?: number;
  externalMb?: number;
}

/** The server's own view of its memory (prom-client's default metrics), to explain RSS's shape. */
async function heapOf(url: string): Promise<Pick<Sample, 'heapUsedMb' | 'heapTotalMb' | 'externalMb'>> {
  let text: string;
  try {
    text = await (await fetch(`${url}/metrics`)).text();
  } catch {
    return {}; // a missed scrape leaves the sample without heap figures; RSS is what is judged
  }
  const metric = (name: string) => {
    const match = new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text);
    return match ? Number(match[1]) / MB : undefined;
  };
  return {
    heapUsedMb: metric('nodejs_heap_size_used_bytes'),
    heapTotalMb: metric('nodejs_heap_size_total_bytes'),
    externalMb: metric('nodejs_external_memory_bytes'),
  };
}

// ---------------------------------------------------------------------------------------------
// The load process.

function runClient(file: string): void {
  const spec = JSON.parse(readFileSync(file, 'utf8')) as ClientSpec;
  const statusCodes: Record<string, number> = {};
  let ok = 0;
  let failed = 0;
  let next = spec.reportEvery;
  const report = (final: boolean) => {
    const line: Progress = { done: ok + failed, ok, failed, statusCodes, final };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  };
  const count = () => {
    if (ok + failed >= next) {
      next += spec.reportEvery;
      report(false);
    }
  };
  const instance = autocannon(
    {
      url: spec.url,
      connections: spec.connections,
      amount: spec.amount,
      timeout: 10,
      requests: spec.requests,
    },
    (err: Error | null) => {
      if (err) {
        process.stderr.write(`soak client: ${err.stack}\n`);
        process.exit(1);
      }
      report(true);
    },
  );
  instance.on('response', (_client: unknown, statusCode: number) => {
    statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) ok += 1;
    else failed += 1;
    count();
  });
  instance.on('reqError', () => {
    statusCodes.error = (statusCodes.error ?? 0) + 1;
    failed += 1;
    count();
  });
}

// ---------------------------------------------------------------------------------------------
// The soak.

function options() {
  const { values } = parseArgs({
    options: {
      decisions: { type: 'string', default: String(FULL_RUN) },
      warmup: { type: 'string' },
      every: { type: 'string' },
      'sample-every': { type: 'string', default: '5000' },
      window: { type: 'string' },
      band: { type: 'string', default: '10' },
      connections: { type: 'string', default: '16' },
      'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
      'keep-database': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      client: { type: 'string' },
    },
  });
  const decisions = Number(values.decisions);
  const warmup = Number(values.warmup ?? Math.min(100_000, Math.floor(decisions / 10)));
  const every = Number(values.every ?? Math.min(100_000, Math.max(1, Math.floor(decisions / 10))));
  const sampleEvery = Math.min(Number(values['sample-every']), every);
  const window = Number(
    values.window ?? Math.min(200_000, Math.max(1, Math.floor((decisions - warmup) / 4))),
  );
  if (!(decisions > 0 && warmup >= 0 && warmup < decisions && sampleEvery > 0 && window > 0)) {
    throw new Error('--decisions must be positive and --warmup smaller than it');
  }
  return {
    client: values.client,
    decisions,
    warmup,
    every,
    sampleEvery,
    window,
    band: Number(values.band) / 100,
    connections: Number(values.connections),
    databaseUrl: values['database-url'],
    keepDatabase: values['keep-database'],
    json: values.json,
    out: values.out ?? null,
  };
}

type Options = ReturnType<typeof options>;

/** One window of the run after the warm-up: its highest and lowest RSS sample. */
export interface RssWindow {
  from: number;
  to: number;
  peakMb: number;
  troughMb: number;
}

/**
 * Cuts the samples after `warmup` decisions into windows of `size` decisions (the remainder joins
 * the last window) and keeps each window's peak and trough.
 */
export function rssWindows(samples: Sample[], warmup: number, size: number): RssWindow[] {
  const after = samples.filter((s) => s.decisions > warmup);
  const end = after.at(-1)?.decisions ?? warmup;
  const count = Math.max(1, Math.floor((end - warmup) / size));
  const windows: RssWindow[] = [];
  for (let i = 0; i < count; i++) {
    const from = warmup + i * size;
    const to = i === count - 1 ? end : from + size;
    const inside = after.filter((s) => s.decisions > from && s.decisions <= to).map((s) => s.rssMb);
    if (inside.length > 0)
      windows.push({ from, to, peakMb: Math.max(...inside), troughMb: Math.min(...inside) });
  }
  return windows;
}

/** Runs the load process; calls `onProgress` for every progress line, resolves with the last. */
function drive(spec: ClientSpec, workDir: string, onProgress: (p: Progress) => void): Promise<Progress> {
  const file = path.join(workDir, 'soak-client.json');
  writeFileSync(file, JSON.stringify(spec));
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [import.meta.filename, '--client', file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let last: Progress | null = null;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      last = JSON.parse(line) as Progress;
      onProgress(last);
    });
    child.on('exit', (code) => {
      if (code === 0 && last?.final) resolve(last);
      else reject(new Error(`soak client exited with ${code}`));
    });
  });
}

/** One call to the lifecycle API; a Buffer body is a bundle upload, an object is JSON. */
async function api(url: string, token: string, method: string, pathname: string, body?: Buffer | object) {
  const gzip = Buffer.isBuffer(body);
  const res = await fetch(`${url}${pathname}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body ? { 'content-type': gzip ? 'application/gzip' : 'application/json' } : {}),
    },
    body: body === undefined ? undefined : gzip ? new Uint8Array(body) : JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, any>;
  if (!res.ok) throw new Error(`${method} ${pathname}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function soak(opts: Options, databaseUrl: string, workDir: string) {
  const jwtSecret = `soak-${Date.now()}-${'x'.repeat(40)}`;
  const admin = mintAdminToken(jwtSecret, {
    sub: 'bench-soak',
    ttlSeconds: 6 * 3600,
    scopes: ['bundles:write', 'bundles:read', 'audit:read'],
  });
  const server = await startVerdict({
    id: 'verdict-sync-w1',
    auditMode: 'sync',
    databaseUrl,
    jwtSecret,
    workDir,
  });
  try {
    // The shadow revision: a second revision staged and shadowed through the lifecycle API.
    const staged = await api(
      server.url,
      admin,
      'POST',
      '/v1/bundles',
      readFileSync(bundleVariant('soak-shadow', workDir)),
    );
    const digest = staged.digest as string;
    await api(server.url, admin, 'POST', `/v1/bundles/${digest.slice(7)}/shadow`, { reason: 'memory soak' });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const status = await api(server.url, admin, 'GET', '/v1/bundles/status');
      if (status.replicas.some((r: { shadow: string | null }) => r.shadow === digest)) break;
      if (Date.now() > deadline) throw new Error('the server did not start shadowing in 30 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    const inputs = await loadInputs(500, 42);
    const started = new Date();
    const scenario = buildScenarios(
      inputs,
      { caller: BENCH_CALLER, now: started.toISOString() },
      mintToken(jwtSecret),
    ).find((s) => s.name === 'tool-call')!;
    if (!opts.json) {
      console.log(
        `soak: ${opts.decisions.toLocaleString('en-US')} tool-call decisions, sync audit, 1 worker, shadow ${digest.slice(0, 19)}…, ${opts.connections} connections`,
      );
      console.log(
        `RSS sampled every ${opts.sampleEvery.toLocaleString('en-US')} decisions; warm-up ${opts.warmup.toLocaleString('en-US')}; band ±${opts.band * 100}%`,
      );
      console.log(' decisions   RSS MB  heap MB heap max  decisions/s  failed');
    }

    const samples: Sample[] = [{ decisions: 0, seconds: 0, rssMb: rssBytes(server.pid) / MB, failed: 0 }];
    const t0 = performance.now();
    let lap = { decisions: 0, at: t0 };
    let nextLine = opts.every;
    const scrapes: Promise<unknown>[] = [];
    const final = await drive(
      {
        url: server.url,
        requests: scenario.verdict.requests,
        connections: opts.connections,
        amount: opts.decisions,
        reportEvery: opts.sampleEvery,
      },
      workDir,
      (p) => {
        const now = performance.now();
        const sample: Sample = {
          decisions: p.done,
          seconds: (now - t0) / 1000,
          rssMb: rssBytes(server.pid) / MB,
          failed: p.failed,
        };
        samples.push(sample);
        const scrape = heapOf(server.url).then((heap) => Object.assign(sample, heap));
        scrapes.push(scrape);
        if (!opts.json && (p.done >= nextLine || (p.final && p.done > lap.decisions))) {
          nextLine = (Math.floor(p.done / opts.every) + 1) * opts.every;
          const rate = ((p.done - lap.decisions) * 1000) / (now - lap.at);
          lap = { decisions: p.done, at: now };
          const mb = (value: number | undefined) =>
            (value === undefined ? '?' : value.toFixed(1)).padStart(8);
          scrape.then(() =>
            console.log(
              `${p.done.toLocaleString('en-US').padStart(10)} ${mb(sample.rssMb)} ${mb(sample.heapUsedMb)} ${mb(sample.heapTotalMb)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} ${String(p.failed).padStart(7)}`,
            ),
          );
        }
      },
    );
    const seconds = (performance.now() - t0) / 1000;
    const ended = new Date();
    await Promise.all(scrapes);

    // The shadow really evaluated: every recorded decision of the run carries the shadow's result.
    const report = await api(
      server.url,
      admin,
      'GET',
      `/v1/bundles/shadow/report?from=${encodeURIComponent(started.toISOString())}&to=${encodeURIComponent(new Date(ended.getTime() + 1000).toISOString())}&digest=${digest}`,
    );

    const windows = rssWindows(samples, opts.warmup, opts.window);
    const baseline = windows[0]?.peakMb ?? Number.NaN;
    const peaks = windows.map((w) => w.peakMb);
    const deviation = {
      minPct: (Math.min(...peaks) / baseline - 1) * 100,
      maxPct: (Math.max(...peaks) / baseline - 1) * 100,
    };
    const flat =
      windows.length > 0 &&
      peaks.every((peak) => peak >= baseline * (1 - opts.band) && peak <= baseline * (1 + opts.band));
    const shadowOk = report.compared === final.ok && final.ok > 0;
    return {
      started: started.toISOString(),
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '?', node: process.version },
      options: {
        decisions: opts.decisions,
        warmup: opts.warmup,
        sampleEvery: opts.sampleEvery,
        window: opts.window,
        bandPct: opts.band * 100,
        connections: opts.connections,
        auditMode: 'sync',
        workers: 1,
      },
      shadow: { digest, compared: report.compared as number, flips: report.flips },
      decisions: final.done,
      ok: final.ok,
      failed: final.failed,
      statusCodes: final.statusCodes,
      seconds,
      decisionsPerSecond: final.ok / seconds,
      rss: {
        /** The first post-warm-up window's peak: the level every window's peak is held to. */
        baselineMb: baseline,
        windows,
        troughMb: Math.min(...windows.map((w) => w.troughMb)),
        ...deviation,
      },
      samples,
      targets: {
        rssFlat: flat,
        noFailures: final.failed === 0 && final.ok === opts.decisions,
        shadowEvaluated: shadowOk,
      },
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const opts = options();
  if (opts.client) return runClient(opts.client);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'verdict-soak-'));
  try {
    const result = await withDatabase(opts.databaseUrl, 'verdict_bench_soak', opts.keepDatabase, (url) =>
      soak(opts, url, workDir),
    );
    const { rss, targets } = result;
    const out =
      opts.out ??
      (opts.decisions >= FULL_RUN
        ? path.join(root, 'bench/results', `soak-${result.started.slice(0, 10)}.json`)
        : null);
    if (out) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      for (const w of rss.windows) {
        console.log(
          `RSS ${w.from.toLocaleString('en-US')}–${w.to.toLocaleString('en-US')}: peak ${w.peakMb.toFixed(1)} MB (${((w.peakMb / rss.baselineMb - 1) * 100).toFixed(1)}%), trough ${w.troughMb.toFixed(1)} MB`,
        );
      }
      console.log(
        `RSS peaks after warm-up: ${rss.minPct.toFixed(1)}% / +${rss.maxPct.toFixed(1)}% of the first window's ${rss.baselineMb.toFixed(1)} MB, band ±${opts.band * 100}%: ${targets.rssFlat ? 'flat' : 'NOT FLAT'}`,
      );
      console.log(
        `decisions: ${result.ok.toLocaleString('en-US')} 2xx of ${result.decisions.toLocaleString('en-US')} in ${result.seconds.toFixed(0)} s (${Math.round(result.decisionsPerSecond).toLocaleString('en-US')}/s); failed or non-2xx: ${result.failed} ${JSON.stringify(result.statusCodes)}`,
      );
      console.log(
        `shadow: ${result.shadow.compared.toLocaleString('en-US')} decisions carry the shadow revision's result (of ${result.ok.toLocaleString('en-US')} answered): ${targets.shadowEvaluated ? 'every one' : 'MISSING'}`,
      );
      if (out) console.log(`results: ${path.relative(process.cwd(), out)}`);
    }
    if (!targets.rssFlat || !targets.noFailures || !targets.shadowEvaluated) {
      console.error('soak: FAILED — RSS not flat, failed requests, or decisions without a shadow result');
      if (!targets.rssFlat && opts.decisions < SHORTEST_MEMORY_RUN)
        console.error(
          `soak: (a run under ${SHORTEST_MEMORY_RUN.toLocaleString('en-US')} decisions tests the script, not memory)`,
        );
      process.exitCode = 1;
    } else if (!opts.json) {
      console.log('soak: RSS flat, no failures, every decision shadowed');
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (import.meta.main) runBenchMain('soak', main);
