import { v7 as uuidv7 } from 'uuid';
import type { Database } from '../store/types.ts';
import { chainAfterSql, chainHeadsSql, chainPositionsSql, rowFromDatabase } from './decision-log.ts';
import { type ExportFormat, formatRecord, VERDICT_VERSION } from './export.ts';
import type { SiemSource } from './siem.ts';
import {
  moveSiemCursorSql,
  releaseSiemLeaseSql,
  siemCursorsSql,
  takeSiemLeaseSql,
} from './siem-cursor-sql.ts';

/** The formats the forwarder sends (one event per line). */
export type SiemFormat = Exclude<ExportFormat, 'csv'>;

/** What the forwarder needs. */
export interface SiemForwarderOptions {
  db: Database;
  url: string;
  format: SiemFormat;
  /** Sent as `Authorization: Splunk <token>` for splunk-hec, `Bearer <token>` otherwise. */
  token?: string;
  /** Records per POST. Default 500. */
  batchMax?: number;
  /** How often to look for new records when caught up. Default 1 s. */
  pollMs?: number;
  /** Longest pause between retries after a failure (doubling from pollMs). Default 30 s. */
  maxBackoffMs?: number;
  /** The cursor's name: one cursor set per sink. Default: the URL. */
  sink?: string;
  /** This process, for the lease (one forwarder per sink across replicas). Default: a fresh id. */
  holder?: string;
  leaseMs?: number;
  source?: SiemSource;
  logger?: { warn(obj: object, msg: string): void };
}

/** A snapshot for metrics. */
export interface SiemForwarderStats {
  /** Records committed and not yet acknowledged by the receiver (as of the last pass; 0 unless leader). */
  lagRecords: number;
  /** Age of the oldest record not yet acknowledged, seconds (0 when caught up). */
  lagSeconds: number;
  sent: number;
  failures: number;
  /** Whether this process holds the sink's lease. */
  leader: boolean;
}

/**
 * Pushes every decision record to a SIEM: at least once, in seq order per writer chain, each event
 * carrying the decision id as its idempotent id (OCSF `metadata.uid`, HEC `fields.decision_id`).
 *
 * NOTE (what makes it lossless): the cursor is per writer chain, by seq, stored in Postgres
 * (siem_cursors) and moved only after the receiver answered 2xx for a batch. A writer commits its
 * chain in seq order (one flush loop; a spool replays in order, behind which new batches wait), so
 * every record with a seq at or below a committed one is already visible: "seq > cursor" never
 * skips a record, however late it was committed. A crash between the 2xx and the cursor update
 * re-sends that batch (a duplicate, deduplicated by id downstream).
 */
export class SiemForwarder {
  private readonly options: Required<
    Pick<SiemForwarderOptions, 'batchMax' | 'pollMs' | 'maxBackoffMs' | 'sink' | 'holder' | 'leaseMs'>
  > &
    SiemForwarderOptions;
  private readonly source: SiemSource;
  private running = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly counters: SiemForwarderStats = {
    lagRecords: 0,
    lagSeconds: 0,
    sent: 0,
    failures: 0,
    leader: false,
  };

  constructor(options: SiemForwarderOptions) {
    this.options = {
      batchMax: 500,
      pollMs: 1_000,
      maxBackoffMs: 30_000,
      sink: options.url,
      holder: uuidv7(),
      leaseMs: 30_000,
      ...options,
    };
    this.source = options.source ?? { productVersion: VERDICT_VERSION };
  }

  stats(): SiemForwarderStats {
    return { ...this.counters };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the batch in flight (its cursor is stored if it was acknowledged). */
  async close(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.options.db.query(releaseSiemLeaseSql(this.options.sink, this.options.holder)).catch(() => {});
  }

  /**
   * One pass: sends every writer's records after its cursor, batch by batch, until caught up or a
   * send fails. Returns how many records were acknowledged. (The loop calls it; tests may too.)
   */
  async pass(): Promise<number> {
    if (!(await this.lease())) return 0;
    const { db, sink, batchMax } = this.options;
    let sent = 0;
    for (const writer of await this.behind()) {
      let cursor = writer.cursor;
      for (;;) {
        const { rows } = await db.query<Record<string, unknown>>(
          chainAfterSql(writer.writerId, cursor, batchMax),
        );
        if (rows.length === 0) break;
        const records = rows.map(rowFromDatabase);
        await this.send(records.map((r) => formatRecord(r, this.options.format, this.source)).join('\n'));
        const last = records[records.length - 1]!.seq;
        await db.query(moveSiemCursorSql(sink, writer.writerId, last));
        cursor = last;
        sent += records.length;
        this.counters.sent += records.length;
        if (records.length < batchMax) break;
      }
    }
    await this.measureLag();
    return sent;
  }

  private async send(body: string): Promise<void> {
    const { url, token, format } = this.options;
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    if (token) headers.authorization = format === 'splunk-hec' ? `Splunk ${token}` : `Bearer ${token}`;
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body: `${body}\n`,
      signal: AbortSignal.timeout(30_000),
    });
    await response.body?.cancel().catch(() => {});
    if (response.status < 200 || response.status >= 300) {
      throw new Error(`the SIEM receiver answered ${response.status}`);
    }
  }

  /** Takes or renews the sink's lease; false when another replica holds it. */
  private async lease(): Promise<boolean> {
    const { sink, holder, leaseMs } = this.options;
    const { rows } = await this.options.db.query(takeSiemLeaseSql(sink, holder, leaseMs));
    this.counters.leader = rows.length > 0;
    // NOTE: only the leader measures the lag; one that lost the lease would go on reporting what it
    // last measured, and the lag gauges of a VERDICT_WORKERS group (one forwarder per worker) are
    // summed over the workers.
    if (!this.counters.leader) {
      this.counters.lagRecords = 0;
      this.counters.lagSeconds = 0;
    }
    return this.counters.leader;
  }

  /**
   * The writer chains whose head is past the sink's cursor, by writer id: the chain heads and the
   * cursors are read apart (a head read before its cursor can only be older, so a chain is at worst
   * left for the next pass).
   */
  private async behind(): Promise<{ writerId: string; head: number; cursor: number }[]> {
    const { db, sink } = this.options;
    const heads = await db.query<{ writer_id: string; seq: string }>(chainHeadsSql());
    const cursors = await db.query<{ writer_id: string; seq: string }>(siemCursorsSql(sink));
    const acknowledged = new Map(cursors.rows.map((row) => [row.writer_id, Number(row.seq)]));
    return heads.rows
      .map((row) => ({
        writerId: row.writer_id,
        head: Number(row.seq),
        cursor: acknowledged.get(row.writer_id) ?? 0,
      }))
      .filter((writer) => writer.head > writer.cursor)
      .sort((a, b) => (a.writerId < b.writerId ? -1 : a.writerId > b.writerId ? 1 : 0));
  }

  private async measureLag(): Promise<void> {
    const behind = await this.behind();
    let oldest: number | null = null;
    if (behind.length > 0) {
      const next = behind.map((writer) => ({ writer_id: writer.writerId, seq: writer.cursor + 1 }));
      const { rows } = await this.options.db.query<{ decided_at: Date | string }>(chainPositionsSql(next));
      for (const row of rows) {
        const at = new Date(row.decided_at).getTime();
        if (oldest === null || at < oldest) oldest = at;
      }
    }
    this.counters.lagRecords = behind.reduce((sum, writer) => sum + writer.head - writer.cursor, 0);
    this.counters.lagSeconds = oldest === null ? 0 : Math.max(0, (Date.now() - oldest) / 1000);
  }

  private async run(): Promise<void> {
    let backoff = this.options.pollMs;
    while (this.running) {
      let wait = this.options.pollMs;
      try {
        await this.pass();
        backoff = this.options.pollMs;
      } catch (err) {
        this.counters.failures += 1;
        this.options.logger?.warn({ err }, 'SIEM forwarding failed; will retry');
        await this.measureLag().catch(() => {});
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
        wait = backoff;
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}
