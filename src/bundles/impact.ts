import { availableParallelism } from 'node:os';
import { type ResourceLimits, Worker } from 'node:worker_threads';
import { v7 as uuidv7 } from 'uuid';
import { countDecisionsSql, impactPageSql } from '../audit/decision-log.ts';
import { appendEvent } from '../audit/event-log.ts';
import {
  type Cursor,
  type DecisionFilter,
  type DecisionSearchParams,
  parseFilter,
} from '../audit/queries.ts';
import { PolicyEngine } from '../engine/engine.ts';
import type { Database } from '../store/types.ts';
import {
  type FlipDirection,
  IMPACT_SAMPLE_IDS,
  type ImpactPageOutcome,
  type ImpactPageRow,
  nextPageCursor,
} from './impact-page.ts';
import {
  cancelImpactRunSql,
  failImpactRunsSql,
  finishImpactRunSql,
  type ImpactRunRow,
  impactProgressSql,
  impactRunSql,
  insertImpactRunSql,
  listImpactRunsSql,
} from './impact-sql.ts';
import type { ImpactWorkerAnswer, ImpactWorkerData, ImpactWorkerRequest } from './impact-worker.ts';
import type { RevisionStore } from './revisions.ts';

/** The filters a run narrows its window with: the same names as `GET /v1/decisions`. */
export type ImpactFilters = Omit<DecisionSearchParams, 'from' | 'to' | 'limit' | 'cursor'>;

/** Asking for a run. */
export interface ImpactRequest {
  digest: string;
  /** Inclusive; default 7 days before `to`. */
  from?: string;
  /** Exclusive; default now. */
  to?: string;
  filters?: ImpactFilters;
  actor: string;
}

/** Flips in one direction. `masked`: how many of them had a masked stored input. */
export interface ImpactFlips {
  direction: FlipDirection;
  count: number;
  masked: number;
  sampleIds: string[];
}

/** Flips in one direction that a control explains (the shadow report's rule). */
export interface ImpactControlFlips {
  direction: FlipDirection;
  control: string;
  count: number;
  sampleIds: string[];
}

/** Candidate evaluations that failed closed, by error code. */
export interface ImpactErrors {
  code: string;
  message: string;
  count: number;
  sampleIds: string[];
}

/** A run as any replica reads it from the database. */
export interface ImpactRun {
  id: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  digest: string;
  actor: string;
  replicaId: string;
  from: string;
  to: string;
  filters: ImpactFilters;
  entrypoint: string;
  /** Records in the window (null until counted). */
  total: number | null;
  evaluated: number;
  skipped: number;
  /** Why records were skipped, by reason. */
  skippedReasons: Record<string, number>;
  unchanged: number;
  /** Evaluated records whose stored input was masked (see ADR 0021). */
  masked: number;
  flips: ImpactFlips[];
  byControl: ImpactControlFlips[];
  errors: ImpactErrors[];
  /** Why the run failed or was cancelled. */
  error: { code: string; message: string } | null;
  startedAt: string;
  heartbeatAt: string;
  finishedAt: string | null;
  durationMs: number | null;
}

/** A run that cannot start or be changed; `code` is documented in docs/api.md. */
export class ImpactError extends Error {
  override name = 'ImpactError';
  readonly code: string;
  readonly kind: 'invalid' | 'conflict' | 'not_found';
  readonly parameter?: string;
  constructor(code: string, kind: 'invalid' | 'conflict' | 'not_found', message: string, parameter?: string) {
    super(message);
    this.code = code;
    this.kind = kind;
    if (parameter) this.parameter = parameter;
  }
}

/** What the analyzer needs; built by the composition root. */
export interface ImpactDeps {
  db: Database;
  revisions: RevisionStore;
  /** This replica's id: its runs' owner and the writer of their events. */
  replicaId: string;
  /** The entrypoint a run analyses unless its filters name another (VERDICT_DEFAULT_ENTRYPOINT). */
  defaultEntrypoint: string;
  /** Worker threads per run; default: every core (os.availableParallelism()). */
  workers?: number;
  /**
   * The nice value of the worker threads (Linux: per thread); default 10, so that live decisions
   * on the same replica take the cores first. 0 keeps normal priority.
   */
  workerNice?: number;
  /** Records per keyset page, at most; default 2,000. */
  pageSize?: number;
  /**
   * Stored input per page, at most (bytes, as Postgres stores it; one record always fits); default
   * 4 MiB. With `maxRecordBytes` it bounds what a worker holds, and so its heap's cap.
   */
  pageBytes?: number;
  /**
   * The largest stored input a record can have (the decision API's body limit,
   * VERDICT_BODY_LIMIT_BYTES); default 1 MiB. A page holds at most `pageBytes` plus one such record.
   */
  maxRecordBytes?: number;
  /** A running run whose heartbeat is older is failed by whoever reads it; default 30 s. */
  leaseMs?: number;
  /** How often a run writes its progress (and heartbeat); default 1 s. */
  progressMs?: number;
  onError?: (err: unknown, runId: string) => void;
}

const DEFAULT_WINDOW_MS = 7 * 86_400_000;
const MIB = 1_048_576;

/**
 * The V8 heap limits of an impact worker (`resourceLimits`): a fixed cap sized for what it holds —
 * at most two pages (the one it evaluates, the next one read or queued), each at most `pageBytes`
 * plus one record, parsed (JSON objects take a few times their text) — instead of V8's default,
 * which lets each worker's heap grow towards the host's memory and breathe by a hundred MB between
 * major GCs (the replica's RSS moved by ±10 % over a run with two workers). The young generation is
 * small for the same reason; a page's records outlive it anyway. See
 * docs/decisions/0021-impact-analysis.md.
 */
export function impactWorkerHeapLimits(pageBytes: number, maxRecordBytes: number): ResourceLimits {
  const page = (pageBytes + maxRecordBytes) / MIB;
  return { maxOldGenerationSizeMb: Math.ceil(48 + 2 * 4 * page), maxYoungGenerationSizeMb: 8 };
}
const DIRECTIONS: readonly FlipDirection[] = ['allow_to_deny', 'deny_to_allow'];

/** The running sums of one run; what the `report` column keeps. */
class ImpactSummary {
  evaluated = 0;
  skipped = 0;
  unchanged = 0;
  masked = 0;
  readonly skippedReasons: Record<string, number> = {};
  private readonly flips = new Map<FlipDirection, { count: number; masked: number; sampleIds: string[] }>();
  private readonly controls = new Map<string, ImpactControlFlips>();
  private readonly errors = new Map<string, ImpactErrors>();

  add(page: ImpactPageOutcome): void {
    this.evaluated += page.evaluated;
    this.unchanged += page.unchanged;
    this.masked += page.masked;
    for (const [reason, count] of Object.entries(page.skipped)) {
      this.skipped += count;
      this.skippedReasons[reason] = (this.skippedReasons[reason] ?? 0) + count;
    }
    for (const flip of page.flips) {
      const sums = this.flips.get(flip.direction) ?? { count: 0, masked: 0, sampleIds: [] };
      this.flips.set(flip.direction, sums);
      sums.count += 1;
      if (flip.masked) sums.masked += 1;
      if (sums.sampleIds.length < IMPACT_SAMPLE_IDS) sums.sampleIds.push(flip.id);
      for (const control of flip.controls) {
        const key = `${flip.direction} ${control}`;
        let byControl = this.controls.get(key);
        if (!byControl) {
          byControl = { direction: flip.direction, control, count: 0, sampleIds: [] };
          this.controls.set(key, byControl);
        }
        byControl.count += 1;
        if (byControl.sampleIds.length < IMPACT_SAMPLE_IDS) byControl.sampleIds.push(flip.id);
      }
    }
    for (const [code, seen] of Object.entries(page.errors)) {
      const errors = this.errors.get(code) ?? { code, message: seen.message, count: 0, sampleIds: [] };
      this.errors.set(code, errors);
      errors.count += seen.count;
      for (const id of seen.sampleIds)
        if (errors.sampleIds.length < IMPACT_SAMPLE_IDS) errors.sampleIds.push(id);
    }
  }

  /** The JSON of the `report` column. */
  report() {
    return {
      masked: this.masked,
      skipped_reasons: this.skippedReasons,
      flips: DIRECTIONS.map((direction) => {
        const sums = this.flips.get(direction);
        return {
          direction,
          count: sums?.count ?? 0,
          masked: sums?.masked ?? 0,
          sample_ids: sums?.sampleIds ?? [],
        };
      }),
      by_control: [...this.controls.values()]
        .sort(
          (a, b) =>
            b.count - a.count || a.direction.localeCompare(b.direction) || a.control.localeCompare(b.control),
        )
        .map((c) => ({
          direction: c.direction,
          control: c.control,
          count: c.count,
          sample_ids: c.sampleIds,
        })),
      errors: [...this.errors.values()]
        .sort((a, b) => b.count - a.count || a.code.localeCompare(b.code))
        .map((e) => ({ code: e.code, message: e.message, count: e.count, sample_ids: e.sampleIds })),
    };
  }
}

type StoredReport = ReturnType<ImpactSummary['report']>;

function runOf(row: ImpactRunRow): ImpactRun {
  const report = row.report as Partial<StoredReport>;
  const finishedAt = row.finished_at;
  return {
    id: row.id,
    state: row.state,
    digest: row.digest,
    actor: row.actor,
    replicaId: row.replica_id,
    from: row.window_from,
    to: row.window_to,
    filters: row.filters,
    entrypoint: row.entrypoint,
    total: row.total === null ? null : Number(row.total),
    evaluated: Number(row.evaluated),
    skipped: Number(row.skipped),
    skippedReasons: report.skipped_reasons ?? {},
    unchanged: Number(row.unchanged),
    masked: report.masked ?? 0,
    flips: (
      report.flips ?? DIRECTIONS.map((direction) => ({ direction, count: 0, masked: 0, sample_ids: [] }))
    ).map((f) => ({ direction: f.direction, count: f.count, masked: f.masked, sampleIds: f.sample_ids })),
    byControl: (report.by_control ?? []).map((c) => ({
      direction: c.direction,
      control: c.control,
      count: c.count,
      sampleIds: c.sample_ids,
    })),
    errors: (report.errors ?? []).map((e) => ({
      code: e.code,
      message: e.message,
      count: e.count,
      sampleIds: e.sample_ids,
    })),
    error: row.error,
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
    finishedAt,
    durationMs: finishedAt === null ? null : Date.parse(finishedAt) - Date.parse(row.started_at),
  };
}

/** One page handed to the pool: its next page's cursor (null: the window ended) and its outcome. */
interface PageInFlight {
  next: Promise<Cursor | null>;
  outcome: Promise<ImpactPageOutcome>;
}

/**
 * The worker threads of one run: each loads the candidate once (impact-worker.ts) and evaluates the
 * pages it is given. On Postgres (`reader`) the workers read the pages themselves, each over its
 * own connection, from the cursor the pool hands out (`read`); the page's text never reaches this
 * thread. On PGlite this thread reads the pages and the pool hands their text over (`evaluate`).
 * A page goes to the worker with the fewest pages in flight, the next in turn on a tie.
 */
class ImpactWorkerPool {
  private readonly workers: { worker: Worker; pages: number; exited: Promise<void> }[];
  private readonly pending = new Map<
    number,
    {
      worker: { pages: number };
      next: PromiseWithResolvers<Cursor | null> | null;
      outcome: PromiseWithResolvers<ImpactPageOutcome>;
    }
  >();
  private page = 0;
  private failure: Error | null = null;
  /** True when the workers read their own pages (`read`); otherwise they are sent them (`evaluate`). */
  readonly reads: boolean;

  constructor(options: {
    bundle: Buffer;
    size: number;
    nice: number;
    resourceLimits: ResourceLimits;
    reader: ImpactWorkerData['reader'];
  }) {
    this.reads = options.reader !== null;
    const workerData: ImpactWorkerData = {
      bundle: new Uint8Array(options.bundle),
      nice: options.nice,
      reader: options.reader,
    };
    this.workers = Array.from({ length: options.size }, () => {
      const worker = new Worker(new URL('./impact-worker.ts', import.meta.url), {
        workerData,
        resourceLimits: options.resourceLimits,
      });
      worker.on('message', (answer: ImpactWorkerAnswer) => this.answered(answer));
      worker.on('error', (err) => this.fail(err));
      const exited = new Promise<void>((resolve) =>
        worker.on('exit', (code) => {
          if (code !== 0) this.fail(new Error(`an impact worker exited with code ${code}`));
          resolve();
        }),
      );
      return { worker, pages: 0, exited };
    });
  }

  private answered(answer: ImpactWorkerAnswer): void {
    const waiting = this.pending.get(answer.page);
    if (!waiting) return;
    if ('next' in answer) {
      waiting.next?.resolve(answer.next);
      return;
    }
    this.pending.delete(answer.page);
    waiting.worker.pages -= 1;
    if ('outcome' in answer) {
      waiting.outcome.resolve(answer.outcome);
      return;
    }
    const err = new Error(answer.error);
    waiting.next?.reject(err);
    waiting.outcome.reject(err);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiting of this.pending.values()) {
      waiting.next?.reject(err);
      waiting.outcome.reject(err);
    }
    this.pending.clear();
  }

  private send(request: ImpactWorkerRequest & { page: number }, reads: boolean): PageInFlight {
    const next = reads ? Promise.withResolvers<Cursor | null>() : null;
    const outcome = Promise.withResolvers<ImpactPageOutcome>();
    if (this.failure) {
      next?.reject(this.failure);
      outcome.reject(this.failure);
    } else {
      let target = this.workers[0] as (typeof this.workers)[number];
      for (let i = 0; i < this.workers.length; i++) {
        const candidate = this.workers[(request.page + i) % this.workers.length] as typeof target;
        if (i === 0 || candidate.pages < target.pages) target = candidate;
      }
      target.pages += 1;
      this.pending.set(request.page, { worker: target, next, outcome });
      target.worker.postMessage(request);
    }
    // A `next` nobody awaits (the run stopped) must not be an unhandled rejection; awaiting it still throws.
    next?.promise.catch(() => {});
    return { next: next?.promise ?? Promise.resolve(null), outcome: outcome.promise };
  }

  /** A worker reads the page after `after` itself, answers its next cursor, then its outcome. */
  read(after: Cursor | null): PageInFlight {
    return this.send({ page: this.page++, after }, true);
  }

  /** A worker evaluates a page this thread read (its records as the JSON text the database built). */
  evaluate(records: string): Promise<ImpactPageOutcome> {
    return this.send({ page: this.page++, records }, false).outcome;
  }

  /**
   * Ends the workers: each closes its connection and exits after the page it is on; one that has
   * not exited within a second (a long page) is terminated.
   */
  async close(): Promise<void> {
    this.failure ??= new Error('the worker pool is closed');
    await Promise.all(
      this.workers.map(async ({ worker, exited }) => {
        worker.postMessage({ close: true } satisfies ImpactWorkerRequest);
        const timer = setTimeout(() => void worker.terminate(), 1_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** The run this replica is working on. */
interface ActiveRun {
  id: string;
  stop: { code: string; message: string } | null;
  done: Promise<void>;
}

/**
 * Impact analysis: a candidate revision evaluated on a window of recorded decisions, each on its
 * input exactly as recorded (with the `caller`, `now` and `grants` of that moment), through the
 * evaluation core, in worker threads; the answer is the shadow report's flips and controls, at once,
 * over any past window. Runs live in `impact_runs`, so any replica answers for any run; one run at
 * a time per replica (a second is refused, 409 `impact_busy`). A run's start and end are chained
 * policy events (`impact_start`, `impact_finish`). See docs/decisions/0021-impact-analysis.md.
 */
export class ImpactAnalyzer {
  private readonly deps: ImpactDeps;
  private readonly pageSize: number;
  private readonly pageBytes: number;
  private readonly maxRecordBytes: number;
  private readonly leaseMs: number;
  private readonly progressMs: number;
  private readonly workers: number;
  private active: ActiveRun | null = null;
  /** Ended runs' worker pools still closing (a new run may already have started). */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(deps: ImpactDeps) {
    this.deps = deps;
    this.pageSize = Math.max(1, deps.pageSize ?? 2_000);
    this.pageBytes = Math.max(1, deps.pageBytes ?? 4 * MIB);
    this.maxRecordBytes = Math.max(0, deps.maxRecordBytes ?? MIB);
    this.leaseMs = deps.leaseMs ?? 30_000;
    this.progressMs = deps.progressMs ?? 1_000;
    this.workers = Math.max(1, deps.workers ?? availableParallelism());
  }

  /**
   * Starts a run in the background and returns it (state `running`). Refuses an unknown digest
   * (404), a window or filter the decision search would refuse, a candidate without the entrypoint
   * (400 `impact_missing_entrypoint`) and a second run on this replica (409 `impact_busy`).
   */
  async start(request: ImpactRequest): Promise<ImpactRun> {
    if (this.closed) throw new ImpactError('impact_unavailable', 'conflict', 'this replica is stopping');
    const to = request.to ?? new Date().toISOString();
    const from = request.from ?? new Date(Date.parse(to) - DEFAULT_WINDOW_MS).toISOString();
    const filters = { ...(request.filters ?? {}) };
    const filter = parseFilter({ ...filters, from, to });
    const entrypoint = filter.entrypoint ?? this.deps.defaultEntrypoint;
    filter.entrypoint = entrypoint;
    const bundle = await this.deps.revisions.get(request.digest);
    if (!bundle)
      throw new ImpactError('bundle_not_found', 'not_found', `no bundle revision ${request.digest}`);
    const engine = PolicyEngine.fromBundle(bundle);
    if (!engine.hasEntrypoint(entrypoint)) {
      throw new ImpactError(
        'impact_missing_entrypoint',
        'invalid',
        `the candidate ${request.digest} has no entrypoint ${entrypoint} (it has ${engine.entrypoints.join(', ') || 'none'})`,
        'filters/entrypoint',
      );
    }
    if (this.active) {
      throw new ImpactError(
        'impact_busy',
        'conflict',
        `this replica is running impact analysis ${this.active.id}; one run at a time per replica (wait, cancel it, or ask another replica)`,
      );
    }
    const id = uuidv7();
    // NOTE: claimed before the first await below, so two concurrent starts cannot both pass the check.
    const active: ActiveRun = { id, stop: null, done: Promise.resolve() };
    this.active = active;
    try {
      const row = await this.deps.db.transaction(async (tx) => {
        const { rows } = await tx.query<ImpactRunRow>(
          insertImpactRunSql({
            id,
            digest: request.digest,
            actor: request.actor,
            replicaId: this.deps.replicaId,
            from: filter.from as string,
            to: filter.to as string,
            filters,
            entrypoint,
          }),
        );
        await appendEvent(tx, this.deps.replicaId, {
          kind: 'policy',
          action: 'impact_start',
          actor: request.actor,
          subject: request.digest,
          toDigest: request.digest,
          payload: { run_id: id, from: filter.from, to: filter.to, entrypoint, filters },
        });
        return rows[0] as ImpactRunRow;
      });
      active.done = this.work(active, bundle.bytes, filter, request.actor).finally(() => {
        if (this.active === active) this.active = null;
      });
      return runOf(row);
    } catch (err) {
      this.active = null;
      throw err;
    }
  }

  /** One run, or null. A run whose replica stopped beating is failed first (see `expire`). */
  async get(id: string): Promise<ImpactRun | null> {
    await this.expire();
    const { rows } = await this.deps.db.query<ImpactRunRow>(impactRunSql(id));
    return rows[0] ? runOf(rows[0]) : null;
  }

  /** Runs, newest first (of one candidate when `digest` is given). */
  async list(query: { digest?: string | null; limit?: number } = {}): Promise<ImpactRun[]> {
    await this.expire();
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 500);
    const { rows } = await this.deps.db.query<ImpactRunRow>(listImpactRunsSql(query.digest ?? null, limit));
    return rows.map(runOf);
  }

  /**
   * Cancels a running run, on whichever replica runs it: the row says so at once, and its replica
   * stops at its next progress write. 404 for an unknown id, 409 `impact_not_running` when it ended.
   */
  async cancel(id: string, actor: string): Promise<ImpactRun> {
    const row = await this.deps.db.transaction(async (tx) => {
      const { rows } = await tx.query<ImpactRunRow>(cancelImpactRunSql(id));
      const ended = rows[0];
      if (ended) await this.recordFinish(tx, runOf(ended), actor);
      return ended;
    });
    if (this.active?.id === id)
      this.active.stop = { code: 'impact_cancelled', message: 'the run was cancelled' };
    if (row) return runOf(row);
    const run = await this.get(id);
    if (!run) throw new ImpactError('impact_not_found', 'not_found', `no impact run ${id}`);
    throw new ImpactError('impact_not_running', 'conflict', `impact run ${id} is ${run.state}, not running`);
  }

  /** Resolves when this replica's current run (if it is `id`, or any when omitted) has ended. */
  async settled(id?: string): Promise<void> {
    const active = this.active;
    if (active && (id === undefined || active.id === id)) await active.done;
    await Promise.all(this.closing);
  }

  /**
   * Stops this replica's run (failed, `replica_stopped`) and its workers. A replica that dies
   * without closing leaves its run to the lease: the next reader fails it (`replica_lost`).
   */
  async close(): Promise<void> {
    this.closed = true;
    const active = this.active;
    if (active) {
      active.stop = { code: 'replica_stopped', message: 'the replica running it stopped' };
      await active.done;
    }
    await Promise.all(this.closing);
  }

  /** Fails the runs whose replica stopped beating for longer than the lease, with their events. */
  private async expire(): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      const { rows } = await tx.query<ImpactRunRow>(
        failImpactRunsSql(
          { leaseMs: this.leaseMs },
          {
            code: 'replica_lost',
            message: `the replica running it stopped reporting for more than ${this.leaseMs} ms`,
          },
        ),
      );
      for (const row of rows) await this.recordFinish(tx, runOf(row), 'system');
    });
  }

  private async recordFinish(
    tx: Parameters<Parameters<Database['transaction']>[0]>[0],
    run: ImpactRun,
    actor: string,
  ): Promise<void> {
    await appendEvent(tx, this.deps.replicaId, {
      kind: 'policy',
      action: 'impact_finish',
      actor,
      subject: run.digest,
      toDigest: run.digest,
      reason: run.error?.message ?? null,
      payload: {
        run_id: run.id,
        state: run.state,
        from: run.from,
        to: run.to,
        entrypoint: run.entrypoint,
        total: run.total,
        evaluated: run.evaluated,
        skipped: run.skipped,
        unchanged: run.unchanged,
        masked: run.masked,
        flips: Object.fromEntries(run.flips.map((f) => [f.direction, f.count])),
        errors: run.errors.reduce((sum, e) => sum + e.count, 0),
        error: run.error,
        duration_ms: run.durationMs,
      },
    });
  }

  /**
   * The run itself: keyset pages of the window, each read while the workers evaluate the ones
   * before (at most two pages per worker in flight, so memory stays flat whatever the window), the
   * outcomes summed in page order (samples are the window's first flips), progress written every
   * `progressMs`. On Postgres the workers read the pages (this thread hands out each page's cursor
   * as the previous page's reader answers it, and sums); on PGlite, which only this thread reaches,
   * this thread reads them (`readPage`). Never rejects: a failure ends the run `failed` with its error.
   */
  private async work(
    active: ActiveRun,
    bundle: Buffer,
    filter: DecisionFilter,
    actor: string,
  ): Promise<void> {
    const summary = new ImpactSummary();
    let total: number | null = null;
    const counted = this.deps.db
      .query<{ count: string | number }>(countDecisionsSql(filter))
      .then(({ rows }) => {
        total = Number(rows[0]?.count ?? 0);
      })
      .catch(() => {});
    const connection = this.deps.db.connection;
    const pool = new ImpactWorkerPool({
      bundle,
      size: this.workers,
      nice: this.deps.workerNice ?? 10,
      resourceLimits: impactWorkerHeapLimits(this.pageBytes, this.maxRecordBytes),
      reader:
        connection === null
          ? null
          : { connection, filter, pageSize: this.pageSize, pageBytes: this.pageBytes },
    });
    const progress = () => ({
      total,
      evaluated: summary.evaluated,
      skipped: summary.skipped,
      unchanged: summary.unchanged,
      report: summary.report(),
    });
    let error: { code: string; message: string } | null = null;
    // The heartbeat (with the progress) is a timer, not a step of the loop: a run whose last pages
    // take longer than the lease to evaluate (a candidate that errors on every record is replaced
    // after each one) keeps beating while it waits for them.
    let beating: Promise<void> | null = null;
    const beat = () => {
      beating ??= this.deps.db
        .query(impactProgressSql(active.id, progress()))
        .then(({ rows }) => {
          // No row: cancelled from some replica, or expired; stop without overwriting that.
          if (rows.length === 0)
            active.stop ??= { code: 'impact_cancelled', message: 'the run was cancelled' };
        })
        .catch((err: unknown) => {
          active.stop ??= {
            code: 'impact_failed',
            message: `progress could not be written: ${err instanceof Error ? err.message : String(err)}`,
          };
        })
        .finally(() => {
          beating = null;
        });
    };
    const heartbeat = setInterval(beat, this.progressMs);
    const inFlight: Promise<ImpactPageOutcome>[] = [];
    try {
      let after: Cursor | null = null;
      for (;;) {
        if (active.stop) break;
        const page: PageInFlight = pool.reads ? pool.read(after) : await this.readPage(pool, filter, after);
        inFlight.push(page.outcome);
        // NOTE: keyset pages are read one after the other (a page's cursor is the last record of the
        // one before); the evaluations overlap the reads.
        const next: Cursor | null = await page.next;
        while (inFlight.length >= this.workers * 2)
          summary.add(await (inFlight.shift() as Promise<ImpactPageOutcome>));
        if (next === null) break;
        after = next;
      }
      for (const page of inFlight) {
        if (active.stop) break;
        summary.add(await page);
      }
      await counted;
      error = active.stop;
    } catch (err) {
      error = { code: 'impact_failed', message: err instanceof Error ? err.message : String(err) };
      this.deps.onError?.(err, active.id);
    } finally {
      clearInterval(heartbeat);
      // Pages left unawaited (stopped, or a page failed) reject when the pool closes: handled here.
      for (const page of inFlight) page.catch(() => {});
      await beating;
    }
    const state = error === null ? 'done' : error.code === 'impact_cancelled' ? 'cancelled' : 'failed';
    try {
      await this.deps.db.transaction(async (tx) => {
        const { rows } = await tx.query<ImpactRunRow>(
          finishImpactRunSql(active.id, { state, ...progress(), error }),
        );
        // No row: it was ended elsewhere (a cancel, which recorded its own event; or the lease).
        if (rows[0]) await this.recordFinish(tx, runOf(rows[0]), state === 'done' ? actor : 'system');
      });
    } catch (err) {
      // The database is gone: the run stays `running` until its lease expires, then reads as failed.
      this.deps.onError?.(err, active.id);
    } finally {
      // NOTE: after the finish, so that the answer does not wait for the workers to close their
      // connections and exit; the run (`settled`, `close`) still ends only once they have. The
      // replica is free at once: a client that saw `done` may start the next run without a 409.
      if (this.active === active) this.active = null;
      const closing = pool.close().finally(() => this.closing.delete(closing));
      this.closing.add(closing);
      await closing;
    }
  }

  /**
   * PGlite: this thread reads the page (the database lives here) and a worker evaluates its text.
   * Each page's text (~2 MB for 2,000 tool calls) then passes through this thread's heap.
   */
  private async readPage(
    pool: ImpactWorkerPool,
    filter: DecisionFilter,
    after: Cursor | null,
  ): Promise<PageInFlight> {
    const { rows } = await this.deps.db.query<ImpactPageRow>(
      impactPageSql(filter, after, this.pageSize, this.pageBytes),
    );
    const page = rows[0];
    return {
      next: Promise.resolve(nextPageCursor(page, this.pageSize)),
      outcome: pool.evaluate(page?.records ?? '[]'),
    };
  }
}
