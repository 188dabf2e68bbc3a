/**
 * Where a replica's RSS goes during impact analysis: a run alone (the analyzer, no service), sampled
 * every 200 ms — the process's RSS, the main thread's heap, external memory and array buffers, and
 * each worker thread's V8 heap (`worker.getHeapStatistics()`: total / used / external MB).
 *
 *   node bench/impact-heaps.ts [--url postgres://…/verdict_bench_impact_100k] [--workers N] [--page N]
 *
 * Needs a database seeded by `node bench/impact.ts --records N --url …` (it reuses the candidate
 * that bench uploaded). Prints every fifth sample, then the RSS after the first 10 % of the records
 * against its mean — the figure `bench/impact.ts` reports for the whole replica.
 */
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import type { Worker } from 'node:worker_threads';
import { ImpactAnalyzer } from '../src/bundles/impact.ts';
import { RevisionStore } from '../src/bundles/revisions.ts';
import { openDatabase } from '../src/store/open-database.ts';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/verdict_bench_impact_100k' },
    page: { type: 'string' },
    workers: { type: 'string' },
  },
});
const workers: Worker[] = [];
process.on('worker', (worker: Worker) => workers.push(worker));
const db = await openDatabase({ databaseUrl: args.url, dataDir: tmpdir() });
const { rows } = await db.query<{ digest: string }>({
  text: `SELECT digest FROM policy_revisions WHERE uploaded_by = 'bench' ORDER BY first_seen DESC LIMIT 1`,
  values: [],
});
const digest = rows[0]?.digest;
if (!digest) throw new Error('no candidate: run bench/impact.ts on this database first');
const impact = new ImpactAnalyzer({
  db,
  revisions: new RevisionStore(db),
  replicaId: 'bench-impact-heaps',
  defaultEntrypoint: 'verdict/decision',
  pageSize: args.page === undefined ? undefined : Number(args.page),
  workers: args.workers === undefined ? undefined : Number(args.workers),
});
const mb = (bytes: number) => Math.round(bytes / 1_048_576);
interface Sample {
  ms: number;
  read: number;
  rss: number;
  mainHeap: number;
  mainExternal: number;
  mainArrayBuffers: number;
  workers: string;
}
const samples: Sample[] = [];
const started = Date.now();
const run = await impact.start({
  digest,
  from: '2000-01-01T00:00:00Z',
  to: '2100-01-01T00:00:00Z',
  actor: 'bench',
});
let last = run;
const timer = setInterval(async () => {
  const m = process.memoryUsage();
  const heaps = await Promise.all(workers.map((w) => w.getHeapStatistics().catch(() => null)));
  samples.push({
    ms: Date.now() - started,
    read: last.evaluated + last.skipped,
    rss: mb(m.rss),
    mainHeap: mb(m.heapTotal),
    mainExternal: mb(m.external),
    mainArrayBuffers: mb(m.arrayBuffers),
    workers: heaps
      .map((h) => (h ? `${mb(h.total_heap_size)}/${mb(h.used_heap_size)}/${mb(h.external_memory)}` : '-'))
      .join(' '),
  });
}, 200);
for (;;) {
  await new Promise((r) => setTimeout(r, 250));
  last = (await impact.get(run.id)) ?? last;
  if (last.state !== 'running') break;
}
clearInterval(timer);
const seconds = (Date.now() - started) / 1000;
for (const s of samples.filter((_, i) => i % 5 === 0)) process.stdout.write(`${JSON.stringify(s)}\n`);
const steady = samples.filter((s) => s.read >= last.evaluated * 0.1).map((s) => s.rss);
const mean = steady.reduce((a, b) => a + b, 0) / Math.max(1, steady.length);
const lo = Math.min(...steady);
const hi = Math.max(...steady);
process.stdout.write(
  `${last.state}: ${last.evaluated} evaluated in ${seconds.toFixed(1)} s; RSS after the first 10 %: ${lo}..${hi} MB, mean ${mean.toFixed(0)} (+${((hi / mean - 1) * 100).toFixed(1)} / -${((1 - lo / mean) * 100).toFixed(1)} %)\n`,
);
await impact.close();
await db.close();
