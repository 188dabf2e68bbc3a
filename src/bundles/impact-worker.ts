/**
 * A worker thread of impact analysis (impact.ts `ImpactWorkerPool`): loads the candidate bundle
 * once, from the bytes it is started with, then evaluates every page it is given
 * (`evaluateImpactPage`) and answers with the page's outcome. On Postgres it reads each page itself,
 * over a connection of its own, from the cursor it is sent, and answers the next page's cursor as
 * soon as the page is read — so a page's text never reaches the replica's main thread. On PGlite
 * (which lives in the main thread) it is sent the page's text instead.
 */
import { setPriority } from 'node:os';
import { setImmediate as turn } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { type Cursor, type DecisionFilter, impactPageSql } from '../audit/decision-log.ts';
import { parseBundle } from '../engine/bundle.ts';
import { PolicyEngine } from '../engine/engine.ts';
import { PostgresDatabase } from '../store/postgres.ts';
import type { PostgresConnection } from '../store/types.ts';
import {
  emptyImpactOutcome,
  evaluateImpactPage,
  type ImpactPageOutcome,
  type ImpactPageRow,
  type ImpactRecord,
  nextPageCursor,
} from './impact-page.ts';

/** What a worker is started with. */
export interface ImpactWorkerData {
  bundle: Uint8Array;
  nice: number;
  /** Postgres: where and what the worker reads; null on PGlite (pages come as text). */
  reader: {
    connection: PostgresConnection;
    filter: DecisionFilter;
    pageSize: number;
    pageBytes: number;
  } | null;
}

/**
 * What the pool sends: a page to read from its cursor (`after`, Postgres) or a page's records as
 * the JSON text the database built (`records`, PGlite); answers come back with the page number.
 * `close` ends the worker once its connection is closed.
 */
export type ImpactWorkerRequest =
  | { page: number; after: Cursor | null }
  | { page: number; records: string }
  | { close: true };

/** What a worker answers: the next page's cursor (read pages only, first), then the outcome or the error. */
export type ImpactWorkerAnswer =
  | { page: number; next: Cursor | null }
  | { page: number; outcome: ImpactPageOutcome }
  | { page: number; error: string };

const port = parentPort;
if (!port) throw new Error('impact-worker.ts runs as a worker thread');
const data = workerData as ImpactWorkerData;
// NOTE: on Linux the nice value is per thread, and libuv's setpriority(0) is this thread only: live
// decisions (the main thread, nice 0) take the cores first, the analysis runs on what they leave.
try {
  if (data.nice > 0) setPriority(data.nice);
} catch {
  // Not permitted or not supported here: the run goes on at normal priority.
}
const engine = PolicyEngine.fromBundle(parseBundle(Buffer.from(data.bundle)));
const reader = data.reader;
// One connection: a worker reads one page at a time.
const db = reader ? new PostgresDatabase({ ...reader.connection, max: 1 }) : null;
/** Records evaluated between two turns of the event loop. */
const RECORDS_PER_TURN = 50;
let closing = false;
/** The evaluations take turns (one page at a time); reads run beside them. */
let evaluations: Promise<void> = Promise.resolve();

/** The page's records as JSON text: read from its cursor (answering the next one at once), or as sent. */
async function pageText(request: { page: number; after: Cursor | null } | { page: number; records: string }) {
  if ('records' in request) return request.records;
  if (!db || !reader) throw new Error('this impact worker has no database to read pages from');
  const { rows } = await db.query<ImpactPageRow>(
    impactPageSql(reader.filter, request.after, reader.pageSize, reader.pageBytes),
  );
  const page = rows[0];
  port?.postMessage({ page: request.page, next: nextPageCursor(page, reader.pageSize) });
  return page?.records ?? '[]';
}

/**
 * A page evaluated fifty records at a time, with a turn of the event loop between: the worker
 * stays responsive while it evaluates (a read it is handed starts at once, a read's rows and its
 * next cursor are handled at once), so the reads of the run follow each other without waiting for
 * an evaluation to end. Null when the worker is closing.
 */
async function evaluate(records: ImpactRecord[]): Promise<ImpactPageOutcome | null> {
  const outcome = emptyImpactOutcome();
  for (let from = 0; from < records.length; from += RECORDS_PER_TURN) {
    if (from > 0) await turn();
    if (closing) return null;
    evaluateImpactPage(engine, records.slice(from, from + RECORDS_PER_TURN), outcome);
  }
  return outcome;
}

port.on('message', async (request: ImpactWorkerRequest) => {
  if ('close' in request) {
    closing = true;
    await db?.close().catch(() => {});
    port.close();
    return;
  }
  if (closing) return;
  const failed = (err: unknown) =>
    port.postMessage({ page: request.page, error: err instanceof Error ? err.message : String(err) });
  // NOTE: the read starts now, beside the evaluation under way, and its next cursor goes out as soon
  // as it ends: the keyset reads (one after the other) never wait for an evaluation.
  const text = pageText(request).catch((err: unknown) => {
    failed(err);
    return null;
  });
  evaluations = evaluations.then(async () => {
    const records = await text;
    if (records === null || closing) return;
    try {
      const outcome = await evaluate(JSON.parse(records) as ImpactRecord[]);
      if (outcome) port.postMessage({ page: request.page, outcome });
    } catch (err) {
      failed(err);
    }
  });
});
