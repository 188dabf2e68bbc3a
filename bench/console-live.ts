/**
 * Does the console cost the decision path anything? Decisions per second through HTTP with no
 * console page open, then with `--pages` (default 20) approvals inboxes open on live updates
 * (server-sent events, each re-rendered on every approval notice), alternating A/B/A/B so that a
 * drift of the (shared) host shows as a drift, not as a difference. Half the calls are high-risk
 * tool calls without an approval: each opens or reuses an approval request — one call in 20 opens
 * a new one, so the open inboxes are notified and re-rendered while the load runs (the live path at
 * work, not idle streams).
 *
 *   node bench/console-live.ts --database-url postgres://…/some_bench_db [--seconds 10] [--clients 16]
 *     [--pages 20] [--new-every 20]   (--new-every 0: no new request, the inboxes stay idle)
 *
 * Records decisions into that database (use a bench database, e.g. one bench/seed-decisions.ts made).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Scope } from '../src/auth/caller.ts';
import { mintToken } from '../src/auth/dev-token.ts';
import { resolveConfig } from '../src/config/resolve-config.ts';
import { createVerdict } from '../src/create-verdict.ts';

const { values: args } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '16' },
    pages: { type: 'string', default: '20' },
    'new-every': { type: 'string', default: '20' },
  },
});
const databaseUrl = args['database-url'];
if (!databaseUrl) throw new Error('--database-url of a bench database is required');
const seconds = Number(args.seconds);
const clients = Number(args.clients);
const pages = Number(args.pages);
/** One call in this many opens a new approval request (0: none, only reused ones). */
const newEvery = Number(args['new-every']);

const secret = randomBytes(32).toString('base64url');
const config = resolveConfig({
  DATABASE_URL: databaseUrl,
  JWT_SECRET: secret,
  VERDICT_CONSOLE_TOKEN_LOGIN: 'true',
  VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-console-live-')),
  VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
  VERDICT_RATE_LIMIT_MAX: '0',
  LOG_LEVEL: 'warn',
});
const verdict = await createVerdict(config);
const base = await verdict.app.listen({ port: 0, host: '127.0.0.1' });
const token = (sub: string, scopes: Scope[], human = false) =>
  mintToken(secret, {
    sub,
    scopes,
    ttlSeconds: 3600,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    ...(human ? { principalType: 'human' } : {}),
  });
const evaluator = `Bearer ${token('bench-runtime', ['decisions:evaluate'])}`;

async function signIn(n: number): Promise<string> {
  const form = await fetch(`${base}/console/login`);
  const csrfCookie = form.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  const res = await fetch(`${base}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      _csrf: csrf,
      token: token(`approver-${n}@example.com`, ['approvals:grant'], true),
    }).toString(),
  });
  const session = res.headers
    .getSetCookie()
    .find((c) => c.startsWith('verdict_session='))
    ?.split(';')[0];
  if (!session) throw new Error(`sign-in failed: ${res.status}`);
  return session;
}

/** Opens `n` live inboxes; answers how many events they received, and a close. */
async function openInboxes(n: number): Promise<{ events: () => number; close: () => void }> {
  const controller = new AbortController();
  let events = 0;
  for (let i = 0; i < n; i++) {
    const cookie = await signIn(i);
    const res = await fetch(`${base}/console/approvals/live`, {
      headers: { cookie, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    if (res.status !== 200 || !res.body) throw new Error(`live inbox: ${res.status}`);
    void (async () => {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          events += Buffer.from(chunk).toString().split('event: inbox').length - 1;
        }
      } catch {
        // aborted
      }
    })();
  }
  return { events: () => events, close: () => controller.abort() };
}

let counter = 0;
function envelope(): unknown {
  const n = counter++;
  const risky = n % 2 === 0;
  return {
    subject: { type: 'agent', id: 'code-agent', properties: { on_behalf_of: `user:${n % 50}` } },
    action: { name: 'tool.call' },
    resource: {
      type: 'tool',
      id: 'read_file',
      properties: {
        risk: risky ? 'high' : 'low',
        arguments: {
          path: newEvery > 0 && n % newEvery === 0 ? `/workspace/new-${n}.txt` : `/workspace/f${n % 200}.txt`,
        },
      },
    },
    context: { session: { untrusted_content: false, tool_calls: 1 }, data_classification: 'internal' },
  };
}

/** Decisions per second over `seconds` with `clients` concurrent callers. */
async function load(): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const res = await fetch(`${base}/v1/decisions`, {
          method: 'POST',
          headers: { authorization: evaluator, 'content-type': 'application/json' },
          body: JSON.stringify(envelope()),
        });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`decision: ${res.status}`);
        done++;
      }
    }),
  );
  return done / seconds;
}

await load(); // warm up (JIT, pools)
const results: string[] = [];
for (const phase of ['A', 'B', 'A', 'B']) {
  const inboxes = phase === 'B' ? await openInboxes(pages) : null;
  const before = loadavg()[0]!;
  const rate = await load();
  const events = inboxes?.events() ?? 0;
  inboxes?.close();
  results.push(
    `| ${phase === 'A' ? 'no console page' : `${pages} live inboxes`} | ${rate.toFixed(0)} | ${events} | ${before.toFixed(2)} |`,
  );
  process.stderr.write(`${phase}: ${rate.toFixed(0)} decisions/s (${events} inbox events)\n`);
}
console.log(
  `${clients} clients, ${seconds} s per phase, half the calls ask for an approval, ${newEvery > 0 ? `1 in ${newEvery} opens a new request` : 'none opens a new request'}\n`,
);
console.log(
  '| phase | decisions/s | inbox events pushed | load average (1 min) at start |\n|---|---|---|---|',
);
for (const row of results) console.log(row);
await verdict.close();
