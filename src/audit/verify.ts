import type { Database } from '../store/types.ts';
import { chainHash, GENESIS_HASH } from './chain.ts';
import { chainHeadsSql, chainPageSql, retentionSql, rowFromDatabase } from './decision-log.ts';

/**
 * Why a chain is broken, at the row where it was noticed:
 * - edited: the row's stored hash is not the hash of its stored fields;
 * - deleted: seq jumps (rows before this one are missing);
 * - inserted: a second row at a position already taken, rows past the writer's recorded head, or
 *   rows of a writer that never recorded a head;
 * - reordered: the row is intact but does not link to its predecessor (rows moved between positions,
 *   or the predecessor rewritten together with its hash);
 * - tail_truncated: the writer's chain ends before the head recorded in chain_heads.
 */
export type ChainBreak = 'edited' | 'deleted' | 'inserted' | 'reordered' | 'tail_truncated';

/** Where verification stopped. `decisionId` is null when the writer has no rows left at all. */
export interface BrokenLink {
  decisionId: string | null;
  writerId: string;
  seq: number;
  reason: ChainBreak;
}

/** The outcome of `verifyChains`. */
export interface VerifyReport {
  ok: boolean;
  /** Rows checked. */
  checked: number;
  /** Writer chains seen. */
  writers: number;
  firstBroken?: BrokenLink;
}

/** Optional time window (ISO strings or Dates) and progress callback. */
export interface VerifyOptions {
  from?: string | Date;
  to?: string | Date;
  pageSize?: number;
  onProgress?: (checked: number) => void;
}

interface Head {
  seq: number;
  hash: string;
}

/**
 * Recomputes every writer's hash chain from the stored rows, streaming them in keyset pages of
 * `pageSize` rows (constant memory apart from one entry per writer), and stops at the first break.
 *
 * Without a window, each chain must start at seq 1 with the genesis hash and end at its chain_heads
 * row. With `from`, or after retention dropped old partitions, a chain's first row in view is taken
 * as its anchor (nothing before it can be checked); with `to`, tails are not compared with heads.
 */
export async function verifyChains(db: Database, options: VerifyOptions = {}): Promise<VerifyReport> {
  const pageSize = options.pageSize ?? 1_000;
  const from = options.from === undefined ? undefined : new Date(options.from).toISOString();
  const to = options.to === undefined ? undefined : new Date(options.to).toISOString();
  const heads = new Map<string, Head>();
  for (const row of (await db.query<{ writer_id: string; seq: string; hash: string }>(chainHeadsSql()))
    .rows) {
    heads.set(row.writer_id, { seq: Number(row.seq), hash: row.hash });
  }
  const retention = await db.query<{ dropped_before: Date }>(retentionSql());
  const anchored = from !== undefined || retention.rows.length > 0;

  let checked = 0;
  const seen = new Set<string>();
  let writer: string | null = null;
  let expected = 1;
  let prevHash = GENESIS_HASH;
  let last: { id: string; seq: number } | null = null;
  const report = (firstBroken: BrokenLink): VerifyReport => ({
    ok: false,
    checked,
    writers: seen.size,
    firstBroken,
  });

  const tail = (writerId: string): BrokenLink | null => {
    if (to !== undefined) return null;
    const head = heads.get(writerId);
    const lastSeq = last?.seq ?? 0;
    if (head === undefined) return null;
    if (lastSeq < head.seq)
      return { decisionId: last?.id ?? null, writerId, seq: lastSeq, reason: 'tail_truncated' };
    return null;
  };

  let cursor: [string, string, string] | null = null;
  for (;;) {
    const { rows } = await db.query<Record<string, unknown>>(
      chainPageSql({ after: cursor, from, to, limit: pageSize }),
    );
    for (const raw of rows) {
      const row = rowFromDatabase(raw);
      if (row.writer_id !== writer) {
        if (writer !== null) {
          const broken = tail(writer);
          if (broken) return report(broken);
        }
        writer = row.writer_id;
        seen.add(writer);
        last = null;
        const head = heads.get(writer);
        if (head === undefined)
          return report({ decisionId: row.id, writerId: writer, seq: row.seq, reason: 'inserted' });
        if (anchored && row.seq > 1) {
          expected = row.seq;
          prevHash = row.prev_hash;
        } else {
          expected = 1;
          prevHash = GENESIS_HASH;
        }
      }
      const at = { decisionId: row.id, writerId: writer, seq: row.seq };
      if (row.seq < expected) return report({ ...at, reason: 'inserted' });
      if (row.seq > expected) return report({ ...at, reason: 'deleted' });
      if (chainHash(row) !== row.hash) return report({ ...at, reason: 'edited' });
      if (row.prev_hash !== prevHash) return report({ ...at, reason: 'reordered' });
      const head = heads.get(writer)!;
      if (to === undefined && row.seq > head.seq) return report({ ...at, reason: 'inserted' });
      expected = row.seq + 1;
      prevHash = row.hash;
      last = { id: row.id, seq: row.seq };
      checked += 1;
      if (checked % 100_000 === 0) options.onProgress?.(checked);
    }
    if (rows.length < pageSize) break;
    const end = rowFromDatabase(rows[rows.length - 1]!);
    cursor = [end.writer_id, String(end.seq), end.id];
  }
  if (writer !== null) {
    const broken = tail(writer);
    if (broken) return report(broken);
  }
  if (!anchored && to === undefined) {
    // A writer whose head exists but whose rows are all gone was truncated to nothing.
    for (const [writerId, head] of heads) {
      if (!seen.has(writerId) && head.seq > 0) {
        return report({ decisionId: null, writerId, seq: 0, reason: 'tail_truncated' });
      }
    }
  }
  return { ok: true, checked, writers: seen.size };
}
