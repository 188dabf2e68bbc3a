/**
 * Impact analysis, old tree against this one, in one run: the analyzer alone (no service, as
 * bench/impact-heaps.ts) over a seeded window, each arm in a fresh process, arms alternating
 * (old, new, new, old, …) so that a host whose speed drifts weighs on both; medians and ratios.
 *
 *   node bench/impact-ab.ts [--old <git ref>] [--rounds 3] [--url postgres://…/verdict_bench_impact_200k]
 *                           [--workers N]
 *
 * Needs a database seeded by `node bench/impact.ts --records N --url …` (it reuses the candidate
 * that bench uploaded). The old tree is `git archive <ref>` into `.bench-old/<sha>/`
 * (bench/tree-at.ts); its analyzer runs with `yieldAbove: 1` when it has that setting (no live
 * traffic here; the comparison is of the page reads). Per arm: wall time, records/s and the RSS
 * sampled every 250 ms after the first 10 % of the records, against its mean (bench/impact.ts's
 * figure).
 */
import { execFileSync } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { treeAt } from './tree-at.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    old: { type: 'string', default: 'main' },
    rounds: { type: 'string', default: '3' },
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/verdict_bench_impact_200k' },
    workers: { type: 'string' },
    // Internal: run one arm from the tree at this directory and print its JSON.
    arm: { type: 'string' },
  },
});

interface ArmResult {
  seconds: number;
  /** CPU seconds of the arm's process (every thread) over the run: steadier than wall time on a shared host. */
  cpuSeconds: number;
  evaluated: number;
  perSecond: number;
  /** `minAt`: where the lowest sample falls among the samples after the first 10 % (0 first, 1 last). */
  rss: { min: number; max: number; mean: number; up: number; down: number; minAt: number };
}

async function arm(dir: string): Promise<ArmResult> {
  const from = (file: string) => import(pathToFileURL(path.join(dir, file)).href);
  const { ImpactAnalyzer } = await from('src/bundles/impact.ts');
  const { RevisionStore } = await from('src/bundles/revisions.ts');
  const { openDatabase } = await from('src/store/open-database.ts');
  const db = await openDatabase({ databaseUrl: args.url, dataDir: tmpdir() });
  const { rows } = await db.query({
    text: `SELECT digest FROM policy_revisions WHERE uploaded_by = 'bench' ORDER BY first_seen DESC LIMIT 1`,
    values: [],
  });
  const digest = rows[0]?.digest as string | undefined;
  if (!digest) throw new Error('no candidate: run bench/impact.ts on this database first');
  const { rows: counted } = await db.query({
    text: 'SELECT count(*)::int AS n FROM decision_log',
    values: [],
  });
  const records = Number(counted[0]?.n);
  const impact = new ImpactAnalyzer({
    db,
    revisions: new RevisionStore(db),
    replicaId: `bench-impact-ab-${process.pid}`,
    defaultEntrypoint: 'verdict/decision',
    workers: args.workers === undefined ? undefined : Number(args.workers),
    yieldAbove: 1,
  });
  const samples: { read: number; mb: number }[] = [];
  const cpu = process.cpuUsage();
  const started = Date.now();
  const run = await impact.start({
    digest,
    from: '2000-01-01T00:00:00Z',
    to: '2100-01-01T00:00:00Z',
    actor: 'bench',
  });
  let last = run;
  const sampler = setInterval(
    () => samples.push({ read: last.evaluated + last.skipped, mb: process.memoryUsage.rss() / 1_048_576 }),
    250,
  );
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    last = (await impact.get(run.id)) ?? last;
    if (last.state !== 'running') break;
  }
  clearInterval(sampler);
  const seconds = (Date.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await impact.close();
  await db.close();
  if (last.state !== 'done') throw new Error(`the run ended ${last.state}: ${JSON.stringify(last.error)}`);
  const steady = samples.filter((s) => s.read >= records * 0.1).map((s) => s.mb);
  const mean = steady.reduce((a, b) => a + b, 0) / Math.max(1, steady.length);
  const min = Math.min(...steady);
  const max = Math.max(...steady);
  return {
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    evaluated: last.evaluated,
    perSecond: last.evaluated / seconds,
    rss: {
      min,
      max,
      mean,
      up: (max - mean) / mean,
      down: (mean - min) / mean,
      minAt: steady.indexOf(min) / Math.max(1, steady.length - 1),
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  if (args.arm !== undefined) {
    process.stdout.write(`${JSON.stringify(await arm(args.arm))}\n`);
    process.exit(0);
  }
  const old = treeAt(args.old);
  const load = loadavg();
  const order: ('old' | 'new')[] = [];
  for (let r = 0; r < Number(args.rounds); r++)
    order.push(...((r % 2 === 0 ? ['old', 'new'] : ['new', 'old']) as ('old' | 'new')[]));
  const results: Record<'old' | 'new', ArmResult[]> = { old: [], new: [] };
  for (const which of order) {
    const dir = which === 'old' ? old.dir : ROOT;
    const armArgs = [path.join(ROOT, 'bench/impact-ab.ts'), '--arm', dir, '--url', args.url];
    if (args.workers !== undefined) armArgs.push('--workers', args.workers);
    const out = execFileSync(process.execPath, armArgs, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const result = JSON.parse(out.trim().split('\n').at(-1) as string) as ArmResult;
    results[which].push(result);
    process.stdout.write(
      `impact-ab: ${which} ${result.seconds.toFixed(1)} s (${Math.round(result.perSecond)}/s), CPU ${result.cpuSeconds.toFixed(1)} s, RSS ${result.rss.min.toFixed(0)}–${result.rss.max.toFixed(0)} MB, mean ${result.rss.mean.toFixed(0)} (+${(result.rss.up * 100).toFixed(1)} % / −${(result.rss.down * 100).toFixed(1)} %, lowest at ${(result.rss.minAt * 100).toFixed(0)} %); load ${loadavg()[0]?.toFixed(2)}\n`,
    );
  }
  const secs = (w: 'old' | 'new') => median(results[w].map((r) => r.seconds));
  const cpuOf = (w: 'old' | 'new') => median(results[w].map((r) => r.cpuSeconds));
  const pairs = results.new.map((r, i) => r.seconds / (results.old[i] as ArmResult).seconds);
  const worst = (w: 'old' | 'new') => Math.max(...results[w].map((r) => Math.max(r.rss.up, r.rss.down)));
  process.stdout.write(
    `impact-ab: old ${old.sha} vs this tree, ${order.length} runs; load average ${load.map((l) => l.toFixed(2)).join(' ')} → ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n` +
      `impact-ab: median seconds old ${secs('old').toFixed(1)}, new ${secs('new').toFixed(1)}: new/old ${(secs('new') / secs('old')).toFixed(3)}; per round ${pairs.map((p) => p.toFixed(2)).join(', ')}\n` +
      `impact-ab: median CPU seconds (this process, every thread) old ${cpuOf('old').toFixed(1)}, new ${cpuOf('new').toFixed(1)}: new/old ${(cpuOf('new') / cpuOf('old')).toFixed(3)}\n` +
      `impact-ab: median RSS mean old ${median(results.old.map((r) => r.rss.mean)).toFixed(0)} MB, new ${median(results.new.map((r) => r.rss.mean)).toFixed(0)} MB; widest spread old ±${(worst('old') * 100).toFixed(1)} %, new ±${(worst('new') * 100).toFixed(1)} %\n`,
  );
}

main().catch((err) => {
  process.stderr.write(
    `impact-ab: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
