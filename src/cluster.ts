import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { ShutdownLog } from './shutdown/graceful-shutdown.ts';

// Messages between a worker's GET /metrics and the primary that aggregates the process group.
const METRICS_REQUEST = 'verdict:metrics-request';
const METRICS_RESPONSE = 'verdict:metrics-response';
const SCRAPE_TIMEOUT_MS = 5_000;

/** A crashed worker is restarted, but not in a tight loop: at most this often per slot. */
const RESTART_BACKOFF_MS = [100, 500, 1_000, 2_000, 5_000];

interface MetricsRequest {
  type: typeof METRICS_REQUEST;
  id: number;
}
interface MetricsResponse {
  type: typeof METRICS_RESPONSE;
  id: number;
  text?: string;
  error?: string;
}

/** What the primary needs to supervise the workers. */
export interface PrimaryOptions {
  workers: number;
  log: ShutdownLog;
  /** After forwarding SIGTERM, how long to wait for the workers before exiting 1. */
  shutdownTimeoutMs: number;
}

/**
 * The primary of a VERDICT_WORKERS > 1 process group. It serves no HTTP itself: it forks the
 * workers (which share the listening port), restarts a worker that crashes, forwards SIGTERM/SIGINT
 * so that each worker shuts down gracefully, exits 0 when every worker exited 0, and answers the
 * workers' requests for the group's aggregated metrics.
 */
export function runPrimary(options: PrimaryOptions): void {
  const { log } = options;
  let stopping = false;
  const slots = new Map<number, number>(); // worker id → slot
  const crashes = new Map<number, number>(); // slot → consecutive crashes
  let failed = false;

  const fork = (slot: number) => {
    const worker = cluster.fork();
    slots.set(worker.id, slot);
    worker.once('listening', () => crashes.set(slot, 0));
  };

  // NOTE: the registry is created before any worker can ask, and its listeners collect the
  // workers' registries (prom-client's cluster protocol); sums counters, histograms and gauges
  // over the workers unless an instrument declares another aggregator.
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker: Worker, message: unknown) => {
    if ((message as MetricsRequest | null)?.type !== METRICS_REQUEST) return;
    const { id } = message as MetricsRequest;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: METRICS_RESPONSE, id, text } satisfies MetricsResponse),
      (err: Error) =>
        worker.send({ type: METRICS_RESPONSE, id, error: err.message } satisfies MetricsResponse),
    );
  });

  cluster.on('exit', (worker, code, signal) => {
    const slot = slots.get(worker.id) ?? 0;
    slots.delete(worker.id);
    if (stopping) {
      if (code !== 0) failed = true;
      log.info({ worker: worker.process.pid, code, signal }, 'worker stopped');
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        log.info({ failed }, 'all workers stopped');
        process.exit(failed ? 1 : 0);
      }
      return;
    }
    const n = crashes.get(slot) ?? 0;
    crashes.set(slot, n + 1);
    const delay = RESTART_BACKOFF_MS[Math.min(n, RESTART_BACKOFF_MS.length - 1)]!;
    log.error({ worker: worker.process.pid, code, signal, restart_in_ms: delay }, 'worker died; restarting');
    setTimeout(() => {
      if (!stopping) fork(slot);
    }, delay).unref();
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.error({ signal }, 'second signal; exiting 1');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'forwarding signal to workers');
    const live = Object.values(cluster.workers ?? {});
    if (live.length === 0) process.exit(0);
    for (const worker of live) worker?.process.kill(signal);
    setTimeout(() => {
      log.error({ timeout_ms: options.shutdownTimeoutMs }, 'workers did not stop in time; exiting 1');
      process.exit(1);
    }, options.shutdownTimeoutMs + 1_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  for (let slot = 0; slot < options.workers; slot++) fork(slot);
  log.info({ workers: options.workers, pid: process.pid }, 'primary started');
}

/** True in a worker forked by `runPrimary`. */
export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/**
 * In a worker: answers the primary's collection requests from this worker's registry, and returns
 * the scrape function GET /metrics uses there: the aggregated metrics of the whole process group,
 * asked of the primary — so a scrape never reports one worker picked at random by the balancer.
 */
export function workerMetrics(registry: Registry): () => Promise<string> {
  // Constructing the registry installs prom-client's worker-side listener.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on('message', (message: unknown) => {
    const response = message as MetricsResponse | null;
    if (response?.type !== METRICS_RESPONSE) return;
    const waiter = pending.get(response.id);
    if (!waiter) return;
    pending.delete(response.id);
    if (response.error !== undefined || response.text === undefined) {
      waiter.reject(new Error(`cluster metrics: ${response.error ?? 'no answer'}`));
    } else waiter.resolve(response.text);
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('cluster metrics: the primary did not answer in time'));
      }, SCRAPE_TIMEOUT_MS);
      pending.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      process.send?.({ type: METRICS_REQUEST, id } satisfies MetricsRequest);
    });
}
