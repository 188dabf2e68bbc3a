/**
 * Impact analysis (issue 22), measured: a candidate revision on a window of recorded tool-call
 * decisions, against what a user would do without it — export the window as NDJSON
 * (`GET /v1/audit/export`) and evaluate every input with `opa run --server` on the candidate.
 *
 *   node bench/impact.ts [--records 1000000] [--url postgres://…/verdict_bench_impact] [--reseed]
 *                        [--opa-records N] [--live-seconds 5] [--workers N] [--nice N]
 *
 * (Run through `bash scripts/run.sh --opa node bench/impact.ts …` or with the pinned `opa` on PATH.)
 *
 * 1. Seed (once; reused while the row count matches, `--reseed` forces it): a dedicated database,
 *    every migration, `--records` tool-call decisions over the last 30 days. The inputs are a pool
 *    of realistic tool-call envelopes (test/support/envelopes.ts: agents, tools, budgets, approvals)
 *    with the `caller`, `now` and `grants` the service attaches; each pool entry was evaluated on
 *    the default bundle, so the recorded allow and controls are what that revision said, and its
 *    `input_sha256` is the digest of the stored input (nothing masked). Rows are generated in
 *    Postgres from the pool (`INSERT … SELECT … generate_series`); their chain columns are filler
 *    (this bench does not verify chains; bench/seed-decisions.ts is the log seeder for queries).
 * 2. The candidate: policies/ with support-bot losing send_email, TOOL-001 unwaivable and a bundled
 *    waiver of TOOL-005 for code-agent, built with `opa build -t wasm`, stored as a revision.
 * 3. Verdict (createVerdict on that database), live decisions/s without a run (closed loop of
 *    `decide()`, 16 in flight, `--live-seconds`).
 * 4. The run alone: `impact.start()` over the window, wall time, records/s, RSS sampled
 *    every 250 ms (spread after the first 10 % of the records, against the mean).
 * 5. The live loop beside a second run (cancelled afterwards); then the live loop alone again (the
 *    host's drift shows in the two "alone" figures).
 * 6. The user's way: the export of the same window to an NDJSON file (timed), then `opa run
 *    --server` on the candidate's sources, one `POST /v1/data/verdict/decision` per line, 16 in
 *    flight over keep-alive (timed on the first `--opa-records` lines; the whole file by default).
 *
 * Writes bench/results/impact-<date>.json and prints a summary.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  createReadStream,
  createWriteStream,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { Agent, request } from 'undici';
import { mintToken } from '../src/auth/dev-token.ts';
import { ImpactAnalyzer } from '../src/bundles/impact.ts';
import { RevisionStore } from '../src/bundles/revisions.ts';
import { resolveConfig } from '../src/config/resolve-config.ts';
import { createVerdict } from '../src/create-verdict.ts';
import { canonicalJson, inputDigest } from '../src/decisions/canonical-json.ts';
import { evaluateDecision } from '../src/decisions/evaluate.ts';
import { parseBundle } from '../src/engine/bundle.ts';
import { PolicyEngine } from '../src/engine/engine.ts';
import { createMetrics } from '../src/observability/metrics.ts';
import { InProcessBus } from '../src/store/bus.ts';
import { migrate } from '../src/store/migrate.ts';
import { openDatabase } from '../src/store/open-database.ts';
import type { Database } from '../src/store/types.ts';
import { generateEnvelopes } from '../test/support/envelopes.ts';
import { startOpaServer } from '../test/support/opa-server.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/verdict_bench_impact' },
    reseed: { type: 'boolean', default: false },
    'opa-records': { type: 'string' },
    'live-seconds': { type: 'string', default: '5' },
    workers: { type: 'string' },
    nice: { type: 'string' },
  },
});
const RECORDS = Number(args.records);
const LIVE_SECONDS = Number(args['live-seconds']);
const WINDOW_DAYS = 30;
const DEFAULT_BUNDLE = path.join(root, 'policies/bundle/bundle.tar.gz');
const ENTRYPOINTS = [
  'verdict/decision',
  'verdict/tool/decision',
  'verdict/release/decision',
  'verdict/data/decision',
  'system/log/mask',
];
const log = (text: string) => process.stdout.write(`impact-bench: ${text}\n`);
const rssMb = () => process.memoryUsage.rss() / 1048576;
/** A full GC of this isolate now (V8's `gc`, exposed for this call only). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const target = new URL(args.url);
const dbName = target.pathname.slice(1);
if (!/^[a-z_][a-z0-9_]*$/.test(dbName)) throw new Error(`unsafe database name ${dbName}`);

/** Tool-call envelopes with what the service attaches, and what the default bundle said. */
function pool() {
  const engine = PolicyEngine.fromBundle(parseBundle(readFileSync(DEFAULT_BUNDLE)));
  const out: {
    input: string;
    sha: string;
    allow: boolean;
    controls: string[];
    subject: string;
    tool: string;
  }[] = [];
  for (const e of generateEnvelopes(12_000, 2222)) {
    if (e.action.name !== 'tool.call' || e.resource.type !== 'tool') continue;
    const input = { ...e, grants: e.grants ?? { exceptions: [] } };
    const json = canonicalJson(input) as string;
    const evaluation = evaluateDecision(engine, 'native', 'verdict/decision', json);
    out.push({
      input: json,
      sha: inputDigest(json),
      allow: evaluation.allow,
      controls: [...new Set(evaluation.result.violations.map((v) => v.control))],
      subject: String(e.subject.id),
      tool: String(e.resource.id),
    });
  }
  return out;
}

async function seed(): Promise<{ from: string; to: string }> {
  const admin = new URL(args.url);
  admin.pathname = '/postgres';
  const a = new pg.Client({ connectionString: admin.toString() });
  await a.connect();
  const exists = (await a.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName])).rowCount === 1;
  if (exists && !args.reseed) {
    const c = new pg.Client({ connectionString: args.url });
    await c.connect();
    const meta = await c
      .query<{ n: string; lo: Date; hi: Date }>(
        `SELECT count(*) AS n, min(decided_at) AS lo, max(decided_at) AS hi FROM decision_log WHERE writer_id LIKE 'bench-impact-%'`,
      )
      .catch(() => null);
    await c.end();
    if (meta && Number(meta.rows[0]?.n) === RECORDS) {
      await a.end();
      log(`reusing ${dbName}: ${RECORDS.toLocaleString('en')} records`);
      const row = meta.rows[0] as { lo: Date; hi: Date };
      return { from: row.lo.toISOString(), to: new Date(row.hi.getTime() + 1).toISOString() };
    }
  }
  await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await a.query(`CREATE DATABASE ${dbName}`);
  await a.end();
  const started = Date.now();
  // Migrations through the service's own runner: createVerdict would do the same on first start.
  const db = await openDatabase({ databaseUrl: args.url, dataDir: tmpdir() });
  await migrate(db);
  await db.close();
  const c = new pg.Client({ connectionString: args.url });
  await c.connect();
  await c.query('SET synchronous_commit = off');
  await c.query(`SET maintenance_work_mem = '512MB'`);
  const entries = pool();
  log(`pool: ${entries.length} tool-call inputs (${entries.filter((e) => e.allow).length} allowed)`);
  await c.query(
    `CREATE TEMP TABLE pool (k int, input json, sha text, allow boolean, controls text, subject text, tool text)`,
  );
  await c.query(
    `INSERT INTO pool SELECT * FROM unnest($1::int[], $2::json[], $3::text[], $4::boolean[], $5::text[], $6::text[], $7::text[])`,
    [
      entries.map((_, i) => i),
      entries.map((e) => e.input),
      entries.map((e) => e.sha),
      entries.map((e) => e.allow),
      // Controls travel as one comma-joined text (arrays of arrays must be rectangular).
      entries.map((e) => e.controls.join(',')),
      entries.map((e) => e.subject),
      entries.map((e) => e.tool),
    ],
  );
  const { rows: indexes } = await c.query<{ name: string; definition: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE t.relname = 'decision_log' AND NOT x.indisprimary`,
  );
  for (const { name } of indexes) await c.query(`DROP INDEX ${name}`);
  const to = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const from = new Date(to.getTime() - WINDOW_DAYS * 86_400_000);
  const digest = parseBundle(readFileSync(DEFAULT_BUNDLE));
  const chunk = 250_000;
  for (let lo = 0; lo < RECORDS; lo += chunk) {
    const hi = Math.min(RECORDS, lo + chunk) - 1;
    await c.query(
      `INSERT INTO decision_log (id, decided_at, writer_id, seq, prev_hash, hash, surface, caller_sub, caller,
         entrypoint, bundle_revision, bundle_digest, subject_type, subject_id, action_name, resource_type,
         resource_id, allow, violated_controls, result, input, input_sha256, exceptions, eval_micros)
       SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3) || '8' ||
                substr(h, 4, 15))::uuid,
              t, 'bench-impact-' || (g % 4), g / 4, h || h, h || h, 'native', p.input->'caller'->>'sub',
              p.input->'caller', 'verdict/decision', $5, $6, 'agent', p.subject, 'tool.call', 'tool', p.tool,
              p.allow, CASE WHEN p.controls = '' THEN '{}'::text[] ELSE string_to_array(p.controls, ',') END,
              jsonb_build_object('allow', p.allow, 'violations', '[]'::jsonb, 'obligations', '[]'::jsonb, 'exceptions', '[]'::jsonb),
              p.input, p.sha, '{}'::text[], 40
         FROM (SELECT g, $3::timestamptz + make_interval(secs => g::float8 * $4 / $7) AS t,
                      md5(g::text || 'impact') AS h FROM generate_series($1::bigint, $2::bigint) AS g) s
         JOIN pool p ON p.k = s.g % $8`,
      [
        lo,
        hi,
        from.toISOString(),
        WINDOW_DAYS * 86_400,
        digest.revision,
        digest.digest,
        RECORDS,
        entries.length,
      ],
    );
    log(`seeded ${(hi + 1).toLocaleString('en')} records (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  for (const { definition } of indexes) await c.query(definition.replace(/ ON ONLY /, ' ON '));
  await c.query('ANALYZE decision_log');
  await c.end();
  log(`seed done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return { from: from.toISOString(), to: new Date(to.getTime() + 1).toISOString() };
}

/** The candidate's sources (a changed copy of policies/) and its wasm bundle. */
function candidate(): { src: string; bytes: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), 'verdict-impact-bench-'));
  const src = path.join(dir, 'policies');
  cpSync(path.join(root, 'policies'), src, {
    recursive: true,
    filter: (from) =>
      !from.includes(`${path.sep}bundle`) && !from.includes(`${path.sep}tests`) && !from.endsWith('.md'),
  });
  const data = JSON.parse(readFileSync(path.join(src, 'data.json'), 'utf8'));
  const agents = data.verdict_data.agents;
  agents['support-bot'].tools = agents['support-bot'].tools.filter((t: string) => t !== 'send_email');
  data.verdict_data.controls['TOOL-001'].waivable = false;
  data.verdict_data.exceptions = [
    {
      id: 'exc-bench',
      control: 'TOOL-005',
      subject_id: 'code-agent',
      approved: true,
      expires_at: '2099-01-01T00:00:00Z',
    },
  ];
  writeFileSync(path.join(src, 'data.json'), JSON.stringify(data));
  const out = path.join(dir, 'candidate.tar.gz');
  writeFileSync(
    path.join(src, '.manifest'),
    JSON.stringify({ roots: ['verdict', 'verdict_data', 'system/log'] }),
  );
  const build = [
    'build',
    '-t',
    'wasm',
    '-b',
    src,
    '--revision',
    `bench-candidate-${randomBytes(3).toString('hex')}`,
    '-o',
    out,
  ];
  for (const e of ENTRYPOINTS) build.push('-e', e);
  execFileSync('opa', build, { stdio: 'pipe' });
  return { src, bytes: readFileSync(out) };
}

async function main(): Promise<void> {
  const load = loadavg();
  log(`cores ${availableParallelism()}, load average ${load.map((l) => l.toFixed(2)).join(' ')}`);
  const window = await seed();
  const { src, bytes } = candidate();
  const secret = randomBytes(32).toString('base64url');
  const config = resolveConfig({
    DATABASE_URL: args.url,
    VERDICT_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'verdict-impact-bench-data-')),
    VERDICT_BUNDLE: DEFAULT_BUNDLE,
    VERDICT_RATE_LIMIT_MAX: '100000000',
    VERDICT_SHED_EVENT_LOOP_DELAY_MS: '0',
  });
  const verdict = await createVerdict(config, {
    keys: { kind: 'secret', secret, algorithms: ['HS256'] },
    bus: new InProcessBus(),
    redis: null,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  const lifecycle = verdict.lifecycle;
  if (!lifecycle) throw new Error('no lifecycle');
  const { revision } = await lifecycle.upload(bytes, 'bench');
  const digest = revision.digest;
  // The replica's analyzer unless --workers / --nice ask for other settings (then one on the same
  // database, built as the lifecycle builds its own).
  const impact =
    args.workers === undefined && args.nice === undefined
      ? lifecycle.impact
      : new ImpactAnalyzer({
          db: verdict.database as Database,
          revisions: new RevisionStore(verdict.database as Database),
          replicaId: 'bench-impact',
          defaultEntrypoint: config.defaultEntrypoint,
          workers: args.workers === undefined ? undefined : Number(args.workers),
          workerNice: args.nice === undefined ? undefined : Number(args.nice),
        });

  // Live decisions: a closed loop of decide() with 16 in flight, for `seconds`.
  const inputs = pool()
    .slice(0, 500)
    .map((p) => {
      const { caller: _c, now: _n, grants: _g, ...envelope } = JSON.parse(p.input);
      return envelope;
    });
  const caller = { sub: 'svc-agent-runtime', iss: null, clientId: null, scopes: ['decisions:evaluate'] };
  const live = async (seconds: number) => {
    const end = Date.now() + seconds * 1000;
    let count = 0;
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = w; Date.now() < end; i += 16) {
          await verdict.decisions.decide({
            surface: 'native',
            entrypoint: 'verdict/decision',
            input: inputs[i % inputs.length],
            caller: caller as never,
            traceId: null,
          });
          count += 1;
        }
      }),
    );
    return count / seconds;
  };
  await live(LIVE_SECONDS); // warm-up (JIT, pool connections, the writer's first batches)
  const liveAlone = await live(LIVE_SECONDS);
  log(`live decisions without a run: ${liveAlone.toFixed(0)}/s`);

  // The run alone, from a collected heap: the live phases above leave garbage (the writer's batches,
  // requests) that V8 and malloc give back whenever a full GC comes, which would read as the run's
  // RSS falling by a hundred MB or more in the middle of it (a run of 07:00 fell 460 → 271 MB at 84 %).
  collectGarbage();
  const rss: { at: number; read: number; mb: number }[] = [];
  const started = Date.now();
  const run = await impact.start({ digest, from: window.from, to: window.to, actor: 'bench' });
  let last = run;
  const sampler = setInterval(
    () => rss.push({ at: Date.now() - started, read: last.evaluated + last.skipped, mb: rssMb() }),
    250,
  );
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    last = (await impact.get(run.id)) ?? last;
    if (last.state !== 'running') break;
  }
  clearInterval(sampler);
  const seconds = (Date.now() - started) / 1000;
  const steady = rss.filter((s) => s.read >= RECORDS * 0.1).map((s) => s.mb);
  const mean = steady.reduce((a, b) => a + b, 0) / Math.max(1, steady.length);
  const spread = steady.length ? [Math.min(...steady), Math.max(...steady)] : [0, 0];
  log(
    `run: ${last.state}, ${last.evaluated.toLocaleString('en')} evaluated in ${seconds.toFixed(1)} s (${Math.round(
      last.evaluated / seconds,
    ).toLocaleString(
      'en',
    )}/s); flips ${last.flips.map((f) => `${f.direction} ${f.count}`).join(', ')}; RSS ${spread[0]?.toFixed(0)}..${spread[1]?.toFixed(0)} MB (mean ${mean.toFixed(0)}, ${((((spread[1] as number) - mean) / mean) * 100).toFixed(1)} % / ${(((mean - (spread[0] as number)) / mean) * 100).toFixed(1)} %)`,
  );

  // Live decisions during a run; then alone again, so that a host whose speed drifted shows in
  // the two "alone" figures.
  const duringRun = async (analyzer: ImpactAnalyzer, label: string) => {
    const second = await analyzer.start({ digest, from: window.from, to: window.to, actor: 'bench' });
    await new Promise((r) => setTimeout(r, 500));
    const before = (await analyzer.get(second.id))?.evaluated ?? 0;
    const rate = await live(LIVE_SECONDS);
    const read = ((await analyzer.get(second.id))?.evaluated ?? 0) - before;
    await analyzer.cancel(second.id, 'bench').catch(() => {});
    await analyzer.settled();
    log(
      `live decisions during a run (${label}): ${rate.toFixed(0)}/s (${(((rate - liveAlone) / liveAlone) * 100).toFixed(1)} %); the run read ${read.toLocaleString('en')} meanwhile`,
    );
    return { rate, read };
  };
  const during = await duringRun(impact, 'the replica’s analyzer');
  const liveDuring = during.rate;
  const liveAgain = await live(LIVE_SECONDS);
  log(`live decisions without a run, again: ${liveAgain.toFixed(0)}/s`);

  // The user's way: export the window as NDJSON, then opa run --server on the candidate.
  const auditToken = mintToken(secret, {
    sub: 'bench',
    scopes: ['audit:read'],
    ttlSeconds: 3600,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
  });
  const url = await verdict.app.listen({ port: 0, host: '127.0.0.1' });
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'verdict-impact-export-')), 'window.ndjson');
  const exportStarted = Date.now();
  const query = new URLSearchParams({ from: window.from, to: window.to, entrypoint: 'verdict/decision' });
  const res = await fetch(`${url}/v1/audit/export?${query}`, {
    headers: { authorization: `Bearer ${auditToken}` },
  });
  if (!res.ok || !res.body) throw new Error(`export: ${res.status}`);
  await pipeline(Readable.fromWeb(res.body as never), createWriteStream(file));
  const exportSeconds = (Date.now() - exportStarted) / 1000;
  log(`export: ${exportSeconds.toFixed(1)} s`);
  await verdict.close();

  const opaLimit = args['opa-records'] === undefined ? RECORDS : Number(args['opa-records']);
  const opa = await startOpaServer(src);
  const agent = new Agent({ connections: 16, pipelining: 1 });
  const opaStarted = Date.now();
  let evaluated = 0;
  let opaAllowToDeny = 0;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  const inFlight = new Set<Promise<void>>();
  for await (const line of lines) {
    if (evaluated + inFlight.size >= opaLimit) break;
    const record = JSON.parse(line) as { allow: boolean; input: unknown };
    const p = request(`${opa.url}/v1/data/verdict/decision`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: record.input }),
    })
      .then((r) => r.body.json() as Promise<{ result: { allow: boolean } }>)
      .then((answer) => {
        evaluated += 1;
        if (record.allow && !answer.result.allow) opaAllowToDeny += 1;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 16) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const opaSeconds = (Date.now() - opaStarted) / 1000;
  await opa.stop();
  await agent.close();
  const opaRate = evaluated / opaSeconds;
  const userSeconds = exportSeconds + RECORDS / opaRate;
  log(
    `opa run --server: ${evaluated.toLocaleString('en')} evaluated in ${opaSeconds.toFixed(1)} s (${Math.round(opaRate).toLocaleString('en')}/s); allow_to_deny among them ${opaAllowToDeny}`,
  );
  const result = {
    date: new Date().toISOString(),
    cores: availableParallelism(),
    loadavg_before: load,
    loadavg_after: loadavg(),
    records: RECORDS,
    worker_nice: args.nice === undefined ? 10 : Number(args.nice),
    impact: {
      state: last.state,
      seconds,
      records_per_s: last.evaluated / seconds,
      flips: last.flips.map((f) => ({ direction: f.direction, count: f.count })),
      rss_mb: {
        min: spread[0],
        max: spread[1],
        mean,
        samples: steady.length,
        // Every 20th sample: [ms since start, records read, MB], to see whether the heaps level off.
        series: rss.filter((_, i) => i % 20 === 0).map((r) => [r.at, r.read, Math.round(r.mb)]),
      },
    },
    live: {
      alone_per_s: liveAlone,
      alone_again_per_s: liveAgain,
      during_run_per_s: liveDuring,
      change: (liveDuring - liveAlone) / liveAlone,
      run_read_per_s: during.read / LIVE_SECONDS,
    },
    baseline: {
      export_seconds: exportSeconds,
      opa_records: evaluated,
      opa_seconds: opaSeconds,
      opa_per_s: opaRate,
      user_seconds_for_window: userSeconds,
      measured_whole_window: evaluated === RECORDS,
    },
    ratio: userSeconds / seconds,
  };
  log(
    `ratio: the user's way ${userSeconds.toFixed(1)} s vs impact ${seconds.toFixed(1)} s = ${result.ratio.toFixed(1)}×`,
  );
  log(
    `load average now ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const out = path.join(
    root,
    'bench/results',
    `impact-${result.date.slice(0, 10)}-nice${result.worker_nice}.json`,
  );
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  log(`written ${path.relative(root, out)}`);
}

main().catch((err) => {
  process.stderr.write(
    `impact-bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
