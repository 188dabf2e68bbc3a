/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function, and inclusive time
 * per function, top N — the text form of a flame graph, enough to see where a request's time goes.
 *
 *   node bench/profile-summary.ts <file.cpuprofile> [top=25]
 *
 * It also attributes every sample to one part of the request (`buckets`): the innermost frame on
 * the sample's stack that belongs to a known part decides (Node's own frames — streams, sockets,
 * promises — are passed through to the code that called them, so a socket write of the Postgres
 * client counts as the audit's, not as HTTP's); the policy's wasm counts as the mask's or the
 * shadow's when those called it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url ? path.basename(url.replace(/^file:\/\//, '')) : '';
  return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
}

/** Self and inclusive milliseconds per function label, from a parsed profile. */
export function summarise(profile: Profile): {
  totalMs: number;
  self: Map<string, number>;
  inclusive: Map<string, number>;
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalMs = 0;
  for (const [id, us] of selfUs) {
    const ms = us / 1000;
    totalMs += ms;
    const node = byId.get(id)!;
    self.set(label(node), (self.get(label(node)) ?? 0) + ms);
    // Inclusive: every distinct function on the stack gets the sample once (recursion counted once).
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur)!);
      if (seen.has(l)) continue;
      seen.add(l);
      inclusive.set(l, (inclusive.get(l) ?? 0) + ms);
    }
  }
  return { totalMs, self, inclusive };
}

/** The parts of a request, by the source file (or library) of a frame; first match wins. */
const PARTS: [RegExp, string][] = [
  [/src\/decisions\/mask\.ts|^masked$/, 'mask evaluation'],
  [/src\/decisions\/shadow\.ts/, 'shadow evaluation'],
  [/src\/decisions\/evaluate\.ts|src\/engine\/|@open-policy-agent|^wasm:/, 'policy evaluation'],
  [/src\/audit\/chain\.ts/, 'hash chain (canonical row + SHA-256)'],
  [/src\/audit\/|node_modules\/pg/, 'Postgres client and audit writer'],
  [/src\/approvals\/|src\/exceptions\//, 'grants (waivers, approvals)'],
  [
    /src\/decisions\/|safe-stable-stringify|node_modules\/uuid/,
    'decision service (input JSON, digest, record)',
  ],
  [/src\/http\/body\.ts|secure-json-parse/, 'body parsing and checks'],
  [
    /node_modules\/(ajv|fast-json-stringify|fast-uri|@fastify\/ajv)/,
    'schema validation and reply serialisation',
  ],
  [/prom-client|src\/observability\/|pino/, 'metrics and logging'],
  [/src\/http\/auth\.ts|fast-jwt|@fastify\/jwt|rate-limit|toad-cache/, 'authentication'],
  [/src\/http\/|node_modules\/(fastify|find-my-way|avvio|@fastify|fastify-plugin)/, 'Fastify and routes'],
];
const STARTUP = /^node:internal\/modules|loader$/;
const NODE_HTTP = /^node:(_http|net|internal\/(http|stream|streams))|stream_base|_http_/;

/** Milliseconds per part of the request (see PARTS), from a parsed profile. */
export function buckets(profile: Profile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const partOf = new Map<number, string>();
  const classify = (leaf: number): string => {
    const name = byId.get(leaf)!.callFrame.functionName;
    if (name === '(idle)' || name === '(garbage collector)' || name === '(program)') return name;
    let policy = false;
    let nodeHttp = false;
    for (let cur: number | undefined = leaf; cur !== undefined; cur = parent.get(cur)) {
      const { url, functionName } = byId.get(cur)!.callFrame;
      const where = url || functionName;
      if (STARTUP.test(url) || functionName === 'compileSourceTextModule') return 'start-up (module loading)';
      if (NODE_HTTP.test(url)) nodeHttp = true;
      // DecisionService.masked (service.ts) is where the mask policy is evaluated.
      const part = PARTS.find(([pattern]) => pattern.test(functionName === 'masked' ? 'masked' : where))?.[1];
      if (part === undefined) continue;
      // The engine's frames belong to whoever asked: the decision, the mask or the shadow.
      if (part === 'policy evaluation') {
        policy = true;
        continue;
      }
      if (policy && part !== 'mask evaluation' && part !== 'shadow evaluation') return 'policy evaluation';
      return part;
    }
    if (policy) return 'policy evaluation';
    return nodeHttp ? "Node's HTTP, streams and sockets" : 'other (timers, promises, native)';
  };
  const out = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    let part = partOf.get(id);
    if (part === undefined) {
      part = classify(id);
      partOf.set(id, part);
    }
    out.set(part, (out.get(part) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return out;
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node bench/profile-summary.ts <file.cpuprofile> [top]');
  const top = Number(process.argv[3] ?? 25);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const { totalMs, self, inclusive } = summarise(profile);
  const print = (title: string, map: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [name, ms] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(
        `${((100 * ms) / totalMs).toFixed(1).padStart(6)}%  ${ms.toFixed(0).padStart(7)} ms  ${name}`,
      );
    }
  };
  console.log(`total sampled: ${totalMs.toFixed(0)} ms`);
  print('by part of the request (innermost owning frame)', buckets(profile));
  print('self time', self);
  print('inclusive time', inclusive);
}

if (import.meta.main) main();
