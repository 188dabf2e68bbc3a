/**
 * Latency of the console's pages on a large decision log, through HTTP as a browser asks for them
 * (the session cookie, every hook, the page rendered): the explorer (first pages with and without
 * filters, a next page by its cursor), one decision's why, the policy register and the waiver
 * register. Starts one Verdict on an already seeded database; changes nothing in it but a session.
 *
 *   node bench/seed-decisions.ts --rows 10000000 --url postgres://…/verdict_bench   # once
 *   node bench/console-pages.ts --database-url postgres://…/verdict_bench [--runs 100]
 *
 * Prints p50/p95/max per page as a Markdown table and the load average before and after.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mintToken } from '../src/auth/dev-token.ts';
import { resolveConfig } from '../src/config/resolve-config.ts';
import { createVerdict } from '../src/create-verdict.ts';

const { values: args } = parseArgs({
  options: {
    'database-url': { type: 'string' },
    runs: { type: 'string', default: '100' },
  },
});
const databaseUrl = args['database-url'];
if (!databaseUrl)
  throw new Error('--database-url of a seeded database (bench/seed-decisions.ts) is required');
const runs = Number(args.runs);

const secret = randomBytes(32).toString('base64url');
const config = resolveConfig({
  DATABASE_URL: databaseUrl,
  JWT_SECRET: secret,
  VERDICT_CONSOLE_TOKEN_LOGIN: 'true',
  VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-console-bench-')),
  VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
  VERDICT_RATE_LIMIT_MAX: '0',
  LOG_LEVEL: 'warn',
});
const verdict = await createVerdict(config);
const base = await verdict.app.listen({ port: 0, host: '127.0.0.1' });

/** Signs in through the token form (CSRF included) and answers the session cookie. */
async function signIn(): Promise<string> {
  const form = await fetch(`${base}/console/login`);
  const csrfCookie = form.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1];
  if (!csrf) throw new Error('no CSRF field on the login page');
  const token = mintToken(secret, {
    sub: 'bench-auditor',
    scopes: ['audit:read', 'bundles:read', 'exceptions:request'],
    ttlSeconds: 3600,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    principalType: 'human',
  });
  const res = await fetch(`${base}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf, token, next: '/console/decisions' }).toString(),
  });
  const session = res.headers
    .getSetCookie()
    .find((c) => c.startsWith('verdict_session='))
    ?.split(';')[0];
  if (res.status !== 303 || !session) throw new Error(`sign-in failed: ${res.status}`);
  return session;
}

const cookie = await signIn();

async function get(url: string): Promise<{ ms: number; body: string }> {
  const started = performance.now();
  const res = await fetch(`${base}${url}`, { headers: { cookie } });
  const body = await res.text();
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${body.slice(0, 300)}`);
  return { ms, body };
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const subjects = () => pick(['agent-', 'user-', 'pipeline-']) + Math.floor(Math.random() * 50);
const controls = ['TOOL-001', 'TOOL-003', 'DATA-002', 'REL-005'];

// Decision ids and a next-page link to draw from.
const first = await get('/console/decisions');
const ids = [...first.body.matchAll(/data-decision="([^"]+)"/g)].map((m) => m[1]!);
const nextLink = /<a rel="next" href="([^"]+)"/.exec(first.body)?.[1]?.replaceAll('&amp;', '&');
if (ids.length === 0 || !nextLink) throw new Error('the database has no decisions: seed it first');

const pages: { name: string; url: () => string }[] = [
  { name: 'explorer, first page', url: () => '/console/decisions' },
  { name: 'explorer, denials', url: () => '/console/decisions?allow=false' },
  { name: 'explorer, by subject', url: () => `/console/decisions?subject_id=${subjects()}` },
  { name: 'explorer, by control', url: () => `/console/decisions?control=${pick(controls)}` },
  { name: 'explorer, next page (cursor)', url: () => nextLink },
  { name: 'decision, why', url: () => `/console/decisions/${pick(ids)}` },
  { name: 'policy register', url: () => '/console/policies' },
  { name: 'waiver register', url: () => '/console/waivers' },
];

const before = loadavg();
const rows: string[] = [];
for (const page of pages) {
  for (let i = 0; i < 5; i++) await get(page.url()); // warm up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push((await get(page.url())).ms);
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)]!;
  rows.push(
    `| ${page.name} | ${at(0.5).toFixed(1)} | ${at(0.95).toFixed(1)} | ${times.at(-1)!.toFixed(1)} |`,
  );
  process.stderr.write(`${page.name}: p95 ${at(0.95).toFixed(1)} ms\n`);
}
const after = loadavg();
const count = await verdict.database?.query<{ n: string }>({
  text: 'SELECT count(*) AS n FROM decision_log',
});

console.log(`decision_log rows: ${count?.rows[0]?.n ?? '?'}; ${runs} requests per page, one at a time`);
console.log(
  `load average before ${before.map((l) => l.toFixed(2)).join(' ')}, after ${after.map((l) => l.toFixed(2)).join(' ')}\n`,
);
console.log('| page | p50 ms | p95 ms | max ms |\n|---|---|---|---|');
for (const row of rows) console.log(row);
await verdict.close();
