import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { DecisionRow } from './decision-log.ts';

/** The spool would grow beyond its configured size: the records cannot be kept there. */
export class SpoolFullError extends Error {
  override name = 'SpoolFullError';
}

/** Stores one spooled batch in the database (rows + chain heads, one transaction, idempotent). */
export type BatchStore = (rows: DecisionRow[]) => Promise<unknown>;

/** One line of a spool file: one group-commit batch, in chain order. */
export interface SpoolLine {
  v: 1;
  rows: DecisionRow[];
}

/**
 * An append-only local file of batches that could not be committed, replayed in order once the
 * database is back. One file per process: `${dir}/${pid}-${writerId}.ndjson`, one NDJSON line per
 * batch, fsync'd before `append` resolves. The pid lets a starting process leave alone the live
 * spools of other processes sharing the folder (cluster workers).
 *
 * NOTE: not safe for concurrent use. The writer's single flush loop is the only caller of append
 * and replay, which is what keeps replay, append and truncation from racing.
 */
export class Spool {
  readonly file: string;
  private readonly dir: string;
  private readonly maxBytes: number;
  private handle: FileHandle | null = null;
  private size = 0;
  /** Bytes of the file already replayed (the file is truncated when this reaches its size). */
  private replayed = 0;

  constructor(options: { dir: string; writerId: string; maxBytes: number }) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.file = path.join(options.dir, `${process.pid}-${options.writerId}.ndjson`);
  }

  /** Bytes spooled and not yet replayed: the replay backlog. */
  get backlogBytes(): number {
    return this.size - this.replayed;
  }

  /** Bytes the spool file occupies on disk. */
  get bytes(): number {
    return this.size;
  }

  /** Appends one batch and fsyncs it. Rejects (SpoolFullError or the disk's error) when it cannot. */
  async append(rows: DecisionRow[]): Promise<void> {
    const line = `${JSON.stringify({ v: 1, rows } satisfies SpoolLine)}\n`;
    const length = Buffer.byteLength(line);
    if (this.size + length > this.maxBytes) {
      throw new SpoolFullError(`spool ${this.file} would exceed ${this.maxBytes} bytes`);
    }
    if (this.handle === null) {
      await mkdir(this.dir, { recursive: true });
      this.handle = await open(this.file, 'a');
      this.size = (await this.handle.stat()).size;
    }
    try {
      await this.handle.write(line);
      await this.handle.datasync();
      this.size += length;
    } catch (err) {
      // Cut a half-written line off, so that the next batch does not glue onto it.
      await this.handle.truncate(this.size).catch(() => {});
      throw err;
    }
  }

  /**
   * Stores up to `maxBatches` spooled batches, oldest first, and truncates the file once all are
   * stored. Stops at the first failure (the rest stays for the next attempt). Returns the number of
   * records handed to `store`.
   */
  async replay(store: BatchStore, maxBatches = 100): Promise<number> {
    if (this.backlogBytes === 0) return 0;
    const { records, bytes } = await replayFile(this.file, this.replayed, store, maxBatches);
    this.replayed += bytes;
    if (this.replayed >= this.size && this.handle !== null) {
      await this.handle.truncate(0);
      await this.handle.datasync();
      this.size = 0;
      this.replayed = 0;
    }
    return records;
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }

  /**
   * Replays every spool file in `dir` left by processes that are gone (not `ownFile`, not a live
   * process's), deleting each
   * once it is fully stored. Throws when the database refuses: the caller must not serve then.
   */
  static async replayLeftovers(dir: string, store: BatchStore, ownFile?: string): Promise<number> {
    let files: string[];
    try {
      files = (await readdir(dir)).filter((f) => f.endsWith('.ndjson')).sort();
    } catch {
      return 0;
    }
    let records = 0;
    for (const name of files) {
      const file = path.join(dir, name);
      if (file === ownFile || ownedByLiveProcess(name)) continue;
      const size = (await stat(file)).size;
      let offset = 0;
      while (offset < size) {
        const done = await replayFile(file, offset, store, Number.POSITIVE_INFINITY);
        records += done.records;
        offset += done.bytes;
        if (done.bytes === 0) break;
      }
      await rm(file);
    }
    return records;
  }
}

function ownedByLiveProcess(name: string): boolean {
  const pid = Number(/^(\d+)-/.exec(name)?.[1]);
  // Our own pid on a leftover file means a previous incarnation (a container restarts as pid 1).
  if (!Number.isInteger(pid) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function replayFile(
  file: string,
  start: number,
  store: BatchStore,
  maxBatches: number,
): Promise<{ records: number; bytes: number }> {
  const input = createReadStream(file, { start });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let bytes = 0;
  let records = 0;
  let batches = 0;
  try {
    for await (const line of lines) {
      if (batches >= maxBatches) break;
      const length = Buffer.byteLength(line) + 1;
      let parsed: SpoolLine | null = null;
      try {
        parsed = JSON.parse(line) as SpoolLine;
      } catch {
        // A torn last line (crash during append) was never acknowledged: nothing to replay. A torn
        // line in the middle cannot occur, because a failed append truncates its partial line.
      }
      if (parsed && Array.isArray(parsed.rows) && parsed.rows.length > 0) {
        await store(parsed.rows);
        records += parsed.rows.length;
      }
      bytes += length;
      batches += 1;
    }
  } finally {
    lines.close();
    input.destroy();
  }
  return { records, bytes };
}
