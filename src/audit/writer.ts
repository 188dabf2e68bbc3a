import path from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import type { AuditMode } from '../config/resolve-config.ts';
import type { DecisionRecord, DecisionRecorder } from '../decisions/types.ts';
import type { Database, Queryable } from '../store/types.ts';
import { Chain } from './chain.ts';
import { type DecisionRow, storeBatchSql } from './decision-log.ts';
import { Spool } from './spool.ts';

/** A chain's position: its writer, the seq of its last row and that row's hash. */
export interface ChainHead {
  writerId: string;
  seq: number;
  hash: string;
}

/** The queue stayed full for `enqueueTimeoutMs`: the records were not accepted (fail closed). */
export class AuditBackpressureError extends Error {
  override name = 'AuditBackpressureError';
}

/** The writer is closed and accepts no more records. */
export class AuditClosedError extends Error {
  override name = 'AuditClosedError';
}

/** Neither the database nor the spool could keep a batch. */
export class AuditUnrecordedError extends Error {
  override name = 'AuditUnrecordedError';
}

/** Callbacks for metrics (prom-client is wired to them by the observability code). */
export interface AuditWriterHooks {
  /** A batch was committed to the database (`seconds`: from batch start to commit). */
  onBatchCommitted?(size: number, seconds: number): void;
  /** A batch went to the local spool instead (database down or failing). */
  onBatchSpooled?(size: number, seconds: number): void;
  /** Spooled records were stored in the database. */
  onSpoolReplayed?(records: number): void;
  /**
   * A write failed: `commit` (the batch then goes to the spool), `spool` (then it is lost in sync
   * mode, retried in async mode) or `replay` (retried later).
   */
  onWriteError?(kind: 'commit' | 'spool' | 'replay', error: unknown): void;
}

/** A snapshot for metrics and health. Counters only grow; gauges are current values. */
export interface AuditWriterStats {
  writerId: string;
  /** Records enqueued and not yet committed or spooled (including the batch being written). */
  queueDepth: number;
  lastBatchSize: number;
  batches: number;
  avgBatchSize: number;
  lastCommitSeconds: number;
  avgCommitSeconds: number;
  recordsCommitted: number;
  recordsSpooled: number;
  recordsReplayed: number;
  /** Bytes in this writer's spool file, and the part not yet replayed. */
  spoolBytes: number;
  replayBacklogBytes: number;
  writeErrors: number;
}

/** What the writer needs: the database, where to spool, and the audit.* settings. */
export interface AuditWriterOptions {
  db: Database;
  /** Folder for spool files (`${dataDir}/spool`). */
  spoolDir: string;
  mode: Exclude<AuditMode, 'off'>;
  batchMaxRecords: number;
  batchMaxWaitMs: number;
  queueMaxRecords: number;
  enqueueTimeoutMs: number;
  spoolMaxBytes: number;
  /** How often to retry the database while records sit in the spool. */
  retryIntervalMs?: number;
  /**
   * Linger `batchMaxWaitMs` for a lone record too (the group commit before issue 27). Off by
   * default: a batch lingers only when other records are in flight; bench/record-cost.ts A/Bs it.
   */
  lingerAlone?: boolean;
  /** Defaults to a fresh UUIDv7: a new chain per process start. */
  writerId?: string;
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  hooks?: AuditWriterHooks;
}

interface Entry {
  records: DecisionRecord[];
  rows: DecisionRow[];
  /** Each row's JSON text, as the chain made it (sent to the database as it is). */
  json: string[];
  /** performance.now() when it was enqueued: a batch closes batchMaxWaitMs after its first entry. */
  at: number;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * The durable decision log: group commit into Postgres, a per-process hash chain, a local spool
 * when the database is away, and a bounded queue that makes callers wait rather than drop.
 *
 * NOTE (ordering): chain positions are assigned synchronously in `record()` (via `chainUp`), in the
 * order requests are admitted, and batches are written by ONE loop in queue order. So the order of
 * seq numbers is the order of the queue, the database and the spool — nothing else hands out seqs.
 */
export class AuditWriter implements DecisionRecorder {
  private readonly db: Database;
  private readonly options: AuditWriterOptions;
  private chain: Chain;
  private readonly spool: Spool;
  private readonly hooks: AuditWriterHooks[] = [];
  private readonly committed = new Map<string, ChainHead>();
  private queue: Entry[] = [];
  private pending = 0;
  private closing = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private spaceWaiters: (() => void)[] = [];
  private lastReplayAttempt = 0;
  private readonly counters = {
    lastBatchSize: 0,
    batches: 0,
    batchRecords: 0,
    lastCommitSeconds: 0,
    commitSeconds: 0,
    commits: 0,
    recordsCommitted: 0,
    recordsSpooled: 0,
    recordsReplayed: 0,
    writeErrors: 0,
  };

  constructor(options: AuditWriterOptions) {
    this.options = options;
    this.db = options.db;
    this.chain = new Chain(options.writerId ?? uuidv7());
    this.spool = new Spool({
      dir: options.spoolDir,
      writerId: this.chain.writerId,
      maxBytes: options.spoolMaxBytes,
    });
    if (options.hooks) this.hooks.push(options.hooks);
  }

  get writerId(): string {
    return this.chain.writerId;
  }

  /** Adds metric callbacks (several sets may be added). */
  addHooks(hooks: AuditWriterHooks): void {
    this.hooks.push(hooks);
  }

  /**
   * Replays spool files left by earlier processes, then starts the flush loop. Call before serving;
   * throws when a leftover spool cannot be stored.
   */
  async start(): Promise<void> {
    const replayed = await Spool.replayLeftovers(
      this.options.spoolDir,
      (rows) => this.store(rows),
      this.spool.file,
    );
    if (replayed > 0) {
      this.counters.recordsReplayed += replayed;
      this.emit((h) => h.onSpoolReplayed?.(replayed));
    }
    this.loop ??= this.run();
  }

  /**
   * Enqueues the records and, in sync mode, resolves once the batch holding them is committed or
   * fsync'd to the spool; in async mode once they are enqueued. Waits while the queue is full, up to
   * enqueueTimeoutMs, then rejects (AuditBackpressureError).
   */
  async record(records: DecisionRecord[]): Promise<void> {
    if (records.length === 0) return;
    const deadline = Date.now() + this.options.enqueueTimeoutMs;
    // NOTE: the last capacity check and the push below run without an await in between, so no
    // other request can take the space in the meantime. An oversized request is admitted alone.
    while (this.pending > 0 && this.pending + records.length > this.options.queueMaxRecords) {
      await this.waitForSpace(deadline);
    }
    if (this.closing) throw new AuditClosedError('the audit writer is closed');
    this.loop ??= this.run();
    const done = new Promise<void>((resolve, reject) => {
      const entry: Entry = { records, rows: [], json: [], at: performance.now(), resolve, reject };
      this.chainUp([entry]);
      this.queue.push(entry);
      this.pending += records.length;
    });
    if (this.pending >= this.options.batchMaxRecords) this.wakeLoop();
    else if (this.queue.length === 1) this.wakeLoop();
    if (this.options.mode === 'async') {
      // Never dropped: a failed batch stays queued and is retried (see write()).
      done.catch(() => {});
      return;
    }
    return done;
  }

  stats(): AuditWriterStats {
    const c = this.counters;
    return {
      writerId: this.chain.writerId,
      queueDepth: this.pending,
      lastBatchSize: c.lastBatchSize,
      batches: c.batches,
      avgBatchSize: c.batches === 0 ? 0 : c.batchRecords / c.batches,
      lastCommitSeconds: c.lastCommitSeconds,
      avgCommitSeconds: c.commits === 0 ? 0 : c.commitSeconds / c.commits,
      recordsCommitted: c.recordsCommitted,
      recordsSpooled: c.recordsSpooled,
      recordsReplayed: c.recordsReplayed,
      spoolBytes: this.spool.bytes,
      replayBacklogBytes: this.spool.backlogBytes,
      writeErrors: c.writeErrors,
    };
  }

  /** Flushes the queue, tries once more to replay the spool, and stops. New records are refused. */
  async close(): Promise<void> {
    this.closing = true;
    this.wakeLoop();
    for (const waiter of this.spaceWaiters.splice(0)) waiter();
    await this.loop;
    if (this.spool.backlogBytes > 0) await this.replaySpool();
    await this.spool.close();
  }

  /** NOTE: the one place that assigns chain positions (see the class comment). Synchronous. */
  private chainUp(entries: Entry[]): void {
    for (const entry of entries) {
      const { rows, json } = this.chain.appendJson(entry.records);
      entry.rows = rows;
      entry.json = json;
    }
  }

  private async waitForSpace(deadline: number): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0 || this.closing) {
      throw new AuditBackpressureError(
        `audit queue full (${this.pending} records) for ${this.options.enqueueTimeoutMs} ms`,
      );
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.spaceWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wakeLoop(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const retryMs = this.options.retryIntervalMs ?? 1_000;
    for (;;) {
      if (this.spool.backlogBytes > 0 && Date.now() - this.lastReplayAttempt >= retryMs) {
        await this.replaySpool();
      }
      if (this.queue.length === 0) {
        if (this.closing) return;
        await this.sleep(this.spool.backlogBytes > 0 ? retryMs : 60_000);
        continue;
      }
      // Group commit: a batch closes batchMaxWaitMs after its first record, or when full. Under load
      // the first record has waited through the previous commit already, so the batch goes at once
      // (waiting again would add the linger to every commit cycle: bench/README.md, ADR 0005).
      // It lingers only when other records are in flight, like Postgres's commit_delay, which waits
      // only while commit_siblings transactions are active: a lone record (an agent's sequential
      // call) goes at once, and waiting for company that is not there would only add the linger to
      // its answer (bench/record-cost.ts --sequential).
      const lingerMs = this.queue[0]!.at + this.options.batchMaxWaitMs - performance.now();
      const company = this.queue.length > 1 || this.options.lingerAlone === true;
      if (company && this.pending < this.options.batchMaxRecords && lingerMs >= 1 && !this.closing) {
        await this.sleep(lingerMs);
      }
      const batch: Entry[] = [];
      let size = 0;
      while (
        this.queue.length > 0 &&
        (size === 0 || size + this.queue[0]!.records.length <= this.options.batchMaxRecords)
      ) {
        const entry = this.queue.shift()!;
        batch.push(entry);
        size += entry.records.length;
      }
      await this.write(batch, size);
    }
  }

  private async write(batch: Entry[], size: number): Promise<void> {
    const rows = batch.flatMap((entry) => entry.rows);
    const started = performance.now();
    let kept: 'committed' | 'spooled' | null = null;
    // NOTE: while the spool holds records, new batches go behind them into the spool, so the
    // database never shows a later part of a chain before an earlier one.
    if (this.spool.backlogBytes === 0) {
      try {
        await this.store(
          rows,
          batch.flatMap((entry) => entry.json),
        );
        kept = 'committed';
      } catch (err) {
        this.failed('commit', err, 'audit batch commit failed; spooling');
      }
    }
    if (kept === null) {
      try {
        await this.spool.append(rows);
        kept = 'spooled';
        this.lastReplayAttempt = Date.now();
      } catch (err) {
        this.failed('spool', err, 'audit spool write failed');
      }
    }
    const seconds = (performance.now() - started) / 1000;
    if (kept === null) {
      if (this.options.mode === 'async' && !this.closing) {
        // Already acknowledged: keep the batch at the head of the queue and retry after a pause.
        this.queue.unshift(...batch);
        await this.sleep(this.options.retryIntervalMs ?? 1_000);
        return;
      }
      this.pending -= size;
      const error = new AuditUnrecordedError(
        'decision records could be kept neither in the database nor in the spool',
      );
      for (const entry of batch) entry.reject(error);
      // The lost positions would read as deleted rows: start a new chain and re-chain what is queued.
      // The spool file stays: it may hold an older backlog, and its rows carry their own writer ids.
      this.chain = new Chain(uuidv7());
      this.chainUp(this.queue);
      this.options.logger?.error(
        { records: size, writerId: this.chain.writerId },
        'audit batch lost; new chain started',
      );
    } else {
      this.pending -= size;
      const c = this.counters;
      c.lastBatchSize = size;
      c.batches += 1;
      c.batchRecords += size;
      if (kept === 'committed') {
        c.recordsCommitted += size;
        c.lastCommitSeconds = seconds;
        c.commitSeconds += seconds;
        c.commits += 1;
        this.emit((h) => h.onBatchCommitted?.(size, seconds));
      } else {
        c.recordsSpooled += size;
        this.emit((h) => h.onBatchSpooled?.(size, seconds));
      }
      for (const entry of batch) entry.resolve();
    }
    for (const waiter of this.spaceWaiters.splice(0)) waiter();
  }

  private async replaySpool(): Promise<void> {
    this.lastReplayAttempt = Date.now();
    try {
      const replayed = await this.spool.replay((rows) => this.store(rows));
      if (replayed > 0) {
        this.counters.recordsReplayed += replayed;
        this.emit((h) => h.onSpoolReplayed?.(replayed));
        // More may be left: go again without waiting for the retry interval.
        this.lastReplayAttempt = 0;
      }
    } catch (err) {
      this.failed('replay', err, 'audit spool replay failed; will retry');
    }
  }

  private async store(rows: DecisionRow[], json?: string[]): Promise<void> {
    await storeBatch(this.db, rows, json, this.db.kind === 'postgres');
    for (const row of rows) {
      const head = this.committed.get(row.writer_id);
      if (!head || head.seq < row.seq) {
        this.committed.set(row.writer_id, { writerId: row.writer_id, seq: row.seq, hash: row.hash });
      }
    }
  }

  /**
   * The last committed position of every chain this writer stored (its own chains, and those of
   * spools it replayed), as this process knows it — not as the database says: a checkpoint signs
   * what the writer wrote, so a head rewritten in the database afterwards cannot be signed.
   */
  committedHeads(): ChainHead[] {
    return [...this.committed.values()];
  }

  private failed(kind: 'commit' | 'spool' | 'replay', err: unknown, message: string): void {
    this.counters.writeErrors += 1;
    this.options.logger?.warn({ err }, message);
    this.emit((h) => h.onWriteError?.(kind, err));
  }

  private emit(call: (hooks: AuditWriterHooks) => void): void {
    for (const hooks of this.hooks) {
      try {
        call(hooks);
      } catch {
        // A metrics callback must never break the audit path.
      }
    }
  }
}

/** `${dataDir}/spool`: where the writer spools. */
export function spoolDirectory(dataDir: string): string {
  return path.join(dataDir, 'spool');
}

/**
 * Stores chained rows and moves their writers' chain heads, in one statement (storeBatchSql).
 * `json`, when given, is each row's JSON text as the chain already made it; `bytes`: `db` is
 * Postgres through `pg` (a long batch then travels as UTF-8 bytes). Returns how many rows were new:
 * a replay of rows already stored inserts none of them again.
 */
export async function storeBatch(
  db: Queryable,
  rows: readonly DecisionRow[],
  json?: readonly string[],
  bytes = false,
): Promise<number> {
  if (rows.length === 0) return 0;
  const { rows: result } = await db.query<{ inserted: number }>(storeBatchSql(rows, json, bytes));
  return result[0]?.inserted ?? 0;
}
