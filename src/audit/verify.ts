import type { Database } from '../store/types.ts';
import { chainHash } from './chain.ts';
import { type ChainBreak, ChainWalker, everyBreak, MAX_BREAKS_REPORTED } from './chain-walk.ts';
import {
  chainHeadsSql,
  chainPageSql,
  type DecisionRow,
  retentionSql,
  rowFromDatabase,
} from './decision-log.ts';

/** Why a chain is broken (see chain-walk.ts). */
export type { ChainBreak } from './chain-walk.ts';

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
  /** Every break in the window, in chain order: the first MAX_BREAKS_REPORTED of them. */
  breaks?: BrokenLink[];
  /** How many breaks there were in all (more than `breaks` holds when over the bound). */
  breakCount?: number;
}

/** Optional time window (ISO strings or Dates) and progress callback. */
export interface VerifyOptions {
  from?: string | Date;
  to?: string | Date;
  pageSize?: number;
  onProgress?: (checked: number) => void;
}

/**
 * Recomputes every writer's hash chain from the stored rows, streaming them in keyset pages of
 * `pageSize` rows (constant memory apart from one entry per writer), and reports every break
 * (bounded), not only the first. `checked` counts the rows verified before the first break.
 *
 * Without a window, each chain must start at seq 1 with the genesis hash and end at its chain_heads
 * row. With `from`, or after retention dropped old partitions, a chain's first row in view is taken
 * as its anchor (nothing before it can be checked); with `to`, tails are not compared with heads.
 */
export async function verifyChains(db: Database, options: VerifyOptions = {}): Promise<VerifyReport> {
  const pageSize = options.pageSize ?? 1_000;
  const from = options.from === undefined ? undefined : new Date(options.from).toISOString();
  const to = options.to === undefined ? undefined : new Date(options.to).toISOString();
  const heads = await db.query<{ writer_id: string; seq: string }>(chainHeadsSql());
  const retention = await db.query<{ dropped_before: Date }>(retentionSql());
  const walker = new ChainWalker<DecisionRow>({
    hash: chainHash,
    heads: new Map(heads.rows.map((row) => [row.writer_id, Number(row.seq)])),
    toHeads: to === undefined,
    anchored: from !== undefined || retention.rows.length > 0,
  });
  const found = await everyBreak(
    walker,
    chainPages(db, { from, to, pageSize }),
    MAX_BREAKS_REPORTED,
    (checked) => {
      if (checked % 100_000 === 0) options.onProgress?.(checked);
    },
  );
  const report: VerifyReport = {
    ok: found.count === 0,
    checked: found.checkedBeforeFirst,
    writers: walker.chains,
  };
  if (found.count === 0) return report;
  const breaks = found.breaks.map(({ id, writerId, seq, reason }) => ({
    decisionId: id,
    writerId,
    seq,
    reason,
  }));
  return { ...report, firstBroken: breaks[0], breaks, breakCount: found.count };
}

/** Every row of decision_log in chain order (within [from, to) when given), in keyset pages. */
async function* chainPages(
  db: Database,
  window: { from?: string; to?: string; pageSize: number },
): AsyncGenerator<DecisionRow[]> {
  let cursor: [string, string, string] | null = null;
  for (;;) {
    const sql = chainPageSql({ after: cursor, from: window.from, to: window.to, limit: window.pageSize });
    const { rows } = await db.query<Record<string, unknown>>(sql);
    const page = rows.map(rowFromDatabase);
    yield page;
    const end = page.at(-1);
    if (!end || page.length < window.pageSize) return;
    cursor = [end.writer_id, String(end.seq), end.id];
  }
}
