/**
 * A/B of the guardrails' request path in ONE process, for a host shared with other work: the real
 * app of each checkout (createVerdict, Fastify inject: routing, body parse and checks, validation,
 * the decision, the group-commit audit write to Postgres, the reply), each on its own fresh
 * database, driven in interleaved blocks (16 requests in flight) of tool calls and 10 KB
 * `model.response` decisions. Reports the process's CPU (user + system) per decision — what a
 * saturated single-worker server's decisions/s is the inverse of, minus the sockets — and, per
 * block, the tool call's CPU over the response's (the decisions/s ratio the issue's target is
 * about, as the CPU sees it) and each checkout's CPU over the first's. Postgres's own CPU is not
 * counted. Every checkout uses this checkout's default bundle.
 *
 *   node bench/guardrails-ab.ts [--rounds 16] <label>=<checkout root> ... (this checkout is `new`)
 *
 * A checkout root holds `src/` (and `migrations/`, `policies/`, `package.json`), e.g. made with
 * `mkdir .ab-base && git archive <commit> src migrations policies package.json | tar -x -C .ab-base`
 * inside this checkout, so that it resolves this checkout's node_modules.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createTestDatabase } from '../test/support/database.ts';
import { response } from './guardrails.ts';

const root = path.resolve(import.meta.dirname, '..');
const BUNDLE = path.join(root, 'policies/bundle/bundle.tar.gz');
const IN_FLIGHT = 16;
const PER_BLOCK = 160;

const model = JSON.stringify({
  subject: { type: 'agent', id: 'support-bot' },
  action: { name: 'model.response' },
  resource: { type: 'model', id: 'support-llm', properties: { content: response(10 * 1024) } },
  context: { destination: 'user', data_classification: 'internal' },
});
const tool = JSON.stringify({
  subject: { type: 'agent', id: 'code-agent' },
  action: { name: 'tool.call' },
  resource: { type: 'tool', id: 'read_file', properties: { arguments: { path: '/workspace/src/main.ts' } } },
  context: { session: { untrusted_content: false, tool_calls: 3 }, data_classification: 'internal' },
});

interface Checkout {
  label: string;
  post(body: string): Promise<number>;
  close(): Promise<void>;
}

async function open(label: string, dir: string): Promise<Checkout> {
  const database = await createTestDatabase(`guardrails_ab_${label.replace(/\W/g, '_')}`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'verdict-guardrails-ab-'));
  const src = (file: string) => import(path.join(dir, 'src', file));
  const { resolveConfig } = await src('config/resolve-config.ts');
  const { createVerdict } = await src('create-verdict.ts');
  const { loadBundleFile } = await src('bundles/active.ts');
  const { createMetrics } = await src('observability/metrics.ts');
  const { mintToken } = await src('auth/dev-token.ts');
  const secret = randomBytes(32).toString('base64url');
  const config = resolveConfig({
    VERDICT_DATA_DIR: dataDir,
    VERDICT_RATE_LIMIT_MAX: '100000000',
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
    LOG_LEVEL: 'warn',
  });
  const verdict = await createVerdict(config, {
    database: database.db,
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    engine: await loadBundleFile(BUNDLE),
    metrics: createMetrics({ defaultMetrics: false }),
  });
  await verdict.app.ready();
  const token = mintToken(secret, { sub: 'bench', ttlSeconds: 3600, scopes: ['decisions:evaluate'] });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  return {
    label,
    post: async (payload) =>
      (await verdict.app.inject({ method: 'POST', url: '/v1/decisions', headers, payload })).statusCode,
    close: async () => {
      await verdict.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** CPU microseconds per decision of one block. */
async function block(checkout: Checkout, body: string): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < PER_BLOCK; i += IN_FLIGHT) {
    const codes = await Promise.all(Array.from({ length: IN_FLIGHT }, () => checkout.post(body)));
    if (codes.some((c) => c !== 200)) throw new Error(`${checkout.label}: answers ${codes.join(',')}`);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / PER_BLOCK;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { rounds: { type: 'string', default: '16' } },
    allowPositionals: true,
  });
  const specs = positionals.map((p) => {
    const at = p.indexOf('=');
    if (at < 1) throw new Error(`expected <label>=<checkout root>, got ${p}`);
    return { label: p.slice(0, at), dir: path.resolve(p.slice(at + 1)) };
  });
  specs.push({ label: 'new', dir: root });
  const checkouts: Checkout[] = [];
  try {
    for (const { label, dir } of specs) checkouts.push(await open(label, dir));
    const rounds = Number(values.rounds);
    const cpu = new Map<string, { tool: number[]; model: number[] }>(
      checkouts.map((c) => [c.label, { tool: [], model: [] }]),
    );
    // Two warm-up rounds, then alternate the order each round.
    for (let r = 0; r < rounds + 2; r++) {
      for (const checkout of r % 2 ? [...checkouts].reverse() : checkouts) {
        const t = await block(checkout, tool);
        const m = await block(checkout, model);
        if (r < 2) continue;
        cpu.get(checkout.label)!.tool.push(t);
        cpu.get(checkout.label)!.model.push(m);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const first = cpu.get(checkouts[0]!.label)!;
    for (const { label } of checkouts) {
      const c = cpu.get(label)!;
      const ratio = median(c.tool.map((t, i) => t / c.model[i]!));
      const vs =
        label === checkouts[0]!.label
          ? ''
          : `; ÷ ${checkouts[0]!.label} per block: model.response ${median(c.model.map((m, i) => m / first.model[i]!)).toFixed(2)}×, tool.call ${median(c.tool.map((t, i) => t / first.tool[i]!)).toFixed(2)}×`;
      console.log(
        `${label}: CPU per decision (median of ${rounds} blocks of ${PER_BLOCK}) tool.call ${median(c.tool).toFixed(0)} µs, 10 KB model.response ${median(c.model).toFixed(0)} µs; tool.call ÷ model.response per block ${(ratio * 100).toFixed(0)} %${vs}`,
      );
    }
  } finally {
    for (const checkout of checkouts) await checkout.close();
  }
}

if (import.meta.main) {
  main().catch((err) => {
    console.error(`guardrails-ab: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  });
}
