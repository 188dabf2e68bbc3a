/**
 * Profiles Verdict under load: starts it with `--cpu-prof` (one worker), drives one scenario at
 * saturation from a separate load process, stops it (the profile is written on exit) and prints
 * the self/inclusive summary of bench/profile-summary.ts. The .cpuprofile opens as a flame graph
 * in Chrome DevTools or speedscope.
 *
 *   node bench/profile.ts [--scenario tool-call] [--audit off] [--seconds 10] [--out /tmp/verdict-prof]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadInputs } from './inputs.ts';
import { runLoadProcess } from './load.ts';
import { buildScenarios } from './scenarios.ts';
import { BENCH_CALLER, killAll, mintToken, startVerdict, withDatabase } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'tool-call' },
    audit: { type: 'string', default: 'off' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    out: { type: 'string', default: path.join(os.tmpdir(), 'verdict-prof') },
    /** The server to create the profile's own database on (sync/async audit modes). */
    'database-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});

process.on('exit', killAll);
const workDir = mkdtempSync(path.join(os.tmpdir(), 'verdict-profile-'));
mkdirSync(values.out, { recursive: true });
const jwtSecret = `profile-${'x'.repeat(40)}`;
const inputs = await loadInputs(200, 42);
const scenario = buildScenarios(
  inputs,
  { caller: BENCH_CALLER, now: new Date().toISOString() },
  mintToken(jwtSecret),
).find((s) => s.name === values.scenario);
if (!scenario) throw new Error(`unknown scenario ${values.scenario}`);

await withDatabase(values['database-url'], 'verdict_bench_profile', false, async (databaseUrl) => {
  const running = await startVerdict({
    id: `profile-${values.audit}`,
    auditMode: values.audit as 'off',
    databaseUrl,
    jwtSecret,
    workDir,
    verdictNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${values.out}`],
  });
  const before = new Set(readdirSync(values.out));
  const result = await runLoadProcess(
    {
      url: running.url,
      requests: scenario.verdict.requests,
      connections: Number(values.connections),
      warmupSeconds: 2,
      durationSeconds: Number(values.seconds),
    },
    path.join(workDir, 'spec.json'),
  );
  // What the load did besides deciding: group-commit batches, approval requests, shadow work.
  const scraped = await (await fetch(`${running.url}/metrics`)).text();
  const counters = scraped
    .split('\n')
    .filter((line) => /^verdict_(audit_batch|audit_records|approval|shadow|exception)/.test(line));
  await running.stop();
  console.log(counters.join('\n'));
  console.log(
    `${values.scenario}: ${Math.round(result.requestsPerSecond)} req/s, p99 ${result.latencyMs.p99.toFixed(2)} ms, ${result.failed} failed`,
  );
  const profiles = readdirSync(values.out).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
  for (const file of profiles) {
    console.log(`\nprofile: ${path.join(values.out, file)}`);
    console.log(
      execFileSync(
        process.execPath,
        [path.join(root, 'bench/profile-summary.ts'), path.join(values.out, file), '30'],
        {
          encoding: 'utf8',
        },
      ),
    );
  }
});
