/**
 * Guardrails on text (issue 25): what scanning costs a decision, and whether it stays flat.
 *
 *   node bench/guardrails.ts [--quick] [--scans <n>] [--http-seconds <s>] [--rounds <n>] [--prose mixed|ascii]
 *                            [--database-url <url>]
 *
 * 1. In process (target: p99 ≤ 1 ms): a 10 KB `model.response` (prose with a secret, an email
 *    address and a card number planted) scanned and decided by the decision core
 *    (`DecisionService.decide`, nothing recorded), p50/p99 over interleaved blocks; beside it the
 *    scan alone, and a tool call through the same core (the path that never scans).
 * 2. Through HTTP (target: ≥ 50 % of the tool call's decisions/s): `--rounds` Verdict servers in
 *    turn (default 3; sync audit, 1 worker, each on a fresh database), each saturated by tool calls
 *    and then by 10 KB `model.response` decisions; the medians of the rounds and each round's ratio
 *    (one round moves by ±10 points on a shared 2-core host). `--prose ascii` sends an English-only
 *    response instead of the default mixed-script one (Prose), here and in `--ab-base`/`--profile`.
 * 3. Memory (target: flat): `--scans` scans (default 1,000,000) of a 1 KB response with findings;
 *    the heap after a forced GC at every tenth, growth from the first sample to the last.
 *    Needs `--expose-gc` (the script re-runs itself with it).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DisabledRecorder } from '../src/audit/memory-recorder.ts';
import { ActiveBundle, loadBundleFile } from '../src/bundles/active.ts';
import { type DecisionQuery, DecisionService } from '../src/decisions/service.ts';
import { ContentScanner } from '../src/guardrails/scan.ts';
import { runLoadProcess } from './load.ts';
import type { RequestSpec } from './scenarios.ts';
import {
  BENCH_CALLER,
  cpuSeconds,
  killAll,
  mintToken,
  postgresCpuSecondsSince,
  postgresTicks,
  startVerdict,
  withDatabase,
} from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const BUNDLE = path.join(root, 'policies/bundle/bundle.tar.gz');

/**
 * The response's prose. `mixed` (the default) holds a Japanese sentence and an emoji, so the whole
 * text is a two-byte string in V8 — every pass that encodes it to UTF-8 (the hashes, the wire) takes
 * the slow path; `ascii` is the same prose in English only, as most of an English model's output is.
 */
export type Prose = 'mixed' | 'ascii';

const OPENING =
  'Thanks for reaching out. The refund for order 88231 was issued on 2026-11-20 and should appear within ' +
  'five business days (version 2.14.1 of the billing service handled it). ';
const PROSE: Record<Prose, string> = {
  mixed: `${OPENING}返金は処理済みです 🙂. `,
  ascii: `${OPENING}The refund is processed. `,
};

/** A response of about `bytes` characters with a secret, an email address and a card number planted. */
export function response(bytes: number, prose: Prose = 'mixed'): string {
  const planted =
    ' Your temporary key is AKIAQWERTYUIOPASDFGH; write to dana.kowalski@corp-mail.io; card 4539 1488 0343 6467. ';
  let text = '';
  while (text.length + planted.length < bytes) text += PROSE[prose];
  const half = Math.floor(text.length / 2);
  return (text.slice(0, half) + planted + text.slice(half)).slice(0, bytes);
}

/** A `model.response` decision's envelope around `content` (also bench/record-cost.ts's `--kind model-response`). */
export const responseEnvelope = (content: string) => ({
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'model.response' },
  resource: { type: 'model', id: 'support-llm', properties: { content } },
  context: { destination: 'user', data_classification: 'internal' },
});

const toolEnvelope = {
  subject: { type: 'agent', id: 'code-agent' },
  action: { name: 'tool.call' },
  resource: { type: 'tool', id: 'read_file', properties: { arguments: { path: '/workspace/src/main.ts' } } },
  context: { session: { untrusted_content: false, tool_calls: 3 }, data_classification: 'internal' },
};

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * p50 and p99 of each block, and the median of those over the blocks: on a host shared with other
 * work a burst of contention lands whole in one block, and the median drops it (bench/paths.ts).
 */
function summary(blocks: number[][]) {
  const per = blocks.map((b) => {
    const sorted = [...b].sort((x, y) => x - y);
    return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
  });
  const median = (xs: number[]) =>
    quantile(
      [...xs].sort((a, b) => a - b),
      0.5,
    );
  const all = blocks.flat().sort((a, b) => a - b);
  return {
    p50: median(per.map((p) => p.p50)),
    p99: median(per.map((p) => p.p99)),
    p99Pooled: quantile(all, 0.99),
  };
}

async function inProcess(quick: boolean) {
  const policy = new ActiveBundle(await loadBundleFile(BUNDLE));
  const service = new DecisionService({ policy, recorder: new DisabledRecorder() });
  const scanner = new ContentScanner();
  // Flat, as a parsed request body's string is (a string built by concatenation scans slower).
  const content = JSON.parse(JSON.stringify(response(10 * 1024))) as string;
  const query = (input: unknown): DecisionQuery => ({
    surface: 'native',
    entrypoint: 'verdict/decision',
    input,
    caller: BENCH_CALLER,
    traceId: null,
  });
  const contentQuery = query(responseEnvelope(content));
  const toolQuery = query(toolEnvelope);
  const check = await service.decide(contentQuery);
  if (!check.allow || check.result.obligations.length !== 2)
    throw new Error(`unexpected decision: ${JSON.stringify(check.result)}`);
  const rounds = quick ? 10 : 40;
  const perRound = 250;
  const decide: number[][] = [];
  const scan: number[][] = [];
  const tool: number[][] = [];
  for (let r = 0; r < rounds + 2; r++) {
    const warm = r < 2;
    const block = { decide: [] as number[], scan: [] as number[], tool: [] as number[] };
    for (let i = 0; i < perRound; i++) {
      let t = performance.now();
      await service.decide(contentQuery);
      block.decide.push((performance.now() - t) * 1000);
      t = performance.now();
      scanner.scan(content, { injection: false });
      block.scan.push((performance.now() - t) * 1000);
      t = performance.now();
      await service.decide(toolQuery);
      block.tool.push((performance.now() - t) * 1000);
    }
    if (warm) continue;
    decide.push(block.decide);
    scan.push(block.scan);
    tool.push(block.tool);
  }
  return {
    bytes: content.length,
    decisions: decide.flat().length,
    responseDecideMicros: summary(decide),
    scanMicros: summary(scan),
    toolCallDecideMicros: summary(tool),
  };
}

/** Saturation results of one server: tool calls, then 10 KB model.response decisions. */
interface HttpResult {
  toolCall: PhaseResult;
  modelResponse: PhaseResult;
  ratio: number;
}

/**
 * One saturation phase. `cpuMicros`: the server's CPU (user + system, /proc) per decision, and
 * `pgCpuMicros` Postgres's, over warm-up + window divided by the requests of both (as bench/run.ts
 * counts): on a host shared with other work the decisions/s move with the neighbours, the CPU a
 * decision costs much less.
 */
interface PhaseResult {
  perSecond: number;
  p99Ms: number;
  failed: number;
  cpuMicros: number;
  pgCpuMicros: number;
}

/**
 * Through HTTP: `servers` Verdict servers in turn (sync audit, 1 worker), each started fresh on a
 * fresh database (an A/B's two checkouts may not share a schema: migration 0015), warmed by tool
 * calls, then saturated by tool calls and by 10 KB `model.response` decisions in `prose`. `main` is
 * a server's entry point (another checkout's for an A/B run); `profileDir` runs it under
 * `--cpu-prof` and saturates it with `model.response` decisions only.
 */
async function http(
  seconds: number,
  databaseUrl: string,
  servers: { label: string; main?: string }[],
  { profileDir, prose = 'mixed' }: { profileDir?: string; prose?: Prose } = {},
): Promise<{ label: string; result: HttpResult }[]> {
  const workDir = mkdtempSync(path.join(tmpdir(), 'verdict-guardrails-'));
  const secret = randomBytes(32).toString('base64url');
  const results: { label: string; result: HttpResult }[] = [];
  try {
    for (const { label, main } of servers) {
      await withDatabase(databaseUrl, 'verdict_bench_guardrails', false, async (url) => {
        const server = await startVerdict({
          id: `verdict-guardrails-${results.length}`,
          auditMode: 'sync',
          databaseUrl: url,
          jwtSecret: secret,
          workDir,
          ...(main ? { verdictMain: main } : {}),
          ...(profileDir ? { verdictNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}),
        });
        try {
          const headers = {
            authorization: `Bearer ${mintToken(secret)}`,
            'content-type': 'application/json',
          };
          const post = (body: unknown): RequestSpec => ({
            method: 'POST',
            path: '/v1/decisions',
            headers,
            body: JSON.stringify(body),
          });
          const phase = async (requests: RequestSpec[], duration = seconds): Promise<PhaseResult> => {
            const warmupSeconds = Math.min(2, duration / 2);
            const cpuBefore = cpuSeconds(server.pid);
            const pgBefore = postgresTicks();
            const load = await runLoadProcess(
              { url: server.url, requests, connections: 16, warmupSeconds, durationSeconds: duration },
              path.join(workDir, 'guardrails-load.json'),
            );
            const cpu = cpuSeconds(server.pid) - cpuBefore;
            const pgCpu = postgresCpuSecondsSince(pgBefore);
            const warmed = load.ok * ((warmupSeconds + load.seconds) / load.seconds);
            return {
              perSecond: load.requestsPerSecond,
              p99Ms: load.latencyMs.p99,
              failed: load.failed,
              cpuMicros: (cpu * 1e6) / warmed,
              pgCpuMicros: (pgCpu * 1e6) / warmed,
            };
          };
          const tools = [post(toolEnvelope)];
          const responses = [post(responseEnvelope(response(10 * 1024, prose)))];
          if (profileDir) {
            const none = { perSecond: 0, p99Ms: 0, failed: 0, cpuMicros: 0, pgCpuMicros: 0 };
            results.push({
              label,
              result: { toolCall: none, modelResponse: await phase(responses), ratio: 0 },
            });
            return;
          }
          await phase(tools, Math.min(seconds, 3)); // warm-up: JIT, pool
          const tool = await phase(tools);
          const model = await phase(responses);
          results.push({
            label,
            result: { toolCall: tool, modelResponse: model, ratio: model.perSecond / tool.perSecond },
          });
        } finally {
          await server.stop();
        }
      });
    }
    return results;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

function memory(scans: number) {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const scanner = new ContentScanner();
  const content = response(1024);
  const every = Math.max(1, Math.floor(scans / 10));
  const heap: number[] = [];
  const started = performance.now();
  let findings = 0;
  for (let i = 0; i < scans; i++) {
    findings += scanner.scan(content).length;
    if (i % every === 0 || i === scans - 1) {
      gc();
      heap.push(process.memoryUsage().heapUsed);
    }
  }
  const mb = (b: number) => b / 1024 / 1024;
  return {
    scans,
    seconds: (performance.now() - started) / 1000,
    findingsPerScan: findings / scans,
    heapMb: heap.map((h) => Math.round(mb(h) * 100) / 100),
    growthMb: mb(heap[heap.length - 1]! - heap[1]!),
  };
}

/** The guardrails' HTTP target as `npm run bench` reports it (bench/paths.ts). */
export interface ResponseVsToolCall {
  rounds: number;
  /** Medians over the rounds (one fresh server and database each). */
  toolCallPerSecond: number;
  modelResponsePerSecond: number;
  toolCallCpuMicros: number;
  modelResponseCpuMicros: number;
  toolCallPgCpuMicros: number;
  modelResponsePgCpuMicros: number;
  /** Median of the rounds' model.response ÷ tool.call decisions/s. */
  ratio: number;
  /** Each round's ratio, in order. */
  ratios: number[];
  target: 0.5;
  met: boolean;
  failed: number;
}

/**
 * 10 KB `model.response` decisions/s against tool calls' through HTTP (sync audit, 1 worker, 16
 * connections), `rounds` times on a fresh server and database; the medians.
 */
export async function measureResponseVsToolCall(opts: {
  seconds: number;
  rounds: number;
  databaseUrl: string;
  prose?: Prose;
}): Promise<ResponseVsToolCall> {
  const servers = Array.from({ length: opts.rounds }, (_, r) => ({ label: `round ${r + 1}` }));
  const results = (await http(opts.seconds, opts.databaseUrl, servers, { prose: opts.prose })).map(
    (r) => r.result,
  );
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const of = (pick: (r: HttpResult) => number) => median(results.map(pick));
  const ratio = of((r) => r.ratio);
  return {
    rounds: opts.rounds,
    toolCallPerSecond: of((r) => r.toolCall.perSecond),
    modelResponsePerSecond: of((r) => r.modelResponse.perSecond),
    toolCallCpuMicros: of((r) => r.toolCall.cpuMicros),
    modelResponseCpuMicros: of((r) => r.modelResponse.cpuMicros),
    toolCallPgCpuMicros: of((r) => r.toolCall.pgCpuMicros),
    modelResponsePgCpuMicros: of((r) => r.modelResponse.pgCpuMicros),
    ratio,
    ratios: results.map((r) => r.ratio),
    target: 0.5,
    met: ratio >= 0.5,
    failed: results.reduce((sum, r) => sum + r.toolCall.failed + r.modelResponse.failed, 0),
  };
}

/** The A/B run (see `--ab-base`): per round both servers, in alternating order. */
async function ab(
  base: string,
  rounds: number,
  seconds: number,
  databaseUrl: string,
  prose: Prose,
): Promise<void> {
  const baseMain = path.join(path.resolve(base), 'src/main.ts');
  const servers: { label: string; main?: string }[] = [];
  for (let r = 0; r < rounds; r++) {
    const pair = [{ label: 'base', main: baseMain }, { label: 'new' }];
    servers.push(...(r % 2 === 0 ? pair : pair.reverse()));
  }
  const results = await http(seconds, databaseUrl, servers, { prose });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const f = (n: number) => n.toFixed(0);
  const pct = (n: number) => `${(n * 100).toFixed(0)} %`;
  const cols: Record<string, number[]> = {};
  const add = (key: string, value: number) => {
    cols[key] = [...(cols[key] ?? []), value];
  };
  const side = (h: HttpResult) =>
    `tool.call ${f(h.toolCall.perSecond)}/s (${f(h.toolCall.cpuMicros)} µs CPU + ${f(h.toolCall.pgCpuMicros)} µs Postgres), model.response ${f(h.modelResponse.perSecond)}/s (${f(h.modelResponse.cpuMicros)} µs + ${f(h.modelResponse.pgCpuMicros)} µs): ${pct(h.ratio)}, by server CPU ${pct(h.toolCall.cpuMicros / h.modelResponse.cpuMicros)}`;
  for (let r = 0; r < rounds; r++) {
    const pair = results.slice(2 * r, 2 * r + 2);
    const b = pair.find((p) => p.label === 'base')!.result;
    const n = pair.find((p) => p.label === 'new')!.result;
    add('model/s new÷base', n.modelResponse.perSecond / b.modelResponse.perSecond);
    add('tool/s new÷base', n.toolCall.perSecond / b.toolCall.perSecond);
    add('model CPU new÷base', n.modelResponse.cpuMicros / b.modelResponse.cpuMicros);
    add('model Postgres CPU new÷base', n.modelResponse.pgCpuMicros / b.modelResponse.pgCpuMicros);
    add('ratio base', b.ratio);
    add('ratio new', n.ratio);
    add('CPU ratio base', b.toolCall.cpuMicros / b.modelResponse.cpuMicros);
    add('CPU ratio new', n.toolCall.cpuMicros / n.modelResponse.cpuMicros);
    const failed = pair.reduce((sum, p) => sum + p.result.toolCall.failed + p.result.modelResponse.failed, 0);
    console.log(`round ${r + 1} (${pair.map((p) => p.label).join(' → ')}), failed ${failed}`);
    console.log(`  base: ${side(b)}`);
    console.log(`  new:  ${side(n)}`);
  }
  const m = (key: string) => median(cols[key]!);
  console.log(
    `median over ${rounds} rounds: model.response/s new÷base ${m('model/s new÷base').toFixed(2)}× (tool.call/s ${m('tool/s new÷base').toFixed(2)}×); model.response server CPU per decision new÷base ${m('model CPU new÷base').toFixed(2)}×, Postgres CPU ${m('model Postgres CPU new÷base').toFixed(2)}×; model.response/tool.call decisions/s base ${pct(m('ratio base'))}, new ${pct(m('ratio new'))} (target ≥ 50 %); by server CPU per decision base ${pct(m('CPU ratio base'))}, new ${pct(m('CPU ratio new'))}`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      scans: { type: 'string', default: '1000000' },
      'http-seconds': { type: 'string', default: '5' },
      'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
      'memory-only': { type: 'boolean', default: false },
      'skip-http': { type: 'boolean', default: false },
      /** Profile the server (`--cpu-prof` into this directory) under 10 KB model.response load only. */
      profile: { type: 'string' },
      /**
       * A/B through HTTP: the server of another checkout (its root, holding src/main.ts — e.g. a
       * `git archive` of the base commit inside this one, so it resolves this node_modules) against
       * this one's, alternating order over `--rounds`; ratios per round and their median.
       */
      'ab-base': { type: 'string' },
      rounds: { type: 'string', default: '3' },
      /** The HTTP phases' response prose (ratio, `--ab-base`, `--profile`): `mixed` (the default) or `ascii` (Prose). */
      prose: { type: 'string', default: 'mixed' },
    },
  });
  const prose = values.prose as Prose;
  if (prose !== 'mixed' && prose !== 'ascii') throw new Error(`--prose: mixed or ascii, not ${values.prose}`);
  if (values['memory-only']) {
    console.log(JSON.stringify(memory(Number(values.scans))));
    return;
  }
  if (values.profile) {
    const [p] = await http(Number(values['http-seconds']), values['database-url'], [{ label: 'current' }], {
      profileDir: path.resolve(values.profile),
      prose,
    });
    console.log(
      `profiled: model.response ${p!.result.modelResponse.perSecond.toFixed(1)}/s; profile in ${values.profile}`,
    );
    return;
  }
  if (values['ab-base']) {
    await ab(
      values['ab-base'],
      Number(values.rounds),
      Number(values['http-seconds']),
      values['database-url'],
      prose,
    );
    return;
  }
  const f = (n: number) => n.toFixed(1);
  const ip = await inProcess(values.quick);
  const decideBlocks = values.quick ? 10 : 40;
  console.log(
    `in process, ${ip.bytes} B model.response, ${ip.decisions} decisions: decide p50 ${f(ip.responseDecideMicros.p50)} µs, p99 ${f(ip.responseDecideMicros.p99)} µs (median of ${decideBlocks} blocks; pooled p99 ${f(ip.responseDecideMicros.p99Pooled)} µs) (target p99 ≤ 1000 µs: ${ip.responseDecideMicros.p99 <= 1000 ? 'met' : 'MISSED'}); scan alone p50 ${f(ip.scanMicros.p50)} µs, p99 ${f(ip.scanMicros.p99)} µs; tool.call decide p50 ${f(ip.toolCallDecideMicros.p50)} µs, p99 ${f(ip.toolCallDecideMicros.p99)} µs (pooled ${f(ip.toolCallDecideMicros.p99Pooled)} µs)`,
  );
  if (!values['skip-http']) {
    const h = await measureResponseVsToolCall({
      seconds: Number(values['http-seconds']),
      rounds: Number(values.rounds),
      databaseUrl: values['database-url'],
      prose,
    });
    const pct = (n: number) => `${(n * 100).toFixed(0)} %`;
    console.log(
      `HTTP (sync audit, 1 worker, 16 connections; medians of ${h.rounds} rounds, a fresh server each): tool.call ${f(h.toolCallPerSecond)}/s (server CPU ${f(h.toolCallCpuMicros)} µs + Postgres ${f(h.toolCallPgCpuMicros)} µs per decision), 10 KB model.response (${prose} prose) ${f(h.modelResponsePerSecond)}/s (${f(h.modelResponseCpuMicros)} µs + ${f(h.modelResponsePgCpuMicros)} µs): ${pct(h.ratio)} (rounds ${h.ratios.map(pct).join(', ')}; target ≥ 50 %: ${h.met ? 'met' : 'MISSED'}; by server CPU per decision ${pct(h.toolCallCpuMicros / h.modelResponseCpuMicros)}); failed ${h.failed}`,
    );
  }
  // The memory run in its own process, with --expose-gc.
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', import.meta.filename, '--memory-only', '--scans', values.scans],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const m = JSON.parse(child.stdout) as ReturnType<typeof memory>;
  console.log(
    `memory, ${m.scans.toLocaleString('en-US')} scans of a 1 KB response (${m.findingsPerScan} findings each) in ${f(m.seconds)} s: heap after GC ${m.heapMb.join(', ')} MB; growth ${m.growthMb.toFixed(2)} MB (target flat: ${Math.abs(m.growthMb) < 1 ? 'met' : 'MISSED'})`,
  );
}

if (import.meta.main) {
  process.on('exit', killAll);
  main().catch((err) => {
    console.error(`guardrails: ${err instanceof Error ? err.stack : String(err)}`);
    killAll();
    process.exitCode = 1;
  });
}
