/**
 * The SDK's cost per call (issue 27): one sequential `decide()` at a time, as an agent asks before
 * each tool call, through the SDK's two transports in alternation — `fetch` (the platform's, as a
 * client given `fetch` uses) and `node` (node:http with a keep-alive agent, the default on Node:
 * packages/sdk/src/node-http.ts) — against one Verdict server (`node src/main.ts`, one worker,
 * audit `off` by default, so the figure is the call's, not the commit's).
 *
 *   node bench/sdk-call.ts [--sessions 6] [--calls 40] [--long 1000] [--rounds 3] [--audit off] [--json]
 *
 * Per round and transport: `--sessions` fresh processes making `--calls` decisions each (a short
 * session: the process of `verdict mcp-proxy` lives one MCP session), then one process making
 * `--long` decisions (a long-lived agent runtime). Printed: p50 of each transport over the calls
 * 1–5, 6–20 and 21–40 of the short sessions and over the last 80 % of the long one, and the ratio.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { VerdictClient } from '../packages/sdk/src/index.ts';
import { killAll, mintToken, startVerdict, withDatabase } from './systems.ts';

const { values } = parseArgs({
  allowPositionals: true,
  options: {
    sessions: { type: 'string', default: '6' },
    calls: { type: 'string', default: '40' },
    long: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    audit: { type: 'string', default: 'off' },
    json: { type: 'boolean', default: false },
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    // Internal: this script as the child process of one session.
    child: { type: 'string' },
  },
});

type Transport = 'fetch' | 'node';
const TRANSPORTS: Transport[] = ['fetch', 'node'];

/** A child: `calls` sequential decisions; prints their latencies in ms as JSON. */
async function child(transport: Transport, url: string, token: string, calls: number): Promise<void> {
  const sdk = new VerdictClient({
    url,
    token,
    ...(transport === 'fetch' ? { fetch: globalThis.fetch } : {}),
  });
  const out: number[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    const d = await sdk.decide({
      subject: { type: 'agent', id: 'support-bot', properties: { on_behalf_of: 'user:42' } },
      action: { name: 'tool.call' },
      resource: { type: 'tool', id: 'lookup_order', properties: { arguments: { order_id: `o-${i}` } } },
      context: { data_classification: 'internal', user: { id: 'user:42', entitlements: ['orders:read'] } },
    });
    if (!d.decided) throw new Error(`decide failed: ${d.error.message}`);
    out.push(performance.now() - started);
  }
  process.stdout.write(JSON.stringify(out));
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  process.on('exit', killAll);
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'verdict-sdk-bench-'));
  const jwtSecret = `sdk-bench-${'x'.repeat(40)}`;
  const token = mintToken(jwtSecret);
  const sessions = Number(values.sessions);
  const calls = Number(values.calls);
  const long = Number(values.long);
  await withDatabase(values['database-url'], 'verdict_bench_sdk', false, async (databaseUrl) => {
    const verdict = await startVerdict({
      id: `sdk-${values.audit}`,
      auditMode: values.audit as 'off',
      databaseUrl,
      jwtSecret,
      workDir,
    });
    const run = (transport: Transport, n: number): number[] =>
      JSON.parse(
        execFileSync(
          process.execPath,
          [import.meta.filename, '--child', transport, verdict.url, token, String(n)],
          { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
        ),
      ) as number[];
    const short: Record<Transport, number[][]> = { fetch: [], node: [] };
    const longRuns: Record<Transport, number[]> = { fetch: [], node: [] };
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const transport of round % 2 ? [...TRANSPORTS].reverse() : TRANSPORTS) {
        for (let s = 0; s < sessions; s++) short[transport].push(run(transport, calls));
        longRuns[transport].push(...run(transport, long).slice(Math.floor(long / 5)));
      }
      if (!values.json) process.stderr.write(`sdk-bench: round ${round + 1} of ${values.rounds} done\n`);
    }
    await verdict.stop();
    const segments: [string, number, number][] = [
      ['calls 1–5', 0, 5],
      ['calls 6–20', 5, 20],
      [`calls 21–${calls}`, 20, calls],
    ];
    const rows = [
      ...segments.map(([name, from, to]) => ({
        name: `short session, ${name}`,
        fetch: p50(short.fetch.flatMap((r) => r.slice(from, to))),
        node: p50(short.node.flatMap((r) => r.slice(from, to))),
      })),
      {
        name: `long-lived, last ${long - Math.floor(long / 5)}`,
        fetch: p50(longRuns.fetch),
        node: p50(longRuns.node),
      },
    ];
    const load = os.loadavg()[0]!;
    if (values.json) {
      console.log(JSON.stringify({ options: values, loadAverage: load, rows }));
      return;
    }
    console.log(
      `sequential decide(), audit ${values.audit}, ${values.rounds} rounds × (${sessions} sessions of ${calls} calls + ${long} calls) per transport (load average ${load.toFixed(1)}):`,
    );
    for (const r of rows)
      console.log(
        `  ${r.name.padEnd(28)} fetch p50 ${r.fetch.toFixed(3)} ms, node:http ${r.node.toFixed(3)} ms, node ÷ fetch ${(r.node / r.fetch).toFixed(2)}`,
      );
  });
}

if (values.child) {
  const [url, token, n] = process.argv.slice(-3) as [string, string, string];
  await child(values.child as Transport, url, token, Number(n));
} else {
  await main();
}
