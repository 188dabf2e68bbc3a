/**
 * The load generator, run as its own process (`node bench/load.ts <spec.json>`) so that it never
 * shares an event loop with a server under test. Drives autocannon with a fixed list of requests
 * (each connection cycles through it) for a bounded time, and prints one JSON line of results.
 *
 * Latency is recorded from autocannon's per-response event rather than its histogram, because the
 * histogram keeps whole milliseconds and the decisions measured here take fractions of one.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
// @ts-expect-error autocannon ships no type declarations
import autocannon from 'autocannon';
import type { RequestSpec } from './scenarios.ts';

/** What one load phase does; written to a file by the runner. */
export interface LoadSpec {
  url: string;
  requests: RequestSpec[];
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Offered load in requests/s over all connections; absent → as fast as the server answers. */
  rate?: number;
}

/** What one load phase measured. */
export interface LoadResult {
  seconds: number;
  ok: number;
  failed: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; mean: number; max: number };
  statusCodes: Record<string, number>;
}

type Instance = { on(event: string, listener: (...args: any[]) => void): void; stop(): void };

function run(spec: LoadSpec, seconds: number, record: boolean): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const statusCodes: Record<string, number> = {};
    let ok = 0;
    let failed = 0;
    const started = performance.now();
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: seconds,
        timeout: 10,
        requests: spec.requests,
        ...(spec.rate ? { overallRate: spec.rate } : {}),
      },
      (err: Error | null, result: { errors: number; timeouts: number }) => {
        if (err) return reject(err);
        const elapsed = (performance.now() - started) / 1000;
        failed += result.errors;
        latencies.sort((a, b) => a - b);
        const at = (q: number) =>
          latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! : 0;
        const mean = latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : 0;
        resolve({
          seconds: elapsed,
          ok,
          failed,
          requestsPerSecond: ok / elapsed,
          latencyMs: { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean, max: latencies.at(-1) ?? 0 },
          statusCodes,
        });
      },
    ) as Instance;
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
      if (statusCode >= 200 && statusCode < 300) {
        ok += 1;
        if (record) latencies.push(responseTime);
      } else {
        failed += 1;
      }
    });
  });
}

/**
 * Runs one load phase in a process of its own (`node bench/load.ts <file>`, so the load never shares
 * an event loop with the caller): writes `spec` to `file` and resolves with the child's JSON line.
 * The child is killed 30 s after the phase should have ended.
 */
export function runLoadProcess(spec: LoadSpec, file: string): Promise<LoadResult> {
  writeFileSync(file, JSON.stringify(spec));
  const timeoutMs = (spec.warmupSeconds + spec.durationSeconds) * 1000 + 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [import.meta.filename, file], {
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

async function main(): Promise<void> {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as LoadSpec;
  if (spec.warmupSeconds > 0) await run(spec, spec.warmupSeconds, false);
  const result = await run(spec, spec.durationSeconds, true);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.main) {
  main().catch((err) => {
    process.stderr.write(`load: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
