/**
 * The new paths cost little (issue 17): what a shadow revision and a waiver add to a decision, and
 * an AuthZEN search over 10,000 candidates. Every figure is a ratio measured in this run, on the
 * same inputs, the median over interleaved rounds; each is printed with its target, met or missed.
 *
 *   node bench/paths.ts [--quick] [--json] [--database-url <url>]
 *
 * 1. Shadow evaluation (target ≤ 1.2× the policy's evaluation):
 *    a. in process (the headline): the decision core (`DecisionService.decide`, nothing recorded)
 *       with and without a shadow engine on the same envelopes; the extra µs per decision divided
 *       by the policy's own evaluation (`evaluateDecision`) on the same inputs;
 *    b. through HTTP (the check): one Verdict server (sync audit, 1 worker, its own database) with a
 *       shadow revision set and cleared through the lifecycle API between phases; the server's CPU
 *       per decision at a fixed load with minus without, divided by the policy's evaluation time
 *       inside the server (median `eval_micros` of its records).
 * 2. A waiver-bearing decision vs one without (target ≤ 1.1×): the same server and tool calls of
 *    one agent over its session budget, with a stored waiver of TOOL-006 for that agent active
 *    (requested and approved through /v1/exceptions: allowed, the violation marked waived) and
 *    revoked (denied by TOOL-006) — the headline, the same envelopes without the waiver — and,
 *    beside it, the same calls within budget (an ordinary allow): server CPU per decision and
 *    p50/p99 at a fixed load, decisions/s at saturation. In process too: the decision core with the
 *    waiver attached as `input.grants` (as StoredGrants does from its cache) or not.
 * 3. AuthZEN resource search over 10,000 candidates, p50/p99 (bench/authzen-search.ts).
 * 4. Guardrails (issue 25, target ≥ 50 %): 10 KB `model.response` decisions/s against tool calls'
 *    through HTTP, each round on a fresh server and database (bench/guardrails.ts).
 *
 * `measurePaths` and `formatPaths` are what bench/run.ts calls at the end of a run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DisabledRecorder } from '../src/audit/memory-recorder.ts';
import type { Scope } from '../src/auth/caller.ts';
import { mintToken as mintScopedToken } from '../src/auth/dev-token.ts';
import { ActiveBundle, loadBundleFile } from '../src/bundles/active.ts';
import { canonicalJson } from '../src/decisions/canonical-json.ts';
import { evaluateDecision } from '../src/decisions/evaluate.ts';
import type { AttachedGrants, DecisionGrants } from '../src/decisions/grants.ts';
import { type DecisionQuery, DecisionService } from '../src/decisions/service.ts';
import type { Caller } from '../src/decisions/types.ts';
import type { PolicyEngine } from '../src/engine/engine.ts';
import { measureSearch, type SearchResult } from './authzen-search.ts';
import { measureResponseVsToolCall, type ResponseVsToolCall } from './guardrails.ts';
import { type Envelope, loadInputs } from './inputs.ts';
import { type LoadResult, type LoadSpec, runLoadProcess } from './load.ts';
import type { RequestSpec } from './scenarios.ts';
import {
  BENCH_CALLER,
  bundleVariant,
  cpuSeconds,
  DEFAULT_BUNDLE,
  killAll,
  mintToken,
  postgresCpuSecondsSince,
  postgresTicks,
  type RunningSystem,
  startVerdict,
  withDatabase,
} from './systems.ts';

const ENTRYPOINT = 'verdict/decision';
const DATABASE = 'verdict_bench_paths';

export const SHADOW_TARGET = 1.2;
export const WAIVER_TARGET = 1.1;
export const SEARCH_CANDIDATES = 10_000;

/** What `measurePaths` needs from the caller (bench/run.ts passes its own). */
export interface PathsOptions {
  quick: boolean;
  /** The Postgres server's admin URL; the database `verdict_bench_paths` is made and dropped. */
  databaseUrl: string;
  /** A directory for server logs, data and load specs (left for the caller to remove). */
  workDir: string;
  /** Progress lines (one per step); none by default. */
  log?: (line: string) => void;
}

/** A measured ratio against its target (lower is better for every ratio here). */
export interface Ratio {
  ratio: number;
  target: number;
  met: boolean;
}

/** Shadow evaluation: the extra cost per decision over the policy's own evaluation. */
export interface ShadowResult {
  inProcess: Ratio & {
    /** Median over rounds, µs per decision (decide, nothing recorded). */
    decideMicros: number;
    decideWithShadowMicros: number;
    /** The policy's own evaluation on the same inputs, µs. */
    policyEvalMicros: number;
    /** Median over rounds of (with − without), µs per decision. */
    extraMicros: number;
    rounds: number;
  };
  http: Ratio & {
    offeredPerSecond: number;
    /** Server CPU µs per decision at the fixed load (median over rounds). */
    cpuMicros: number;
    cpuWithShadowMicros: number;
    /** Median over rounds of the paired difference. */
    extraMicros: number;
    /** Median `eval_micros` of the server's records (the policy inside the server). */
    serverEvalMicros: number;
    /** Median `shadow.eval_micros` of the records made with the shadow on. */
    serverShadowEvalMicros: number;
    /**
     * The records' own view: median `shadow.eval_micros` ÷ median `eval_micros` of the same records
     * (shadow on). The shadow runs right after the active evaluation, on warm caches.
     */
    records: Ratio;
    rounds: number;
  };
}

/** One case of the waiver comparison through HTTP (medians over rounds). */
export interface WaiverSide {
  decisionsPerSecond: number;
  /** Server CPU µs per decision at saturation and at the fixed load. */
  cpuMicros: number;
  cpuMicrosAtLoad: number;
  postgresCpuMicros: number;
  p50Ms: number;
  p99Ms: number;
}

/** A waiver-bearing decision against another (with ÷ other; throughput other ÷ with). */
export interface WaiverRatios {
  /** The headline: server CPU per decision at the fixed load. */
  cpuAtLoad: Ratio;
  cpuAtSaturation: Ratio;
  /** Decisions/s at saturation, other ÷ with: how much slower the waiver-bearing decisions are. */
  throughput: Ratio;
  p50: Ratio;
  p99: Ratio;
}

/**
 * The three cases: `waived`, over-budget tool calls with the stored waiver active (allowed, the
 * violation marked waived); `denied`, the same calls with no waiver (denied by TOOL-006); `plain`,
 * the same calls within budget with no waiver (an ordinary allow).
 */
export interface WaiverResult {
  inProcess: {
    decideMicros: { waived: number; denied: number; plain: number };
    /**
     * The policy's evaluation alone on the input the service builds (with `grants` when the waiver
     * is attached), µs: where the difference in `decideMicros` comes from.
     */
    evalMicros: { waived: number; denied: number; plain: number };
    /** waived ÷ denied (the same envelopes without the waiver): the in-process headline. */
    vsSameEnvelopes: Ratio;
    /** waived ÷ plain (an ordinary allow of the same calls). */
    vsPlainAllow: Ratio;
    rounds: number;
  };
  http: {
    offeredPerSecond: number;
    waived: WaiverSide;
    denied: WaiverSide;
    plain: WaiverSide;
    /** waived vs denied: the same envelopes, same server, the waiver revoked. The headline. */
    vsSameEnvelopes: WaiverRatios;
    /** waived vs plain: an ordinary allow of the same calls within budget. */
    vsPlainAllow: WaiverRatios;
    rounds: number;
  };
}

/** Everything `measurePaths` measured. */
export interface PathsResult {
  quick: boolean;
  shadow: ShadowResult;
  waiver: WaiverResult;
  search: SearchResult & { target: 'reported' };
  /** The 10 KB response in mixed-script prose (bench/guardrails.ts's default: a two-byte string). */
  modelResponse: ResponseVsToolCall;
  /** The same in English prose (`--prose ascii`); measured in full runs, not in `--quick` ones. */
  modelResponseAscii?: ResponseVsToolCall;
  /** Failed or non-2xx requests over every HTTP phase (only 2xx answers are counted in the figures). */
  failedRequests: number;
}

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function ratio(value: number, target: number): Ratio {
  return { ratio: value, target, met: Number.isFinite(value) && value <= target };
}

const CALLER: Caller = BENCH_CALLER;

// ---------------------------------------------------------------------------------------------
// The waiver's inputs: one agent over its session budget (TOOL-006, waivable, medium severity).

const WAIVED_AGENT = 'code-agent';
const WAIVED_CONTROL = 'TOOL-006';

/**
 * code-agent reads files under /workspace/ (allowed), with its session budget (200) exhausted when
 * `overBudget`, else within it.
 */
function waiverCalls(count: number, overBudget: boolean): Envelope[] {
  return Array.from({ length: count }, (_, i) => ({
    subject: { type: 'agent', id: WAIVED_AGENT },
    action: { name: 'tool.call' },
    resource: {
      type: 'tool',
      id: 'read_file',
      properties: { arguments: { path: `/workspace/src/module-${i}/index.ts` } },
    },
    context: {
      session: { id: `s-${i}`, untrusted_content: false, tool_calls: overBudget ? 200 + i : i % 200 },
      data_classification: 'internal',
    },
  }));
}

/** A stored waiver as the cache hands it to the policy (src/grants/waiver-store.ts PolicyWaiver). */
function storedWaiver(): Record<string, unknown> {
  return {
    id: 'exc_bench_paths',
    control: WAIVED_CONTROL,
    subject_id: WAIVED_AGENT,
    resource_id: null,
    action: 'tool.call',
    expires_at: new Date(Date.now() + 10 * 86_400_000).toISOString(),
    approved: true,
  };
}

/**
 * The waivers of StoredGrants.attach without its database: a fixed list indexed by subject, as the
 * WaiverCache holds it. Nothing here needs settling (no approvals).
 */
class FixedWaivers implements DecisionGrants {
  private readonly waivers: Record<string, unknown>[];
  constructor(waivers: Record<string, unknown>[]) {
    this.waivers = waivers;
  }
  attach(envelope: Record<string, unknown>): AttachedGrants | undefined {
    const subject = (envelope.subject as { id?: unknown } | undefined)?.id;
    const relevant = this.waivers.filter((w) => w.subject_id === subject);
    return relevant.length > 0 ? { exceptions: relevant } : undefined;
  }
  async settle(): Promise<[]> {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// In process.

/** µs per call of `run` over `iterations` calls (after the caller's warm-up). */
async function timeAsync(iterations: number, run: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) await run(i);
  return ((performance.now() - t0) * 1000) / iterations;
}

function timeSync(iterations: number, run: (i: number) => unknown): number {
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) run(i);
  return ((performance.now() - t0) * 1000) / iterations;
}

function queriesOf(envelopes: Envelope[]): DecisionQuery[] {
  return envelopes.map((input) => ({
    surface: 'native',
    entrypoint: ENTRYPOINT,
    input,
    caller: CALLER,
    traceId: null,
  }));
}

/**
 * Runs the measurements of `runs` in rounds, rotating their order each round so that none always
 * runs first (JIT, caches, a host that drifts); returns each run's per-round values.
 */
async function rounds(
  count: number,
  runs: Record<string, () => Promise<number> | number>,
): Promise<Record<string, number[]>> {
  const names = Object.keys(runs);
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < count; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length]!;
      out[name]!.push(await runs[name]!());
    }
  }
  return out;
}

/**
 * In process: many short blocks, alternating, and the median of the per-block figures. On a host
 * shared with other work a long block catches a burst of contention whole; short paired blocks
 * keep both sides of a comparison under the same conditions, and the median drops the bursts.
 */
function blocks(quick: boolean): { iterations: number; count: number } {
  return quick ? { iterations: 400, count: 15 } : { iterations: 1_000, count: 41 };
}

async function shadowInProcess(
  active: PolicyEngine,
  shadow: PolicyEngine,
  toolCalls: Envelope[],
  quick: boolean,
): Promise<ShadowResult['inProcess']> {
  const { iterations, count } = blocks(quick);
  const policy = new ActiveBundle(active);
  const plain = new DecisionService({ policy, recorder: new DisabledRecorder() });
  const shadowed = new DecisionService({
    policy,
    recorder: new DisabledRecorder(),
    shadow: { current: () => shadow },
  });
  const queries = queriesOf(toolCalls);
  const now = new Date().toISOString();
  // The policy's own evaluation: the input the service builds (envelope + caller + now), serialised once.
  const inputs = toolCalls.map((e) => canonicalJson({ ...e, caller: CALLER, now }));
  const n = queries.length;
  const decide = (service: DecisionService) => () =>
    timeAsync(iterations, (i) => service.decide(queries[i % n]!));
  const evaluate = () =>
    timeSync(iterations, (i) => evaluateDecision(active, 'native', ENTRYPOINT, inputs[i % n]));
  await rounds(1, { plain: decide(plain), shadowed: decide(shadowed), evaluate }); // warm-up
  const measured = await rounds(count, { plain: decide(plain), shadowed: decide(shadowed), evaluate });
  const extra = median(measured.shadowed!.map((w, r) => w - measured.plain![r]!));
  const policyEvalMicros = median(measured.evaluate!);
  return {
    ...ratio(extra / policyEvalMicros, SHADOW_TARGET),
    decideMicros: median(measured.plain!),
    decideWithShadowMicros: median(measured.shadowed!),
    policyEvalMicros,
    extraMicros: extra,
    rounds: count,
  };
}

async function waiverInProcess(active: PolicyEngine, quick: boolean): Promise<WaiverResult['inProcess']> {
  const { iterations, count } = blocks(quick);
  const policy = new ActiveBundle(active);
  const without = new DecisionService({
    policy,
    recorder: new DisabledRecorder(),
    grants: new FixedWaivers([]),
  });
  const withWaiver = new DecisionService({
    policy,
    recorder: new DisabledRecorder(),
    grants: new FixedWaivers([storedWaiver()]),
  });
  const over = queriesOf(waiverCalls(50, true));
  const within = queriesOf(waiverCalls(50, false));
  // The comparison means something only if the waiver is what changes the answer.
  const check = { denied: await without.decide(over[0]!), waived: await withWaiver.decide(over[0]!) };
  const plainCheck = await without.decide(within[0]!);
  if (
    check.denied.allow ||
    !check.waived.allow ||
    check.waived.result.exceptions[0] !== 'exc_bench_paths' ||
    !plainCheck.allow
  ) {
    throw new Error(
      `waiver inputs: expected a deny without the waiver, a waived allow with it and an allow within budget, got ${JSON.stringify({ ...check, plain: plainCheck })}`,
    );
  }
  const n = over.length;
  const decide = (service: DecisionService, queries: DecisionQuery[]) => () =>
    timeAsync(iterations, (i) => service.decide(queries[i % n]!));
  const now = new Date().toISOString();
  const inputOf = (q: DecisionQuery, grants: AttachedGrants | undefined) =>
    canonicalJson({ ...(q.input as object), caller: CALLER, now, ...(grants ? { grants } : {}) });
  const waivers = new FixedWaivers([storedWaiver()]);
  const evalInputs = {
    waived: over.map((q) => inputOf(q, waivers.attach(q.input as Record<string, unknown>))),
    denied: over.map((q) => inputOf(q, undefined)),
    plain: within.map((q) => inputOf(q, undefined)),
  };
  const evaluate = (inputs: (string | undefined)[]) => () =>
    timeSync(iterations, (i) => evaluateDecision(active, 'native', ENTRYPOINT, inputs[i % n]));
  const runs = {
    waived: decide(withWaiver, over),
    denied: decide(without, over),
    plain: decide(without, within),
    evalWaived: evaluate(evalInputs.waived),
    evalDenied: evaluate(evalInputs.denied),
    evalPlain: evaluate(evalInputs.plain),
  };
  await rounds(1, runs); // warm-up
  const measured = await rounds(count, runs);
  const against = (other: number[]) => median(measured.waived!.map((w, r) => w / other[r]!));
  return {
    decideMicros: {
      waived: median(measured.waived!),
      denied: median(measured.denied!),
      plain: median(measured.plain!),
    },
    evalMicros: {
      waived: median(measured.evalWaived!),
      denied: median(measured.evalDenied!),
      plain: median(measured.evalPlain!),
    },
    vsSameEnvelopes: ratio(against(measured.denied!), WAIVER_TARGET),
    vsPlainAllow: ratio(against(measured.plain!), WAIVER_TARGET),
    rounds: count,
  };
}

// ---------------------------------------------------------------------------------------------
// Through HTTP.

function load(spec: LoadSpec, workDir: string): Promise<LoadResult> {
  return runLoadProcess(spec, path.join(workDir, 'paths-load-spec.json'));
}

interface Phase {
  seconds: number;
  warmupSeconds: number;
  connections: number;
}

interface PhaseResult {
  load: LoadResult;
  /** Server CPU µs per decision over warm-up + window (the requests of both). */
  cpuMicros: number;
  postgresCpuMicros: number;
  /** The measured window (after the warm-up), for reading the records made in it. */
  from: Date;
  to: Date;
}

async function phase(
  server: RunningSystem,
  requests: RequestSpec[],
  phaseOpts: Phase,
  workDir: string,
  rate?: number,
): Promise<PhaseResult> {
  const cpuBefore = cpuSeconds(server.pid);
  const pgBefore = postgresTicks();
  const started = Date.now();
  const result = await load(
    {
      url: server.url,
      requests,
      connections: phaseOpts.connections,
      warmupSeconds: phaseOpts.warmupSeconds,
      durationSeconds: phaseOpts.seconds,
      ...(rate ? { rate } : {}),
    },
    workDir,
  );
  const to = new Date();
  const cpu = cpuSeconds(server.pid) - cpuBefore;
  const pgCpu = postgresCpuSecondsSince(pgBefore);
  // The CPU counters include the warm-up; so does the request count they are divided by.
  const warmed = result.ok * ((phaseOpts.warmupSeconds + result.seconds) / result.seconds);
  return {
    load: result,
    cpuMicros: (cpu * 1e6) / warmed,
    postgresCpuMicros: (pgCpu * 1e6) / warmed,
    from: new Date(started + phaseOpts.warmupSeconds * 1000),
    to,
  };
}

type Api = (method: string, pathname: string, token: string, body?: Buffer | object) => Promise<any>;

function apiOf(url: string): Api {
  return async (method, pathname, token, body) => {
    const res = await fetch(`${url}${pathname}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': Buffer.isBuffer(body) ? 'application/gzip' : 'application/json' } : {}),
      },
      body:
        body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${pathname}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
}

/** Polls until `done` holds (a change the server made is applied), at most 10 s. */
async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`${what}: not applied within 10 s`);
    await sleep(20);
  }
}

/** Median of one numeric expression over the records decided in the windows. */
async function recordedMedian(databaseUrl: string, expression: string, windows: [Date, Date][]) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const values: number[] = [];
    for (const [from, to] of windows) {
      const { rows } = await client.query<{ p50: number | null }>(
        `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ${expression}) AS p50
           FROM decision_log WHERE decided_at >= $1 AND decided_at < $2 AND ${expression} IS NOT NULL`,
        [from, to],
      );
      if (rows[0]?.p50 !== null && rows[0]?.p50 !== undefined) values.push(Number(rows[0].p50));
    }
    return median(values);
  } finally {
    await client.end();
  }
}

async function throughHttp(
  opts: PathsOptions,
  toolCalls: Envelope[],
  log: (line: string) => void,
): Promise<{ shadow: ShadowResult['http']; waiver: WaiverResult['http']; failedRequests: number }> {
  const count = opts.quick ? 2 : 3;
  // Shadow phases are short and need no setup but a toggle: more pairs for a noisy difference.
  const shadowRounds = opts.quick ? 3 : 6;
  const sat: Phase = opts.quick
    ? { seconds: 1.5, warmupSeconds: 0.5, connections: 32 }
    : { seconds: 5, warmupSeconds: 2, connections: 32 };
  const fixed: Phase = { ...sat, warmupSeconds: Math.min(1, sat.warmupSeconds) };
  const secret = randomBytes(32).toString('base64url');
  const workDir = mkdtempSync(path.join(opts.workDir, 'paths-'));
  return withDatabase(opts.databaseUrl, DATABASE, false, async (databaseUrl) => {
    log('paths: starting a Verdict server (sync audit, 1 worker)');
    const server = await startVerdict({
      id: 'verdict-paths-sync-w1',
      auditMode: 'sync',
      databaseUrl,
      jwtSecret: secret,
      workDir,
    });
    try {
      const api = apiOf(server.url);
      const token = (sub: string, scopes: Scope[]) =>
        mintScopedToken(secret, { sub, scopes, ttlSeconds: 6 * 3600 });
      const author = token('bench-author', ['bundles:write', 'bundles:read']);
      const requester = token('bench-requester', ['exceptions:request']);
      const approver = token('bench-approver', ['exceptions:approve']);
      const decisionAuth = {
        authorization: `Bearer ${mintToken(secret)}`,
        'content-type': 'application/json',
      };
      const post = (e: Envelope): RequestSpec => ({
        method: 'POST',
        path: '/v1/decisions',
        headers: decisionAuth,
        body: JSON.stringify(e),
      });
      const toolRequests = toolCalls.map(post);
      const overRequests = waiverCalls(50, true).map(post);
      const withinRequests = waiverCalls(50, false).map(post);
      let failed = 0;
      const count2xx = (p: PhaseResult) => {
        failed += p.load.failed;
        return p;
      };

      // The fixed load for every phase: half of what this server sustains on the tool calls.
      count2xx(await phase(server, toolRequests, sat, workDir)); // warm-up: JIT, pool, caches
      const calibration = count2xx(await phase(server, toolRequests, sat, workDir));
      const rate = Math.max(50, Math.round(calibration.load.requestsPerSecond * 0.5));

      log(`paths: shadow through HTTP at ${rate}/s`);
      // 1b. Shadow: cleared and set through the lifecycle API, alternating which goes first.
      const shadowDigest = (
        await api('POST', '/v1/bundles', author, readFileSync(bundleVariant('paths-shadow', workDir)))
      ).digest as string;
      const servedShadow = async () =>
        ((await api('GET', '/v1/bundles/status', author)).replicas as { shadow: string | null }[]).every(
          (r) => r.shadow === shadowDigest,
        );
      const setShadow = async (on: boolean) => {
        if (on) await api('POST', `/v1/bundles/${shadowDigest.slice(7)}/shadow`, author, { reason: 'bench' });
        else await api('DELETE', '/v1/bundles/shadow?reason=bench', author);
        await until(`shadow ${on ? 'set' : 'cleared'}`, async () => (await servedShadow()) === on);
      };
      const shadowRuns: { off: PhaseResult[]; on: PhaseResult[] } = { off: [], on: [] };
      for (let r = 0; r < shadowRounds; r++) {
        for (const on of r % 2 === 0 ? [false, true] : [true, false]) {
          await setShadow(on);
          shadowRuns[on ? 'on' : 'off'].push(
            count2xx(await phase(server, toolRequests, fixed, workDir, rate)),
          );
        }
      }
      await setShadow(false);
      const onWindows = shadowRuns.on.map((p): [Date, Date] => [p.from, p.to]);
      const serverEvalMicros = await recordedMedian(
        databaseUrl,
        'eval_micros',
        shadowRuns.off.map((p) => [p.from, p.to]),
      );
      const serverShadowEvalMicros = await recordedMedian(
        databaseUrl,
        "(shadow->>'eval_micros')::float",
        onWindows,
      );
      const evalWithShadowOn = await recordedMedian(databaseUrl, 'eval_micros', onWindows);
      const shadowExtra = median(shadowRuns.on.map((p, r) => p.cpuMicros - shadowRuns.off[r]!.cpuMicros));
      const shadow: ShadowResult['http'] = {
        ...ratio(shadowExtra / serverEvalMicros, SHADOW_TARGET),
        offeredPerSecond: rate,
        cpuMicros: median(shadowRuns.off.map((p) => p.cpuMicros)),
        cpuWithShadowMicros: median(shadowRuns.on.map((p) => p.cpuMicros)),
        extraMicros: shadowExtra,
        serverEvalMicros,
        serverShadowEvalMicros,
        records: ratio(serverShadowEvalMicros / evalWithShadowOn, SHADOW_TARGET),
        rounds: shadowRounds,
      };

      log(`paths: waiver-bearing decisions through HTTP at ${rate}/s`);
      // 2. Waiver: a stored TOOL-006 waiver for code-agent, requested, approved and revoked
      // through /v1/exceptions between phases.
      const probe = overRequests[0]!;
      const allows = async () => {
        const res = await fetch(`${server.url}${probe.path}`, {
          method: 'POST',
          headers: probe.headers,
          body: probe.body,
        });
        return ((await res.json()) as { allow: boolean }).allow;
      };
      let waiverId: string | null = null;
      const setWaiver = async (on: boolean) => {
        if (on) {
          if (waiverId) return; // already active (the previous phase had it too)
          const created = await api('POST', '/v1/exceptions', requester, {
            control: WAIVED_CONTROL,
            subject_id: WAIVED_AGENT,
            action: 'tool.call',
            reason: 'bench: waiver-bearing decisions',
            expires_at: new Date(Date.now() + 10 * 86_400_000).toISOString(),
          });
          waiverId = created.id as string;
          await api('POST', `/v1/exceptions/${waiverId}/approve`, approver, { reason: 'bench' });
          await until('waiver approved', allows);
        } else if (waiverId) {
          await api('POST', `/v1/exceptions/${waiverId}/revoke`, approver, { reason: 'bench' });
          waiverId = null;
          await until('waiver revoked', async () => !(await allows()));
        }
      };
      // The three cases in a rotating order each round, the waiver set or revoked as each needs.
      type Case = 'waived' | 'denied' | 'plain';
      const cases: { name: Case; waiver: boolean; requests: RequestSpec[] }[] = [
        { name: 'waived', waiver: true, requests: overRequests },
        { name: 'denied', waiver: false, requests: overRequests },
        { name: 'plain', waiver: false, requests: withinRequests },
      ];
      const waiverRuns: Record<Case, [PhaseResult, PhaseResult][]> = { waived: [], denied: [], plain: [] };
      for (let r = 0; r < count; r++) {
        for (let k = 0; k < cases.length; k++) {
          const { name, waiver, requests } = cases[(r + k) % cases.length]!;
          await setWaiver(waiver);
          const saturation = count2xx(await phase(server, requests, sat, workDir));
          const atLoad = count2xx(await phase(server, requests, fixed, workDir, rate));
          waiverRuns[name].push([saturation, atLoad]);
        }
      }
      await setWaiver(false);
      const side = (runs: [PhaseResult, PhaseResult][]): WaiverSide => ({
        decisionsPerSecond: median(runs.map(([s]) => s.load.requestsPerSecond)),
        cpuMicros: median(runs.map(([s]) => s.cpuMicros)),
        cpuMicrosAtLoad: median(runs.map(([, l]) => l.cpuMicros)),
        postgresCpuMicros: median(runs.map(([s]) => s.postgresCpuMicros)),
        p50Ms: median(runs.map(([, l]) => l.load.latencyMs.p50)),
        p99Ms: median(runs.map(([, l]) => l.load.latencyMs.p99)),
      });
      // Each ratio is the median of the per-round ratios (the two phases of a round are minutes apart at most).
      const against = (other: Case): WaiverRatios => {
        const paired = (f: (w: [PhaseResult, PhaseResult], o: [PhaseResult, PhaseResult]) => number) =>
          ratio(median(waiverRuns.waived.map((w, r) => f(w, waiverRuns[other][r]!))), WAIVER_TARGET);
        return {
          cpuAtLoad: paired(([, w], [, o]) => w.cpuMicros / o.cpuMicros),
          cpuAtSaturation: paired(([w], [o]) => w.cpuMicros / o.cpuMicros),
          throughput: paired(([w], [o]) => o.load.requestsPerSecond / w.load.requestsPerSecond),
          p50: paired(([, w], [, o]) => w.load.latencyMs.p50 / o.load.latencyMs.p50),
          p99: paired(([, w], [, o]) => w.load.latencyMs.p99 / o.load.latencyMs.p99),
        };
      };
      const waiver: WaiverResult['http'] = {
        offeredPerSecond: rate,
        waived: side(waiverRuns.waived),
        denied: side(waiverRuns.denied),
        plain: side(waiverRuns.plain),
        vsSameEnvelopes: against('denied'),
        vsPlainAllow: against('plain'),
        rounds: count,
      };
      return { shadow, waiver, failedRequests: failed };
    } finally {
      await server.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  });
}

// ---------------------------------------------------------------------------------------------

/** Measures the three new paths (see the top of this file); needs Postgres and `opa` on PATH. */
export async function measurePaths(opts: PathsOptions): Promise<PathsResult> {
  const log = opts.log ?? (() => {});
  const inputs = await loadInputs(200, 42);
  const active = await loadBundleFile(DEFAULT_BUNDLE);
  // A second engine of the same policy: a shadow revision is a separate engine, as on a replica.
  const shadowEngine = await loadBundleFile(DEFAULT_BUNDLE);
  log('paths: shadow evaluation, in process');
  const shadowInProc = await shadowInProcess(active, shadowEngine, inputs.toolCalls, opts.quick);
  log('paths: waiver-bearing decisions, in process');
  const waiverInProc = await waiverInProcess(active, opts.quick);
  const http = await throughHttp(opts, inputs.toolCalls, log);
  log(`paths: AuthZEN search over ${SEARCH_CANDIDATES} candidates`);
  const search = await measureSearch({ candidates: SEARCH_CANDIDATES, searches: opts.quick ? 10 : 40 });
  log('paths: 10 KB model.response vs tool call through HTTP');
  const modelResponse = await measureResponseVsToolCall({
    seconds: opts.quick ? 2 : 5,
    rounds: opts.quick ? 1 : 3,
    databaseUrl: opts.databaseUrl,
  });
  let modelResponseAscii: ResponseVsToolCall | undefined;
  if (!opts.quick) {
    log('paths: the same in English prose');
    modelResponseAscii = await measureResponseVsToolCall({
      seconds: 5,
      rounds: 3,
      databaseUrl: opts.databaseUrl,
      prose: 'ascii',
    });
  }
  return {
    quick: opts.quick,
    shadow: { inProcess: shadowInProc, http: http.shadow },
    waiver: { inProcess: waiverInProc, http: http.waiver },
    search: { ...search, target: 'reported' },
    modelResponse,
    ...(modelResponseAscii ? { modelResponseAscii } : {}),
    failedRequests: http.failedRequests + modelResponse.failed + (modelResponseAscii?.failed ?? 0),
  };
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
/** Two decimals, three where two would round a miss onto the target (1.104 → "1.104", not "1.10"). */
const fRatio = (r: Ratio) => (Math.abs(r.ratio - r.target) < 0.005 ? r.ratio.toFixed(3) : f2(r.ratio));
const verdict = (r: Ratio) => `${fRatio(r)}× (target ≤ ${r.target}×) ${r.met ? 'met' : 'MISSED'}`;

/** A model.response measurement against its ≥ 50 % target, with the CPU of both kinds. */
const responseRatio = (mr: ResponseVsToolCall) =>
  `${f1(mr.modelResponsePerSecond)}/s vs ${f1(mr.toolCallPerSecond)}/s = ${(mr.ratio * 100).toFixed(0)} % (target ≥ 50 %) ${mr.met ? 'met' : 'MISSED'}; CPU µs/decision ${f1(mr.modelResponseCpuMicros)} + ${f1(mr.modelResponsePgCpuMicros)} Postgres vs ${f1(mr.toolCallCpuMicros)} + ${f1(mr.toolCallPgCpuMicros)}`;

/** The paths' results as the lines bench/run.ts prints at the end of a run. */
export function formatPaths(result: PathsResult): string {
  const { shadow, waiver, search, modelResponse: mr } = result;
  const s = shadow.inProcess;
  const sh = shadow.http;
  const wi = waiver.inProcess;
  const w = waiver.http;
  const row = (name: string, side: WaiverSide) =>
    `    ${name.padEnd(24)} ${Math.round(side.decisionsPerSecond).toLocaleString('en-US').padStart(11)} ${f1(side.cpuMicros).padStart(11)} ${f1(side.postgresCpuMicros).padStart(10)} ${f1(side.cpuMicrosAtLoad).padStart(12)} ${f2(side.p50Ms).padStart(7)} ${f2(side.p99Ms).padStart(7)}`;
  const ratios = (r: WaiverRatios) =>
    `CPU/dec at load ${verdict(r.cpuAtLoad)}; at saturation ${verdict(r.cpuAtSaturation)}; decisions/s ${verdict(r.throughput)}; p50 ${verdict(r.p50)}; p99 ${verdict(r.p99)}`;
  return [
    'new paths (issue 17): ratios from this run, medians of interleaved rounds',
    '',
    `shadow evaluation vs the policy's own evaluation: ${verdict(s)}`,
    `  in process (tool calls, ${s.rounds} blocks): decide ${f1(s.decideMicros)} µs, with a shadow engine ${f1(s.decideWithShadowMicros)} µs: +${f1(s.extraMicros)} µs over the policy's ${f1(s.policyEvalMicros)} µs`,
    `  through HTTP (sync, 1 worker, ${sh.offeredPerSecond}/s offered, ${sh.rounds} rounds): ${f1(sh.cpuMicros)} → ${f1(sh.cpuWithShadowMicros)} CPU µs/decision, +${f1(sh.extraMicros)} µs over the policy's ${f1(sh.serverEvalMicros)} µs in the server = ${verdict(sh)}`,
    `    the records' own timing (shadow on): shadow eval_micros ÷ eval_micros = ${verdict(sh.records)}`,
    '',
    `waiver-bearing decision vs the same envelopes without the waiver: ${verdict(w.vsSameEnvelopes.cpuAtLoad)} (server CPU per decision at ${w.offeredPerSecond}/s)`,
    `  in process (${wi.rounds} blocks): decide ${f1(wi.decideMicros.waived)} µs waived, ${f1(wi.decideMicros.denied)} µs denied (same calls, no waiver), ${f1(wi.decideMicros.plain)} µs allowed within budget`,
    `    the policy's evaluation alone: ${f1(wi.evalMicros.waived)} / ${f1(wi.evalMicros.denied)} / ${f1(wi.evalMicros.plain)} µs`,
    `    vs the same envelopes ${verdict(wi.vsSameEnvelopes)}; vs an ordinary allow ${verdict(wi.vsPlainAllow)}`,
    `  through HTTP (sync, 1 worker, ${w.rounds} rounds, tool calls of ${WAIVED_AGENT}):`,
    `    ${''.padEnd(24)} ${'decisions/s'.padStart(11)} ${'CPU µs/dec'.padStart(11)} ${'PG µs/dec'.padStart(10)} ${'µs/dec@load'.padStart(12)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)}`,
    row('over budget, waived', w.waived),
    row('over budget, no waiver', w.denied),
    row('within budget, no waiver', w.plain),
    `    vs the same envelopes: ${ratios(w.vsSameEnvelopes)}`,
    `    vs an ordinary allow:  ${ratios(w.vsPlainAllow)}`,
    `  failed or non-2xx requests over all HTTP phases: ${result.failedRequests}`,
    '',
    `AuthZEN resource search over ${search.candidates.toLocaleString('en-US')} candidates (${search.searches} searches, in process): p50 ${f1(search.p50Ms)} ms, p99 ${f1(search.p99Ms)} ms (${f1(search.microsPerCandidate)} µs per candidate) — reported`,
    '',
    `guardrails (issue 25): 10 KB model.response (mixed-script prose) vs tool call through HTTP (sync, 1 worker, 16 connections, ${mr.rounds} rounds): ${responseRatio(mr)}`,
    ...(result.modelResponseAscii
      ? [`  the same in English prose: ${responseRatio(result.modelResponseAscii)}`]
      : []),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    },
  });
  const workDir = mkdtempSync(path.join(tmpdir(), 'verdict-paths-'));
  try {
    const result = await measurePaths({
      quick: values.quick,
      databaseUrl: values['database-url'],
      workDir,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    console.log(values.json ? JSON.stringify(result, null, 2) : formatPaths(result));
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  process.on('exit', killAll);
  main().catch((err) => {
    console.error(`paths: ${err instanceof Error ? err.stack : String(err)}`);
    killAll();
    process.exitCode = 1;
  });
}
