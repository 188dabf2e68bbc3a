/**
 * A worker thread of impact analysis (impact.ts `ImpactWorkerPool`): loads the candidate bundle
 * once, from the bytes it is started with, then evaluates every page it is sent
 * (`evaluateImpactPage`) and answers with the page's outcome.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseBundle } from '../engine/bundle.ts';
import { PolicyEngine } from '../engine/engine.ts';
import { evaluateImpactPage, type ImpactRecord } from './impact-page.ts';

/** What the pool sends: a page number (answers come back with it) and the page's records. */
export interface ImpactWorkerRequest {
  page: number;
  records: ImpactRecord[];
}

const port = parentPort;
if (!port) throw new Error('impact-worker.ts runs as a worker thread');
const engine = PolicyEngine.fromBundle(parseBundle(Buffer.from(workerData.bundle as Uint8Array)));
port.on('message', (request: ImpactWorkerRequest) => {
  try {
    port.postMessage({ page: request.page, outcome: evaluateImpactPage(engine, request.records) });
  } catch (err) {
    port.postMessage({ page: request.page, error: err instanceof Error ? err.message : String(err) });
  }
});
