/**
 * The request around the policy, old against new, in ONE process (issue 27): both trees' apps built
 * by their own test/support/app.ts (the composition root, no database, nothing recorded), the
 * tool-call requests of the benchmark sent with Fastify's `inject` (routing, hooks, auth, body
 * parse, schema validation, the decision, metrics, the reply's serialisation; no socket), in short
 * blocks that alternate between the two. Measured: this process's CPU time (`process.cpuUsage`) per
 * request. On a shared host this moves far less than wall time or a server's CPU under a load
 * generator (both suffer from the same descheduling), so it can rank small changes that
 * bench/request-ab.ts cannot resolve there; it does not see Node's HTTP parser or the sockets.
 *
 *   node bench/request-inject.ts [--old main] [--new <ref>] [--blocks 40] [--requests 300]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadInputs } from './inputs.ts';
import { buildScenarios } from './scenarios.ts';
import { BENCH_CALLER } from './systems.ts';
import { treeAt } from './tree-at.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    old: { type: 'string', default: 'main' },
    new: { type: 'string' },
    blocks: { type: 'string', default: '40' },
    requests: { type: 'string', default: '300' },
    scenario: { type: 'string', default: 'tool-call' },
  },
});

interface InjectApp {
  app: {
    inject(o: object): Promise<{ statusCode: number; body: string }>;
    close(): Promise<void>;
  };
  token: (scopes?: readonly string[]) => string;
}

async function build(dir: string) {
  const { buildTestApp } = (await import(pathToFileURL(path.join(dir, 'test/support/app.ts')).href)) as {
    buildTestApp(o: object): Promise<InjectApp>;
  };
  const { DisabledRecorder } = (await import(
    pathToFileURL(path.join(dir, 'src/audit/memory-recorder.ts')).href
  )) as {
    DisabledRecorder: new () => unknown;
  };
  return buildTestApp({
    bundlePath: path.join(dir, 'policies/bundle/bundle.tar.gz'),
    recorder: new DisabledRecorder(),
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const old = treeAt(values.old);
const next = values.new ? treeAt(values.new) : { dir: root, sha: 'this checkout' };
const inputs = await loadInputs(200, 42);
const scenario = buildScenarios(inputs, { caller: BENCH_CALLER, now: new Date().toISOString() }, 'x').find(
  (s) => s.name === values.scenario,
)!;
const sides = await Promise.all(
  [old, next].map(async (t) => {
    const built = await build(t.dir);
    const token = built.token(['decisions:evaluate']);
    const requests = scenario.verdict.requests.map((r) => ({
      method: r.method,
      url: r.path,
      headers: { ...r.headers, authorization: `Bearer ${token}` },
      payload: r.body,
    }));
    return { name: t.sha, built, requests, micros: [] as number[] };
  }),
);
const per = Number(values.requests);
const block = async (side: (typeof sides)[0]) => {
  const start = process.cpuUsage();
  for (let i = 0; i < per; i++) {
    const response = await side.built.app.inject(side.requests[i % side.requests.length]!);
    if (response.statusCode !== 200) throw new Error(`${side.name}: ${response.statusCode} ${response.body}`);
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / per;
};
// Warm-up: every request of both sides, twice.
for (const side of sides) for (let i = 0; i < 2; i++) await block(side);
const blocks = Number(values.blocks);
for (let b = 0; b < blocks; b++) {
  for (const side of b % 2 ? [...sides].reverse() : sides) side.micros.push(await block(side));
}
for (const side of sides) await side.built.app.close();
const [o, n] = sides as [(typeof sides)[0], (typeof sides)[0]];
const paired = median(o.micros.map((x, i) => n.micros[i]! / x));
console.log(
  `${values.scenario} through inject, ${blocks} blocks × ${per} requests per side, CPU of this process:`,
);
for (const s of sides) console.log(`  ${s.name.padEnd(14)} median ${median(s.micros).toFixed(1)} µs/request`);
console.log(
  `  new/old: ${(median(n.micros) / median(o.micros)).toFixed(3)}× (median of per-block ratios ${paired.toFixed(3)}×)`,
);
process.exit(0);
