/**
 * The sessions' one home for SQL: every statement on `console_sessions` and
 * `console_sign_in_links`, as pure functions of their inputs returning `{text, values}`. Values are
 * always `$n` parameters. Nothing here runs a query.
 */
import type { Sql } from '../store/types.ts';

/** A statement as the sessions build it: always text and values. */
export type SessionSql = Required<Pick<Sql, 'text' | 'values'>>;

const SESSION_COLUMNS = 'id_hash, caller, method, created_at, last_seen_at, expires_at, revoked_at';

/** Stores a new session. */
export function insertSessionSql(row: {
  idHash: string;
  caller: object;
  method: string;
  now: string;
  expiresAt: string;
}): SessionSql {
  return {
    text: `INSERT INTO console_sessions (id_hash, caller, method, created_at, last_seen_at, expires_at)
           VALUES ($1, $2, $3, $4, $4, $5)`,
    values: [row.idHash, JSON.stringify(row.caller), row.method, row.now, row.expiresAt],
  };
}

/**
 * The live session with this id hash, touched: `last_seen_at` moves to `now` when the session is
 * neither revoked, nor past its absolute end, nor idle since `idleSince`. No row: not a live session.
 */
export function touchSessionSql(idHash: string, now: string, idleSince: string): SessionSql {
  return {
    text: `UPDATE console_sessions SET last_seen_at = $2
           WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3
           RETURNING ${SESSION_COLUMNS}`,
    values: [idHash, now, idleSince],
  };
}

/** Whether the session with this id hash is still live, without counting as activity. */
export function liveSessionSql(idHash: string, now: string, idleSince: string): SessionSql {
  return {
    text: `SELECT 1 AS live FROM console_sessions
           WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3`,
    values: [idHash, now, idleSince],
  };
}

/** Ends a session (sign out); a no-op on an unknown or ended one. */
export function revokeSessionSql(idHash: string, now: string): SessionSql {
  return {
    text: 'UPDATE console_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL',
    values: [idHash, now],
  };
}

/** Ends every live session of one person (`sub` and issuer). */
export function revokeSessionsOfSql(sub: string, iss: string | null, now: string): SessionSql {
  return {
    text: `UPDATE console_sessions SET revoked_at = $3
           WHERE caller->>'sub' = $1 AND (caller->>'iss') IS NOT DISTINCT FROM $2 AND revoked_at IS NULL`,
    values: [sub, iss, now],
  };
}

/** Deletes sessions and links that ended before `before` (housekeeping). */
export function pruneSessionsSql(before: string): SessionSql {
  return {
    text: `WITH s AS (DELETE FROM console_sessions WHERE expires_at < $1 OR revoked_at < $1 OR last_seen_at < $1)
           DELETE FROM console_sign_in_links WHERE expires_at < $1`,
    values: [before],
  };
}

/** Stores a one-time sign-in link. */
export function insertLinkSql(codeHash: string, caller: object, now: string, expiresAt: string): SessionSql {
  return {
    text: `INSERT INTO console_sign_in_links (code_hash, caller, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
    values: [codeHash, JSON.stringify(caller), now, expiresAt],
  };
}

/** Uses a link once: the caller it signs in, only while it is unused and unexpired. */
export function useLinkSql(codeHash: string, now: string): SessionSql {
  return {
    text: `UPDATE console_sign_in_links SET used_at = $2
           WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
           RETURNING caller`,
    values: [codeHash, now],
  };
}
