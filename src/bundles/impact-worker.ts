/**
 * A worker thread of impact analysis (impact.ts `ImpactWorkerPool`): loads the candidate bundle
 * once, from the bytes it is started with, then evaluates every page it is sent
 * (`evaluateImpactPage`) and answers with the page's outcome.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { parseBundle } from '../engine/bundle.ts';
import { PolicyEngine } from '../engine/engine.ts';
import { evaluateImpactPage, type ImpactRecord } from './impact-page.ts';

/**
 * What the pool sends: a page number (answers come back with it) and the page's records as the
 * JSON text the database built (decision-log.ts `impactPageSql`), parsed here, off the main thread.
 */
export interface ImpactWorkerRequest {
  page: number;
  records: string;
}

const port = parentPort;
if (!port) throw new Error('impact-worker.ts runs as a worker thread');
// NOTE: on Linux the nice value is per thread, and libuv's setpriority(0) is this thread only: live
// decisions (the main thread, nice 0) take the cores first, the analysis runs on what they leave.
try {
  if (typeof workerData.nice === 'number' && workerData.nice > 0) setPriority(workerData.nice);
} catch {
  // Not permitted or not supported here: the run goes on at normal priority.
}
const engine = PolicyEngine.fromBundle(parseBundle(Buffer.from(workerData.bundle as Uint8Array)));
port.on('message', (request: ImpactWorkerRequest) => {
  try {
    port.postMessage({
      page: request.page,
      outcome: evaluateImpactPage(engine, JSON.parse(request.records) as ImpactRecord[]),
    });
  } catch (err) {
    port.postMessage({ page: request.page, error: err instanceof Error ? err.message : String(err) });
  }
});
