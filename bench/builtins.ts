/**
 * What the host builtins on the decision path cost, beside the policy's own evaluation: a policy
 * that calls one builtin family per entrypoint (time, JWT decode + HS256 verify, semver, CIDR, and
 * four answered by OPA's Go builtins module: uri.parse, regex.globs_match, json.match_schema,
 * strings.render_template),
 * compiled by the real `opa build -t wasm`, evaluated in-process through PolicyEngine on varied
 * inputs — no HTTP, no recording. The baseline is the committed default policy's decision.
 *
 *   node bench/builtins.ts [--seconds 2] [--json]
 *
 * Each line is one evaluation of the entrypoint (the builtin call plus the wasm around it).
 */
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { goBuiltinsModule } from '../src/engine/go-builtins.ts';
import { loadInputs } from './inputs.ts';
import { BENCH_CALLER } from './systems.ts';

const root = path.resolve(import.meta.dirname, '..');

const POLICY = `package b

age := time.now_ns() - time.parse_rfc3339_ns(input.issued)
parts := [time.date(time.now_ns()), time.clock([time.now_ns(), "Europe/Paris"]), time.weekday(time.now_ns())]
next_month := time.add_date(time.now_ns(), 0, 1, 0) > time.parse_rfc3339_ns(input.issued)
token := [io.jwt.decode(input.token)[1].sub, io.jwt.verify_hs256(input.token, "bench-secret")]
version := semver.compare(input.version, "1.10.0-rc.1") >= 0
networks := net.cidr_merge(input.networks)
matches := net.cidr_contains_matches(input.networks, input.ip)
`;

const ENTRYPOINTS = ['b/age', 'b/parts', 'b/next_month', 'b/token', 'b/version', 'b/networks', 'b/matches'];

/** Builtins answered by OPA's Go builtins module (ADR 0022), one per entrypoint. */
const GO_POLICY = `package g

parsed_url := uri.parse(input.url)
globs := regex.globs_match(input.glob, "tools/[a-z]+")
args_valid := json.match_schema(input.args, {"type": "object", "properties": {"path": {"type": "string", "maxLength": 64}}, "required": ["path"]})
message := strings.render_template("{{.tool}} on {{.args.path}}", input)
`;

const GO_ENTRYPOINTS = ['g/parsed_url', 'g/globs', 'g/args_valid', 'g/message'];

function token(i: number): string {
  const b64 = (x: unknown) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const data = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: `agent-${i}`, exp: 1_900_000_000 + i, scope: 'tools' })}`;
  return `${data}.${createHmac('sha256', 'bench-secret').update(data).digest('base64url')}`;
}

function inputs(): string[] {
  return Array.from({ length: 64 }, (_, i) =>
    JSON.stringify({
      now: new Date(Date.UTC(2026, 11, 7, 1, 0, i)).toISOString(),
      issued: new Date(Date.UTC(2026, 10, 1 + (i % 28), i % 24)).toISOString(),
      token: token(i),
      version: `1.${i % 12}.${i % 5}${i % 3 === 0 ? '-rc.2' : ''}`,
      networks: [`10.${i}.0.0/24`, `10.${i}.1.0/24`, '192.168.0.0/16', `2001:db8:${i.toString(16)}::/48`],
      ip: `10.${i}.1.${i}`,
      url: `https://api.example.com:8443/v1/tools/${i}?q=${i}&x=%20y#f`,
      glob: i % 2 === 0 ? 'tools/.*' : 'files/[0-9]+',
      tool: `tool-${i}`,
      args: i % 5 === 0 ? { path: 1 } : { path: `/srv/data/${i}` },
    }),
  );
}

interface Result {
  name: string;
  perSecond: number;
  microsPerEval: number;
}

function measure(name: string, seconds: number, jsons: string[], fn: (json: string) => void): Result {
  const warmUntil = performance.now() + 300;
  for (let i = 0; performance.now() < warmUntil; i++) fn(jsons[i % jsons.length]!);
  let n = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  while (performance.now() < deadline) for (let k = 0; k < 32; k++, n++) fn(jsons[n % jsons.length]!);
  const elapsed = (performance.now() - started) / 1000;
  return { name, perSecond: n / elapsed, microsPerEval: (elapsed * 1e6) / n };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '2' }, json: { type: 'boolean' } },
  });
  const seconds = Number(values.seconds);
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-bench-builtins-'));
  writeFileSync(path.join(dir, 'policy.rego'), POLICY);
  const args = ['build', '-t', 'wasm', '-o', 'bundle.tar.gz'];
  for (const e of ENTRYPOINTS) args.push('-e', e);
  execFileSync('opa', [...args, 'policy.rego'], { cwd: dir, stdio: 'pipe' });
  const engine = PolicyEngine.fromBundle(parseBundle(readFileSync(path.join(dir, 'bundle.tar.gz'))));
  const jsons = inputs();
  const results: Result[] = [];
  const baseline = PolicyEngine.fromBundle(
    parseBundle(readFileSync(path.join(root, 'policies/bundle/bundle.tar.gz'))),
  );
  const envelopes = (await loadInputs(64, 17)).toolCalls.map((e) =>
    JSON.stringify({ ...e, caller: BENCH_CALLER, now: '2026-12-07T01:00:00Z' }),
  );
  results.push(
    measure('baseline: default policy verdict/decision', seconds, envelopes, (j) => {
      baseline.evaluateJson('verdict/decision', j);
    }),
  );
  for (const entrypoint of ENTRYPOINTS) {
    const check = engine.evaluateJson(entrypoint, jsons[0]);
    if (check.error || !check.defined)
      throw new Error(`${entrypoint}: ${check.error?.message ?? 'undefined'}`);
    results.push(
      measure(entrypoint, seconds, jsons, (j) => {
        engine.evaluateJson(entrypoint, j);
      }),
    );
  }
  // OPA's Go builtins module: its one-time load (read, compile, start the Go runtime), then calls.
  writeFileSync(path.join(dir, 'go.rego'), GO_POLICY);
  execFileSync(
    'opa',
    ['build', '-t', 'wasm', '-o', 'go.tar.gz', ...GO_ENTRYPOINTS.flatMap((e) => ['-e', e]), 'go.rego'],
    { cwd: dir, stdio: 'pipe' },
  );
  const loadStarted = performance.now();
  const goEngine = PolicyEngine.fromBundle(parseBundle(readFileSync(path.join(dir, 'go.tar.gz'))));
  const loadMillis = performance.now() - loadStarted;
  const goModule = goBuiltinsModule();
  if (typeof goModule === 'string') throw new Error(goModule);
  console.error(
    `go builtins module: first bundle load ${loadMillis.toFixed(0)} ms (of which Go runtime start ${goModule.startMillis.toFixed(0)} ms)`,
  );
  for (const entrypoint of GO_ENTRYPOINTS) {
    const check = goEngine.evaluateJson(entrypoint, jsons[0]);
    if (check.error || !check.defined)
      throw new Error(`${entrypoint}: ${check.error?.message ?? 'undefined'}`);
    results.push(
      measure(entrypoint, seconds, jsons, (j) => {
        goEngine.evaluateJson(entrypoint, j);
      }),
    );
  }
  if (values.json) {
    console.log(JSON.stringify(results));
    return;
  }
  for (const r of results) {
    console.log(
      `${r.name.padEnd(44)} ${r.microsPerEval.toFixed(1).padStart(8)} µs/eval ${Math.round(r.perSecond).toString().padStart(9)} /s`,
    );
  }
}

await main();
