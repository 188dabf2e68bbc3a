/**
 * Latency of the auditor search (GET /v1/decisions) on a large decision log, measured through the
 * same query module the API uses (src/audit/queries.ts → DecisionLogReader.search).
 *
 *   node bench/seed-decisions.ts --rows 10000000     # once: builds verdict_bench
 *   node bench/query-bench.ts [--runs 200] [--limit 50] [--url postgres://…/verdict_bench] [--only kpis]
 *
 * For every filter type, `runs` page queries with values drawn from the seeded distributions, half
 * of them first pages and half resuming from a cursor at a random point in time (what paging deep
 * into a result does). Prints p50/p95/p99 per filter as a Markdown table, plus the plan of one
 * query per filter with --explain.
 */
import { parseArgs } from 'node:util';
import { computeKpis } from '../src/audit/kpis.ts';
import {
  type Cursor,
  type DecisionFilter,
  DecisionLogReader,
  searchDecisionsSql,
} from '../src/audit/queries.ts';
import { PostgresDatabase } from '../src/store/postgres.ts';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    limit: { type: 'string', default: '50' },
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/verdict_bench' },
    explain: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const runs = Number(args.runs);
const limit = Number(args.limit);

const db = new PostgresDatabase({ url: args.url, max: 2 });
const reader = new DecisionLogReader(db);

const { rows: span } = await db.query<{ lo: Date; hi: Date }>({
  text: 'SELECT min(decided_at) AS lo, max(decided_at) AS hi FROM decision_log',
});
const lo = span[0]!.lo.getTime();
const hi = span[0]!.hi.getTime();
const DAY = 86_400_000;

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
const int = (n: number) => Math.floor(Math.random() * n);
const pad = (n: number) => String(n).padStart(2, '0');
const at = (ms: number) => new Date(ms).toISOString();
const randomTime = (end = hi) => lo + Math.random() * (end - lo);
// NEVER-001 is never violated: the worst case for a search by control.
const CONTROLS = [
  'TOOL-001',
  'TOOL-002',
  'TOOL-005',
  'DATA-002',
  'REL-003',
  'REL-008',
  'EXC-001',
  'NEVER-001',
];

function subject(): { subjectType: string; subjectId: string } {
  const type = pick(['agent', 'agent', 'user', 'pipeline']);
  const count = type === 'agent' ? 500 : type === 'user' ? 5000 : 50;
  return { subjectType: type, subjectId: `${type}-${int(count)}` };
}

function resource(): { resourceType: string; resourceId: string } {
  const type = pick(['tool', 'tool', 'dataset', 'model']);
  const count = type === 'tool' ? 200 : type === 'dataset' ? 1000 : 100;
  return { resourceType: type, resourceId: `${type === 'model' ? 'model' : type}-${int(count)}` };
}

/** The filter types, each with a generator of realistic values. */
const FILTERS: Record<string, () => DecisionFilter> = {
  'none (all decisions)': () => ({}),
  'time window (1 day)': () => {
    const from = randomTime(hi - DAY);
    return { from: at(from), to: at(from + DAY) };
  },
  caller_sub: () => ({ callerSub: `svc-${pad(int(20))}` }),
  'subject_type + subject_id': () => subject(),
  'subject_id alone': () => ({ subjectId: subject().subjectId }),
  action: () => ({ actionName: pick(['tool.call', 'data.read', 'release.deploy']) }),
  'resource_type + resource_id': () => resource(),
  'resource_id alone': () => ({ resourceId: resource().resourceId }),
  'allow=false': () => ({ allow: false }),
  entrypoint: () => ({ entrypoint: pick(['verdict/decision', 'verdict/release']) }),
  revision: () => ({ revision: `rev-${pad(int(20))}` }),
  'control (common or rare)': () => ({ control: pick(CONTROLS) }),
  'caller + allow=false + 30 days': () => {
    const from = randomTime(hi - 30 * DAY);
    return { callerSub: `svc-${pad(int(20))}`, allow: false, from: at(from), to: at(from + 30 * DAY) };
  },
  'subject_id + action + 7 days': () => {
    const from = randomTime(hi - 7 * DAY);
    return {
      subjectId: subject().subjectId,
      actionName: 'tool.call',
      from: at(from),
      to: at(from + 7 * DAY),
    };
  },
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

// A cursor at a random point: the smallest possible id at that time, so the page starts there.
const randomCursor = (): Cursor => ({
  decidedAt: at(randomTime()),
  id: '00000000-0000-0000-0000-000000000000',
});

process.stdout.write(
  `query-bench: ${runs} runs per filter, limit ${limit}, ${at(lo)} .. ${at(hi)} (${args.url.replace(/\/\/.*@/, '//')})\n\n`,
);
process.stdout.write(
  '| filter | p50 ms | p95 ms | p99 ms | max ms | avg rows |\n|---|---:|---:|---:|---:|---:|\n',
);
let worstP95 = 0;
for (const [name, make] of Object.entries(FILTERS)) {
  if (args.only && !name.includes(args.only)) continue;
  // Warm-up: the first queries of a filter pay for reading its index pages from disk.
  for (let i = 0; i < 5; i++) await reader.search(make(), { limit, after: null });
  const times: number[] = [];
  let rows = 0;
  for (let i = 0; i < runs; i++) {
    const filter = make();
    const after = i % 2 === 1 ? randomCursor() : null;
    const started = performance.now();
    const page = await reader.search(filter, { limit, after });
    times.push(performance.now() - started);
    rows += page.items.length;
  }
  times.sort((a, b) => a - b);
  const p95 = percentile(times, 95);
  worstP95 = Math.max(worstP95, p95);
  process.stdout.write(
    `| ${name} | ${percentile(times, 50).toFixed(1)} | ${p95.toFixed(1)} | ${percentile(times, 99).toFixed(1)} | ${times.at(-1)!.toFixed(1)} | ${(rows / runs).toFixed(0)} |\n`,
  );
  if (args.explain) {
    const sql = searchDecisionsSql(make(), randomCursor(), limit + 1);
    const { rows: plan } = await db.query<{ 'QUERY PLAN': string }>({
      text: `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${sql.text}`,
      values: sql.values,
    });
    process.stdout.write(`\n${plan.map((r) => `    ${r['QUERY PLAN']}`).join('\n')}\n\n`);
  }
}
process.stdout.write(`\nworst p95: ${worstP95.toFixed(1)} ms (target < 100 ms)\n`);

// GET /v1/kpis: the whole report (src/audit/kpis.ts computeKpis) for a random 30-day window, per
// bucket size. It reads the rollups, not the log: the target is p95 < 200 ms on 10 M rows.
if (!args.only || 'kpis'.includes(args.only)) {
  process.stdout.write(
    `\n| KPIs, 30-day window | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|\n`,
  );
  let worstKpiP95 = 0;
  for (const bucket of ['hour', 'day', 'week'] as const) {
    const window = () => {
      const from = randomTime(Math.max(lo + 1, hi - 30 * DAY));
      return { from: new Date(from), to: new Date(from + 30 * DAY), bucket };
    };
    for (let i = 0; i < 5; i++) await computeKpis(db, window());
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const range = window();
      const started = performance.now();
      await computeKpis(db, range);
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const p95 = percentile(times, 95);
    worstKpiP95 = Math.max(worstKpiP95, p95);
    process.stdout.write(
      `| bucket=${bucket} | ${percentile(times, 50).toFixed(1)} | ${p95.toFixed(1)} | ${percentile(times, 99).toFixed(1)} | ${times.at(-1)!.toFixed(1)} |\n`,
    );
  }
  process.stdout.write(`\nKPI worst p95: ${worstKpiP95.toFixed(1)} ms (target < 200 ms)\n`);
}
await db.close();
