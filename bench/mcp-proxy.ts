/**
 * The proxy's added latency (issue 27): sequential `tools/call`s from a real MCP host (the SDK's
 * Client over stdio) to a real MCP server (test/mcp/counting-server.ts), direct and through
 * `verdict mcp-proxy`, beside the decision itself as the proxy's client makes it (the SDK's
 * `decide()`, sequential: the call's `tool.call` and the result's `tool.result`), one Verdict
 * server (`node src/main.ts`, audit `off` by default to isolate the proxy; `--audit sync` for the
 * durable figure). Phases alternate (direct, proxy, decide, judge; then the reverse) over
 * `--rounds`; each round ends with the same two decisions made by fresh processes, one per
 * 40-call session, as the proxy's process lives one session (`--child-decisions`).
 *
 *   node bench/mcp-proxy.ts [--calls 400] [--rounds 3] [--audit off] [--proxy-b-node-flags FLAGS] [--json]
 *
 * `direct-fresh` is the direct path with a new server process every 40 calls, as the proxy starts
 * its own server per session: proxy − direct-fresh is the latency the proxy adds with the server's
 * lifetime the same on both paths.
 *
 * Printed: p50/p99 of each path, the proxy's added latency (proxy − direct), the number of
 * decisions a call through the proxy makes (the call's, and the result's `tool.result` judgement
 * when the result carries text: src/mcp/guard.ts), and what is left above those decisions — as
 * this long-lived process makes them, and as a process living one session makes them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { VerdictClient } from '../packages/sdk/src/index.ts';
import { killAll, mintToken, startVerdict, withDatabase } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  allowPositionals: true,
  options: {
    calls: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '3' },
    audit: { type: 'string', default: 'off' },
    json: { type: 'boolean', default: false },
    /** Writes a --cpu-prof profile of every proxy process into this directory. */
    'profile-proxy': { type: 'string' },
    /** Adds the path `proxy-b`: the proxy run by `node <these flags>`, e.g. "--no-always-sparkplug". */
    'proxy-b-node-flags': { type: 'string' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    // Internal: this script as one short-lived process making a session's decisions (see `fresh`).
    'child-decisions': { type: 'boolean', default: false },
  },
});

const CONTEXT = { data_classification: 'internal', user: { id: 'user:42', entitlements: ['orders:read'] } };
const SERVER = [process.execPath, path.join(root, 'test/mcp/counting-server.ts')];

/** Calls per proxy session: the policy's session budget is 50 calls. */
const SESSION = 40;

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function host(command: string[], env: Record<string, string>): Promise<Client> {
  const transport = new StdioClientTransport({
    command: command[0]!,
    args: command.slice(1),
    env: { ...(process.env as Record<string, string>), ...env },
    stderr: 'ignore',
  });
  const client = new Client({ name: 'bench-host', version: '1.0.0' });
  await client.connect(transport);
  // As a host does: the guard learns the tools' annotations (lookup_order reads) from the list.
  await client.listTools();
  return client;
}

/**
 * `calls` sequential calls; latencies in ms (after 50 unmeasured ones). `between`, when given, runs
 * untimed before every SESSION-th call (a new proxy session).
 */
async function sequential(
  calls: number,
  one: (i: number) => Promise<void>,
  between?: () => Promise<void>,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 50 + calls; i++) {
    if (between && i % SESSION === 0) await between();
    const t = performance.now();
    await one(i);
    if (i >= 50) out.push(performance.now() - t);
  }
  return out;
}

/** The call's decision as the proxy's guard makes it (`tool.call`, src/mcp/guard.ts). */
async function decideCall(sdk: VerdictClient, i: number): Promise<void> {
  const d = await sdk.decide({
    subject: { type: 'agent', id: 'support-bot', properties: { on_behalf_of: 'user:42' } },
    action: { name: 'tool.call' },
    resource: { type: 'tool', id: 'lookup_order', properties: { arguments: { order_id: `o-${i}` } } },
    context: CONTEXT,
  });
  if (!d.decided) throw new Error(`decide failed: ${d.error.message}`);
}

/** The proxy's second decision: the result's text judged as `tool.result` (src/mcp/guard.ts). */
async function judgeResult(sdk: VerdictClient, i: number): Promise<void> {
  const d = await sdk.decide({
    subject: { type: 'agent', id: 'support-bot', properties: { on_behalf_of: 'user:42' } },
    action: { name: 'tool.result' },
    resource: {
      type: 'tool',
      id: 'lookup_order',
      properties: { content: [{ role: 'tool', text: `order o-${i}` }] },
    },
    context: { ...CONTEXT, destination: 'model' },
  });
  if (!d.decided) throw new Error(`decide failed: ${d.error.message}`);
}

/**
 * A child process living one session, as `verdict mcp-proxy`'s process does: the listing's batch
 * decision (untimed, as the host's `tools/list` makes the proxy's), then `calls` × (the call's
 * decision, the result's judgement), each timed; prints `[[call ms, judge ms], …]`.
 */
async function childDecisions(url: string, token: string, calls: number): Promise<void> {
  const sdk = new VerdictClient({ url, token });
  await sdk.decideMany([{ resource: { type: 'tool', id: 'lookup_order' } }], {
    defaults: {
      subject: { type: 'agent', id: 'support-bot', properties: { on_behalf_of: 'user:42' } },
      action: { name: 'tool.call' },
      context: { ...CONTEXT, listing: true },
    },
  });
  const out: [number, number][] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await decideCall(sdk, i);
    const t1 = performance.now();
    await judgeResult(sdk, i);
    out.push([t1 - t0, performance.now() - t1]);
  }
  process.stdout.write(JSON.stringify(out));
}

async function main(): Promise<void> {
  process.on('exit', killAll);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'verdict-mcp-bench-'));
  const countFile = path.join(workDir, 'calls.ndjson');
  writeFileSync(countFile, '');
  const jwtSecret = `mcp-bench-${'x'.repeat(40)}`;
  const token = mintToken(jwtSecret);
  const calls = Number(values.calls);
  await withDatabase(values['database-url'], 'verdict_bench_mcp', false, async (databaseUrl) => {
    const verdict = await startVerdict({
      id: `mcp-${values.audit}`,
      auditMode: values.audit as 'off',
      databaseUrl,
      jwtSecret,
      workDir,
    });
    const env = { VERDICT_URL: verdict.url, VERDICT_TOKEN: token, COUNT_FILE: countFile };
    const direct = await host(SERVER, env);
    // The same server started afresh every SESSION calls, as the proxy starts its own per session:
    // the server's cold code is then in both paths, not counted as the proxy's.
    let directFresh = await host(SERVER, env);
    const newDirectSession = async () => {
      await directFresh.close();
      directFresh = await host(SERVER, env);
    };
    const proxyCommand = [
      process.execPath,
      path.join(root, 'src/cli/verdict.ts'),
      'mcp-proxy',
      '--agent',
      'support-bot',
      '--on-behalf-of',
      'user:42',
      '--context',
      JSON.stringify(CONTEXT),
      '--',
      ...SERVER,
    ];
    const proxyEnv = values['profile-proxy']
      ? { ...env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${values['profile-proxy']}` }
      : env;
    let proxied = await host(proxyCommand, proxyEnv);
    const newSession = async () => {
      await proxied.close();
      proxied = await host(proxyCommand, proxyEnv);
    };
    // `--proxy-b-node-flags`: the same proxy under other node/V8 flags, as a path of its own (an A/B).
    const bFlags = values['proxy-b-node-flags']?.split(' ').filter(Boolean);
    const proxyCommandB = bFlags ? [process.execPath, ...bFlags, ...proxyCommand.slice(1)] : undefined;
    let proxiedB = proxyCommandB ? await host(proxyCommandB, proxyEnv) : undefined;
    const newSessionB = async () => {
      await proxiedB!.close();
      proxiedB = await host(proxyCommandB!, proxyEnv);
    };
    const sdk = new VerdictClient({ url: verdict.url, token });
    const call = (client: () => Client) => async (i: number) => {
      const result = await client().callTool({ name: 'lookup_order', arguments: { order_id: `o-${i}` } });
      if (result.isError) throw new Error(`tools/call failed: ${JSON.stringify(result)}`);
    };
    const decide = (i: number) => decideCall(sdk, i);
    const judge = (i: number) => judgeResult(sdk, i);
    // The same two decisions made as the proxy's process makes them: a fresh process per session of
    // SESSION calls (the proxy's session is renewed every 40 calls, above), all timed.
    const fresh = { call: [] as number[], judge: [] as number[] };
    const freshSessions = (n: number) => {
      for (let done = 0; done < n; done += SESSION) {
        const pairs = JSON.parse(
          execFileSync(
            process.execPath,
            [
              import.meta.filename,
              '--child-decisions',
              verdict.url,
              token,
              String(Math.min(SESSION, n - done)),
            ],
            { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
          ),
        ) as [number, number][];
        for (const [c, j] of pairs) {
          fresh.call.push(c);
          fresh.judge.push(j);
        }
      }
    };
    const paths: Record<
      string,
      { run: (i: number) => Promise<void>; between?: () => Promise<void>; ms: number[] }
    > = {
      direct: { run: call(() => direct), ms: [] },
      'direct-fresh': { run: call(() => directFresh), between: newDirectSession, ms: [] },
      proxy: { run: call(() => proxied), between: newSession, ms: [] },
      ...(proxyCommandB ? { 'proxy-b': { run: call(() => proxiedB!), between: newSessionB, ms: [] } } : {}),
      decide: { run: decide, ms: [] },
      judge: { run: judge, ms: [] },
    };
    const names = Object.keys(paths);
    // The A/B of the proxy under other flags: sessions alternate (A, B, B, A, …), each one new and
    // every call of it timed, so a drift of the host in the run lands on both sides alike.
    type Path = (typeof paths)[string];
    const interleaved = async (a: Path, b: Path) => {
      for (let s = 0; s < Math.ceil(calls / SESSION); s++) {
        for (const p of s % 2 ? [b, a] : [a, b]) {
          await p.between!();
          for (let i = 0; i < SESSION; i++) {
            const t = performance.now();
            await p.run(s * SESSION + i);
            p.ms.push(performance.now() - t);
          }
        }
      }
    };
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const name of round % 2 ? [...names].reverse() : names) {
        if (name === 'proxy-b') continue;
        const p = paths[name]!;
        if (name === 'proxy' && paths['proxy-b']) {
          await interleaved(paths.proxy!, paths['proxy-b']);
        } else {
          p.ms.push(...(await sequential(calls, p.run, p.between)));
        }
        process.stderr.write(`round ${round + 1}/${values.rounds}: ${name} done\n`);
      }
      freshSessions(calls);
    }
    // How many decisions one proxied call made: Verdict's own counter, over one more call.
    const decisionsTotal = async () =>
      (await (await fetch(`${verdict.url}/metrics`)).text())
        .split('\n')
        .filter((l) => l.startsWith('verdict_decisions_total{'))
        .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
    await newSession();
    const before = await decisionsTotal();
    for (let i = 0; i < 10; i++) await paths.proxy!.run(i);
    const perCall = ((await decisionsTotal()) - before) / 10;
    await Promise.allSettled([direct.close(), directFresh.close(), proxied.close(), proxiedB?.close()]);
    await verdict.stop();
    const stats = Object.fromEntries(
      names.map((n) => [n, { p50: quantile(paths[n]!.ms, 0.5), p99: quantile(paths[n]!.ms, 0.99) }]),
    ) as Record<string, { p50: number; p99: number }>;
    const added = stats.proxy!.p50 - stats.direct!.p50;
    // The call's decision and, when the proxy made two per call, the result's judgement.
    const decisionsMs = stats.decide!.p50 + (perCall >= 2 ? stats.judge!.p50 : 0);
    const aboveDecisions = added - decisionsMs;
    // The same, against the decisions as a process living one session makes them (the proxy's case).
    const freshStats = {
      call: { p50: quantile(fresh.call, 0.5), p99: quantile(fresh.call, 0.99) },
      judge: { p50: quantile(fresh.judge, 0.5), p99: quantile(fresh.judge, 0.99) },
    };
    const freshMs = freshStats.call.p50 + (perCall >= 2 ? freshStats.judge.p50 : 0);
    const aboveFresh = added - freshMs;
    // Lifetimes matched: a fresh server per session on both paths, fresh decisions.
    const addedMatched = stats.proxy!.p50 - stats['direct-fresh']!.p50;
    const aboveMatched = addedMatched - freshMs;
    const load = os.loadavg()[0]!.toFixed(1);
    if (values.json) {
      console.log(
        JSON.stringify({
          options: values,
          loadAverage: Number(load),
          stats,
          fresh: freshStats,
          perCall,
          added,
          aboveDecisions,
          aboveFresh,
          addedMatched,
          aboveMatched,
        }),
      );
      return;
    }
    console.log(
      `sequential tools/call, audit ${values.audit}, ${values.rounds} × ${calls} calls per path (load average ${load}):`,
    );
    for (const n of names)
      console.log(`  ${n.padEnd(12)} p50 ${stats[n]!.p50.toFixed(2)} ms, p99 ${stats[n]!.p99.toFixed(2)} ms`);
    console.log(
      `  proxy − direct: p50 ${added.toFixed(2)} ms; decisions per proxied call ${perCall}; ` +
        `above the decisions' p50 (decide${perCall >= 2 ? ' + judge' : ''} ${decisionsMs.toFixed(2)} ms): ${aboveDecisions.toFixed(2)} ms`,
    );
    console.log(
      `  the same two decisions in a fresh process per ${SESSION}-call session (as the proxy's): call p50 ${freshStats.call.p50.toFixed(2)} / p99 ${freshStats.call.p99.toFixed(2)} ms, ` +
        `judge p50 ${freshStats.judge.p50.toFixed(2)} / p99 ${freshStats.judge.p99.toFixed(2)} ms; proxy − direct above them: ${aboveFresh.toFixed(2)} ms`,
    );
    console.log(
      `  lifetimes matched (a fresh server per ${SESSION}-call session on both paths): proxy − direct-fresh p50 ${addedMatched.toFixed(2)} ms, ` +
        `above the fresh decisions: ${aboveMatched.toFixed(2)} ms`,
    );
    if (stats['proxy-b']) {
      const b = stats['proxy-b'];
      console.log(
        `  proxy-b (node ${values['proxy-b-node-flags']}): p50 ${(b.p50 / stats.proxy!.p50).toFixed(2)}× the proxy's; ` +
          `− direct-fresh above the fresh decisions: ${(b.p50 - stats['direct-fresh']!.p50 - freshMs).toFixed(2)} ms`,
      );
    }
  });
}

if (values['child-decisions']) {
  const [url, token, n] = process.argv.slice(-3) as [string, string, string];
  await childDecisions(url, token, Number(n));
} else {
  await main();
}
