/**
 * A worker thread of impact analysis (impact.ts `ImpactWorkerPool`): loads the candidate bundle
 * once, from the bytes it is started with, then evaluates every page it is given
 * (`evaluateImpactPage`) and answers with the page's outcome. On Postgres it reads each page itself,
 * over a connection of its own, from the cursor it is sent — it answers the next page's cursor as
 * soon as the page is read, then evaluates — so a page's text never reaches the replica's main
 * thread. On PGlite (which lives in the main thread) it is sent the page's text instead.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type Cursor, type DecisionFilter, impactPageSql } from '../audit/decision-log.ts';
import { parseBundle } from '../engine/bundle.ts';
import { PolicyEngine } from '../engine/engine.ts';
import { PostgresDatabase } from '../store/postgres.ts';
import type { PostgresConnection } from '../store/types.ts';
import {
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
    /**
     * The run's only worker: it is handed every page, so it reads the next one as soon as it knows
     * its cursor, before evaluating this one (with several workers, another one reads it).
     */
    alone: boolean;
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
// One connection: the pool hands this worker one page at a time to read.
const db = reader ? new PostgresDatabase({ ...reader.connection, max: 1 }) : null;
let closing = false;
/** The page an only worker reads ahead: its cursor and the read under way. */
let ahead: { after: Cursor; read: Promise<ImpactPageRow | undefined> } | null = null;

function readPage(after: Cursor | null): Promise<ImpactPageRow | undefined> {
  if (!db || !reader) throw new Error('this impact worker has no database to read pages from');
  const sql = impactPageSql(reader.filter, after, reader.pageSize, reader.pageBytes);
  return db.query<ImpactPageRow>(sql).then(({ rows }) => rows[0]);
}

async function pageText(request: { page: number; after: Cursor | null } | { page: number; records: string }) {
  if ('records' in request) return request.records;
  const read =
    ahead &&
    request.after &&
    ahead.after.decidedAt === request.after.decidedAt &&
    ahead.after.id === request.after.id
      ? ahead.read
      : readPage(request.after);
  ahead = null;
  const page = await read;
  const next = nextPageCursor(page, reader?.pageSize ?? 0);
  // NOTE: the cursor goes out before the evaluation, so the next page is read (by another worker,
  // or by this one when it is alone) while this one evaluates: the reads follow each other, the
  // evaluations overlap them.
  port?.postMessage({ page: request.page, next });
  if (reader?.alone && next && !closing) {
    ahead = { after: next, read: readPage(next) };
    // Not awaited when the run stops first; its failure then is the next page's, if any.
    ahead.read.catch(() => {});
  }
  return page?.records ?? '[]';
}

port.on('message', async (request: ImpactWorkerRequest) => {
  if ('close' in request) {
    closing = true;
    await db?.close().catch(() => {});
    port.close();
    return;
  }
  if (closing) return;
  try {
    const records = JSON.parse(await pageText(request)) as ImpactRecord[];
    if (closing) return;
    port.postMessage({ page: request.page, outcome: evaluateImpactPage(engine, records) });
  } catch (err) {
    port.postMessage({ page: request.page, error: err instanceof Error ? err.message : String(err) });
  }
});
