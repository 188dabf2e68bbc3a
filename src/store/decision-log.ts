import type { DecisionRow } from '../audit/chain.ts';
import type { Queryable } from './types.ts';

/**
 * Inserts a batch of decision rows in ONE statement whatever its size: the rows travel as a single
 * jsonb parameter expanded by jsonb_populate_recordset (faster than a multi-row VALUES list on local
 * Postgres and free of the 65535-parameter limit; see docs/decisions/0003-audit-durability.md).
 * `ON CONFLICT DO NOTHING` makes a replay of the same rows (spool) idempotent on (decided_at, id).
 * Returns how many rows were new.
 */
export async function insertDecisionRows(tx: Queryable, rows: readonly DecisionRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const { rowCount } = await tx.query({
    text: `INSERT INTO decision_log
           SELECT * FROM jsonb_populate_recordset(NULL::decision_log, $1::jsonb)
           ON CONFLICT DO NOTHING`,
    values: [JSON.stringify(rows)],
  });
  return rowCount;
}

/**
 * Moves a writer's chain head forward to (seq, hash) — never backward, so replaying an old spool
 * batch after newer ones cannot rewind it.
 */
export async function advanceChainHead(
  tx: Queryable,
  writerId: string,
  seq: number,
  hash: string,
): Promise<void> {
  await tx.query({
    text: `INSERT INTO chain_heads (writer_id, seq, hash) VALUES ($1, $2, $3)
           ON CONFLICT (writer_id) DO UPDATE
           SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()
           WHERE chain_heads.seq < EXCLUDED.seq`,
    values: [writerId, seq, hash],
  });
}

/** Writes rows and their chains' heads in one transaction-bound call (the caller owns the transaction). */
export async function storeBatch(tx: Queryable, rows: readonly DecisionRow[]): Promise<number> {
  const inserted = await insertDecisionRows(tx, rows);
  const heads = new Map<string, DecisionRow>();
  for (const row of rows) {
    const head = heads.get(row.writer_id);
    if (!head || head.seq < row.seq) heads.set(row.writer_id, row);
  }
  for (const head of heads.values()) await advanceChainHead(tx, head.writer_id, head.seq, head.hash);
  return inserted;
}
