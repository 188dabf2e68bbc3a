/**
 * The proxy's added latency (issue 27): sequential `tools/call`s from a real MCP host (the SDK's
 * Client over stdio) to a real MCP server (test/mcp/counting-server.ts), direct and through
 * `verdict mcp-proxy`, beside the decision itself as the proxy's client makes it (the SDK's
 * `decide()`, sequential: the call's `tool.call` and the result's `tool.result`), one Verdict server (`node src/main.ts`, audit `off`
 * by default to isolate the proxy; `--audit sync` for the durable figure). Phases alternate
 * (direct, proxy, decide; then the reverse) over `--rounds`.
 *
 *   node bench/mcp-proxy.ts [--calls 400] [--rounds 3] [--audit off] [--json]
 *
 * Printed: p50/p99 of each path, the proxy's added latency (proxy − direct), the number of
 * decisions a call through the proxy makes (the call's, and the result's `tool.result` judgement
 * when the result carries text: src/mcp/guard.ts), and what is left above those decisions.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { VerdictClient } from '../packages/sdk/src/index.ts';
import { killAll, mintToken, startSystem, withDatabase } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '400' },
    rounds: { type: 'string', default: '3' },
    audit: { type: 'string', default: 'off' },
    json: { type: 'boolean', default: false },
    /** Writes a --cpu-prof profile of every proxy process into this directory. */
    'profile-proxy': { type: 'string' },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});

const CONTEXT = { data_classification: 'internal', user: { id: 'user:42', entitlements: ['orders:read'] } };
const SERVER = [process.execPath, path.join(root, 'test/mcp/counting-server.ts')];

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
 * untimed before every 40th call (a new proxy session: the policy's session budget is 50 calls).
 */
async function sequential(
  calls: number,
  one: (i: number) => Promise<void>,
  between?: () => Promise<void>,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 50 + calls; i++) {
    if (between && i % 40 === 0) await between();
    const t = performance.now();
    await one(i);
    if (i >= 50) out.push(performance.now() - t);
  }
  return out;
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
    const verdict = await startSystem(
      { id: `mcp-${values.audit}`, kind: 'verdict', auditMode: values.audit as 'off', workers: 1 },
      {
        bundlePath: path.join(root, 'policies/bundle/bundle.tar.gz'),
        opaBundleDir: '',
        databaseUrl,
        jwtSecret,
        workDir,
        cpus: null,
      },
    );
    const env = { VERDICT_URL: verdict.url, VERDICT_TOKEN: token, COUNT_FILE: countFile };
    const direct = await host(SERVER, env);
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
    const sdk = new VerdictClient({ url: verdict.url, token });
    const call = (client: () => Client) => async (i: number) => {
      const result = await client().callTool({ name: 'lookup_order', arguments: { order_id: `o-${i}` } });
      if (result.isError) throw new Error(`tools/call failed: ${JSON.stringify(result)}`);
    };
    const decide = async (i: number) => {
      const d = await sdk.decide({
        subject: { type: 'agent', id: 'support-bot', properties: { on_behalf_of: 'user:42' } },
        action: { name: 'tool.call' },
        resource: { type: 'tool', id: 'lookup_order', properties: { arguments: { order_id: `o-${i}` } } },
        context: CONTEXT,
      });
      if (!d.decided) throw new Error(`decide failed: ${d.error.message}`);
    };
    // The proxy's second decision: the result's text judged as `tool.result` (src/mcp/guard.ts).
    const judge = async (i: number) => {
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
    };
    const paths: Record<
      string,
      { run: (i: number) => Promise<void>; between?: () => Promise<void>; ms: number[] }
    > = {
      direct: { run: call(() => direct), ms: [] },
      proxy: { run: call(() => proxied), between: newSession, ms: [] },
      decide: { run: decide, ms: [] },
      judge: { run: judge, ms: [] },
    };
    const names = Object.keys(paths);
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const name of round % 2 ? [...names].reverse() : names) {
        const p = paths[name]!;
        p.ms.push(...(await sequential(calls, p.run, p.between)));
      }
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
    await Promise.allSettled([direct.close(), proxied.close()]);
    await verdict.stop();
    const stats = Object.fromEntries(
      names.map((n) => [n, { p50: quantile(paths[n]!.ms, 0.5), p99: quantile(paths[n]!.ms, 0.99) }]),
    ) as Record<string, { p50: number; p99: number }>;
    const added = stats.proxy!.p50 - stats.direct!.p50;
    // The call's decision and, when the proxy made two per call, the result's judgement.
    const decisionsMs = stats.decide!.p50 + (perCall >= 2 ? stats.judge!.p50 : 0);
    const aboveDecisions = added - decisionsMs;
    const load = os.loadavg()[0]!.toFixed(1);
    if (values.json) {
      console.log(
        JSON.stringify({ options: values, loadAverage: Number(load), stats, perCall, added, aboveDecisions }),
      );
      return;
    }
    console.log(
      `sequential tools/call, audit ${values.audit}, ${values.rounds} × ${calls} calls per path (load average ${load}):`,
    );
    for (const n of names)
      console.log(`  ${n.padEnd(7)} p50 ${stats[n]!.p50.toFixed(2)} ms, p99 ${stats[n]!.p99.toFixed(2)} ms`);
    console.log(
      `  proxy − direct: p50 ${added.toFixed(2)} ms; decisions per proxied call ${perCall}; ` +
        `above the decisions' p50 (decide${perCall >= 2 ? ' + judge' : ''} ${decisionsMs.toFixed(2)} ms): ${aboveDecisions.toFixed(2)} ms`,
    );
  });
}

await main();
