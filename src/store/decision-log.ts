import type { DecisionRow } from '../audit/chain.ts';
import type { Queryable } from './types.ts';

/**
 * One statement stores a whole batch: the rows travel as a single jsonb parameter expanded by
 * jsonb_populate_recordset (free of the 65535-parameter limit; INSERT vs COPY measured in
 * docs/decisions/0003-audit-durability.md), and the chain heads of the batch's writers move forward
 * in the same statement, so the two are atomic without BEGIN/COMMIT round trips (ADR 0004).
 * `ON CONFLICT DO NOTHING` makes a replay of the same rows (spool) idempotent on (decided_at, id);
 * a head only moves forward, so replaying an old spool batch after newer ones cannot rewind it.
 */
const STORE_BATCH = {
  name: 'verdict_store_batch_v1',
  text: `WITH inserted AS (
           INSERT INTO decision_log
           SELECT * FROM jsonb_populate_recordset(NULL::decision_log, $1::jsonb)
           ON CONFLICT DO NOTHING
           RETURNING 1
         ), heads AS (
           INSERT INTO chain_heads (writer_id, seq, hash)
           SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[])
           ON CONFLICT (writer_id) DO UPDATE
           SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now()
           WHERE chain_heads.seq < EXCLUDED.seq
         )
         SELECT count(*)::int AS inserted FROM inserted`,
};

/**
 * Stores chained rows and moves their writers' chain heads, in one statement. `json`, when given,
 * is each row's JSON text as the chain already made it (Chain.appendJson), so the batch is not
 * serialised again. Returns how many rows were new.
 */
export async function storeBatch(
  db: Queryable,
  rows: readonly DecisionRow[],
  json?: readonly string[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const heads = new Map<string, DecisionRow>();
  for (const row of rows) {
    const head = heads.get(row.writer_id);
    if (!head || head.seq < row.seq) heads.set(row.writer_id, row);
  }
  const last = [...heads.values()];
  const { rows: result } = await db.query<{ inserted: number }>({
    ...STORE_BATCH,
    values: [
      json ? `[${json.join(',')}]` : JSON.stringify(rows),
      last.map((h) => h.writer_id),
      last.map((h) => h.seq),
      last.map((h) => h.hash),
    ],
  });
  return result[0]?.inserted ?? 0;
}
