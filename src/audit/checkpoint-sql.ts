import { keysetConditions } from '../store/keyset.ts';
import type { Sql } from '../store/types.ts';
import type { Checkpoint, CheckpointChain } from './checkpoints.ts';

/**
 * The signed checkpoints' home: every statement on chain_checkpoints (test/architecture/rules.ts),
 * as pure functions returning `{text, values}`. The checkpointer stores, verification pages and
 * evidence packages look up through these. Nothing here runs a query.
 */

/** Stores a checkpoint; a second one at the same position (another replica, a retry) is skipped. */
export function insertCheckpointSql(c: Checkpoint): Sql {
  return {
    text: `INSERT INTO chain_checkpoints (chain, writer_id, seq, hash, signed_at, key_id, signature)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING 1`,
    values: [c.chain, c.writer_id, c.seq, c.hash, c.signed_at, c.key_id, c.signature],
  };
}

/** Where a page of stored checkpoints ends: (signed_at, chain, writer_id, seq) of its last row. */
export type CheckpointCursor = [signedAt: string, chain: string, writerId: string, seq: string];

/**
 * Verification's page: stored checkpoints in (signed_at, chain, writer_id, seq) order after `after`,
 * optionally signed within [from, to).
 */
export function checkpointPageSql(options: {
  after: CheckpointCursor | null;
  from?: string;
  to?: string;
  limit: number;
}): Sql {
  const after = options.after && {
    compare: '(signed_at, chain, writer_id, seq) > ($1::timestamptz, $2, $3, $4::bigint)',
    values: options.after,
  };
  const { where, values } = keysetConditions(after, {
    column: 'signed_at',
    from: options.from,
    to: options.to,
  });
  values.push(options.limit);
  return {
    text: `SELECT * FROM chain_checkpoints ${where} ORDER BY signed_at, chain, writer_id, seq LIMIT $${values.length}`,
    values,
  };
}

/** The first checkpoint of a writer's chain at or after `seq` (what covers the row there). */
export function coveringCheckpointSql(chain: CheckpointChain, writerId: string, seq: number): Sql {
  return {
    text: `SELECT * FROM chain_checkpoints WHERE chain = $1 AND writer_id = $2 AND seq >= $3
           ORDER BY seq LIMIT 1`,
    values: [chain, writerId, seq],
  };
}
