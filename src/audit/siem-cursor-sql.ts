import type { Sql } from '../store/types.ts';

/**
 * The SIEM forwarder's home for SQL: every statement on siem_cursors and siem_leases
 * (test/architecture/rules.ts), as pure functions returning `{text, values}`. The records themselves
 * and the chain heads are read through decision-log.ts. Nothing here runs a query.
 */

/** A sink's cursor per writer chain: the last seq the receiver acknowledged. */
export function siemCursorsSql(sink: string): Sql {
  return { text: 'SELECT writer_id, seq::text AS seq FROM siem_cursors WHERE sink = $1', values: [sink] };
}

/** Moves a sink's cursor on a writer chain forward to `seq` (never back). */
export function moveSiemCursorSql(sink: string, writerId: string, seq: number): Sql {
  return {
    text: `INSERT INTO siem_cursors (sink, writer_id, seq) VALUES ($1, $2, $3)
           ON CONFLICT (sink, writer_id) DO UPDATE SET seq = GREATEST(siem_cursors.seq, EXCLUDED.seq), updated_at = now()`,
    values: [sink, writerId, seq],
  };
}

/** Takes or renews a sink's lease for `holder`; returns a row only when `holder` holds it. */
export function takeSiemLeaseSql(sink: string, holder: string, leaseMs: number): Sql {
  return {
    text: `INSERT INTO siem_leases (sink, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::float8 / 1000))
           ON CONFLICT (sink) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
           WHERE siem_leases.holder = EXCLUDED.holder OR siem_leases.expires_at < now()
           RETURNING 1`,
    values: [sink, holder, leaseMs],
  };
}

/** Gives up `holder`'s lease of a sink. */
export function releaseSiemLeaseSql(sink: string, holder: string): Sql {
  return { text: 'DELETE FROM siem_leases WHERE sink = $1 AND holder = $2', values: [sink, holder] };
}
