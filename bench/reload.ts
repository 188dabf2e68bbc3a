/**
 * Policy reload across a fleet: three Verdict processes (`node src/main.ts`) on one Postgres and one
 * Redis, a steady load of decisions on all three, and N activations (default 50) alternating two
 * bundles. For each activation and replica it measures the time from the activation's commit
 * (`state.updated_at` of the activation's answer, Postgres's clock, same host) until that replica
 * answers a decision on the new revision. Prints p50 / p99 / max and the count of failed or non-2xx
 * decisions during the run (targets: p99 < 1 s, zero failures). Then the cost of shadow evaluation
 * per decision, in process: evaluating the shadow revision through the same core, relative to the
 * policy's own evaluation time (target < 1.2×).
 *
 *   npm run bench:reload [-- --activations 50 --load 4]
 *
 * Needs Postgres at 127.0.0.1:5432 (TEST_DATABASE_URL) and Redis at 127.0.0.1:6379 (TEST_REDIS_URL).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { mintToken } from '../src/auth/dev-token.ts';
import { canonicalJson } from '../src/decisions/canonical-json.ts';
import { evaluateDecision } from '../src/decisions/evaluate.ts';
import { divergence, evaluateShadow } from '../src/decisions/shadow.ts';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { freePort } from '../test/support/net.ts';
import { bundleVariant, DEFAULT_BUNDLE } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRET = randomBytes(32).toString('base64url');

const { values } = parseArgs({
  options: {
    activations: { type: 'string', default: '50' },
    load: { type: 'string', default: '4', description: 'concurrent decision loops per replica' },
    'shadow-iterations': { type: 'string', default: '20000' },
  },
});
const ACTIVATIONS = Number(values.activations);
const LOAD = Number(values.load);

interface Replica {
  port: number;
  child: ChildProcess;
}

async function startReplica(env: Record<string, string>, dataDir: string): Promise<Replica> {
  const port = await freePort();
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      PORT: String(port),
      HOST: '127.0.0.1',
      VERDICT_DATA_DIR: dataDir,
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      VERDICT_LOG_FORMAT: 'json',
      VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`replica on ${port} exited during start`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/ready`)).ok) return { port, child };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`replica on ${port} not ready in 60 s`);
    await sleep(100);
  }
}

const decisionToken = mintToken(SECRET, {
  sub: 'bench',
  ttlSeconds: 6 * 3600,
  scopes: ['decisions:evaluate'],
});
const adminToken = mintToken(SECRET, {
  sub: 'bench-author',
  ttlSeconds: 6 * 3600,
  scopes: ['bundles:write', 'bundles:read'],
});
const ENVELOPE = JSON.stringify({
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'tool.call' },
  resource: { type: 'tool', id: 'search_kb' },
  context: { session: { tool_calls: 2 }, data_classification: 'internal' },
});

async function decide(port: number): Promise<{ ok: boolean; revision: string | null }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v1/decisions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${decisionToken}`, 'content-type': 'application/json' },
      body: ENVELOPE,
    });
    if (res.status !== 200) {
      await res.arrayBuffer();
      return { ok: false, revision: null };
    }
    const body = (await res.json()) as { policy: { revision: string } };
    return { ok: true, revision: body.policy.revision };
  } catch {
    return { ok: false, revision: null };
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'verdict-reload-'));
  const bundles = { a: bundleVariant('reload-a', work), b: bundleVariant('reload-b', work) };
  const dbName = `verdict_bench_reload_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${dbName}`;
  const replicas: Replica[] = [];
  try {
    const env = {
      DATABASE_URL: url.toString(),
      REDIS_URL,
      VERDICT_BUNDLE: bundles.a,
      VERDICT_AUDIT_MODE: 'async',
    };
    for (let i = 0; i < 3; i++)
      replicas.push(await startReplica(env, mkdtempSync(path.join(work, `r${i}-`))));
    const ports = replicas.map((r) => r.port);
    const api = async (method: string, pathname: string, body?: Buffer | object) => {
      const res = await fetch(`http://127.0.0.1:${ports[0]}${pathname}`, {
        method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(body
            ? { 'content-type': Buffer.isBuffer(body) ? 'application/gzip' : 'application/json' }
            : {}),
        },
        body:
          body === undefined
            ? undefined
            : Buffer.isBuffer(body)
              ? new Uint8Array(body)
              : JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, any>;
      if (!res.ok) throw new Error(`${method} ${pathname}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const digests = {
      a: (await api('GET', '/v1/bundles/status')).desired.active as string,
      b: (await api('POST', '/v1/bundles', readFileSync(bundles.b))).digest as string,
    };

    // The steady load: LOAD loops per replica, counting every failed or non-2xx decision.
    let running = true;
    let decided = 0;
    let failed = 0;
    const loops = ports.flatMap((port) =>
      Array.from({ length: LOAD }, async () => {
        while (running) {
          const { ok } = await decide(port);
          decided += 1;
          if (!ok) failed += 1;
        }
      }),
    );

    const propagation: number[] = [];
    const started = performance.now();
    for (let i = 0; i < ACTIVATIONS; i++) {
      const target = i % 2 === 0 ? 'b' : 'a';
      const revision = target === 'b' ? 'reload-b' : 'reload-a';
      const answer = await api('POST', `/v1/bundles/${digests[target].slice(7)}/activate`, {
        reason: `bench ${i}`,
      });
      const committedAt = Date.parse(answer.state.updated_at);
      await Promise.all(
        ports.map(async (port) => {
          for (;;) {
            const { ok, revision: seen } = await decide(port);
            if (ok && seen === revision) {
              propagation.push(Date.now() - committedAt);
              return;
            }
            if (Date.now() - committedAt > 10_000) throw new Error(`replica ${port} did not follow in 10 s`);
          }
        }),
      );
      await sleep(50);
    }
    running = false;
    await Promise.all(loops);
    const seconds = (performance.now() - started) / 1000;
    propagation.sort((x, y) => x - y);

    console.log(
      `reload: 3 replicas, ${ACTIVATIONS} activations alternating two bundles, ${LOAD} decision loops per replica`,
    );
    console.log(
      `propagation from commit to each replica answering on the new revision (ms): p50 ${percentile(propagation, 50)}  p99 ${percentile(propagation, 99)}  max ${propagation.at(-1)}  (n = ${propagation.length})`,
    );
    console.log(
      `decisions during the run: ${decided} in ${seconds.toFixed(1)} s (${Math.round(decided / seconds)}/s), failed or non-2xx: ${failed}`,
    );
    await replicaSwapTimes(ports);
    const p99ok = percentile(propagation, 99) < 1_000;
    console.log(
      `targets: p99 < 1000 ms ${p99ok ? 'met' : 'MISSED'}; zero failed decisions ${failed === 0 ? 'met' : 'MISSED'}`,
    );
    shadowCost(Number(values['shadow-iterations']));
    if (!p99ok || failed > 0) process.exitCode = 1;
  } finally {
    for (const replica of replicas) replica.child.kill('SIGTERM');
    await sleep(1_500);
    for (const replica of replicas) if (replica.child.exitCode === null) replica.child.kill('SIGKILL');
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The replicas' own view (verdict_bundle_propagation_seconds: commit → swap done, before any request
 * sees it), summed over the three: the client-side figure above adds one decision's round trip.
 */
async function replicaSwapTimes(ports: number[]): Promise<void> {
  const buckets = new Map<number, number>();
  let count = 0;
  for (const port of ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const match of text.matchAll(
      /^verdict_bundle_propagation_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm,
    )) {
      const le = match[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[1]);
      buckets.set(le, (buckets.get(le) ?? 0) + Number(match[2]));
    }
    const total = /^verdict_bundle_propagation_seconds_count (\d+)$/m.exec(text);
    count += Number(total?.[1] ?? 0);
  }
  const bound = (p: number) => {
    for (const [le, n] of [...buckets].sort((x, y) => x[0] - y[0]))
      if (n >= (p / 100) * count) return le * 1000;
    return Number.NaN;
  };
  console.log(
    `replica side, commit → swapped (ms, histogram bucket bounds): p50 ≤ ${bound(50)}  p99 ≤ ${bound(99)}  (n = ${count})`,
  );
}

/**
 * The cost shadow mode adds per decision, in process: one more pass through the evaluation core on
 * the shadow revision (plus the divergence check), against the policy's own evaluation time.
 */
function shadowCost(iterations: number): void {
  const bundle = parseBundle(readFileSync(DEFAULT_BUNDLE));
  const active = PolicyEngine.fromBundle(bundle);
  const shadow = PolicyEngine.fromBundle(parseBundle(readFileSync(DEFAULT_BUNDLE)));
  const input = canonicalJson({
    ...JSON.parse(ENVELOPE),
    caller: { sub: 'bench', iss: null, clientId: null, scopes: ['decisions:evaluate'] },
    now: new Date().toISOString(),
  });
  const time = (run: () => void) => {
    for (let i = 0; i < 2_000; i++) run();
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) run();
    return ((performance.now() - t0) * 1000) / iterations;
  };
  const ownRun = () => evaluateDecision(active, 'native', 'verdict/decision', input);
  const shadowRun = () => divergence(true, evaluateShadow(shadow, 'native', 'verdict/decision', input));
  // Each measured twice, interleaved, the second kept: JIT warm-up must not favour either.
  time(ownRun);
  time(shadowRun);
  const own = time(ownRun);
  const extra = time(shadowRun);
  console.log(
    `shadow cost per decision: ${extra.toFixed(1)} µs against the policy's own evaluation ${own.toFixed(1)} µs = ${(extra / own).toFixed(2)}× (target < 1.2×)`,
  );
}

main().catch((err) => {
  console.error(`reload: failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
