/**
 * The grants' one home for SQL: every statement on the `exceptions` (waivers) and `approvals`
 * tables, as pure functions of their inputs returning one
 * shape, `{text, values}` (pg-boss's plans.ts style). Values are always `$n` parameters; the only
 * identifiers spliced into text are the constants of this file. Nothing here runs a query.
 *
 * NOTE: the table of the waivers keeps its public name, `exceptions` (migrations, evidence packages
 * and the KPIs read it); in code a row of it is a waiver.
 */
import type { Sql } from '../store/types.ts';
import type { ApprovalBinding, ApprovalState, StoredApproval } from './approval-store.ts';
import type { StoredWaiver, WaiverState } from './waiver-store.ts';

/** A statement as the grants build it: always text and values. */
export type GrantSql = Required<Pick<Sql, 'text' | 'values'>>;

const WAIVER_COLUMNS = `id, control, severity, subject_id, resource_id, action, reason, compensating_controls, ticket,
  expires_at, state, requested_by, requested_at, approvers_required, approvals, closed_by, closed_at,
  closed_reason`;

const APPROVAL_COLUMNS = `id, agent, on_behalf_of, tool, arguments_digest, arguments, controls, reasons, decision_id,
  requested_by, requested_at, state, expires_at, window_minutes, max_uses, uses, decided_by, decided_at, decided_reason`;

/** The two grant tables, with the columns a listing reads. */
const TABLES = {
  waivers: { table: 'exceptions', columns: WAIVER_COLUMNS },
  approvals: { table: 'approvals', columns: APPROVAL_COLUMNS },
} as const;

/** Which grants a statement reads: waivers (table `exceptions`) or approvals. */
export type GrantKind = keyof typeof TABLES;

/** Numbers the values of one statement: `param(value)` appends it and returns its `$n`. */
export type Param = (value: unknown) => string;

/** One condition of a listing, given the statement's `param`. */
export type Condition = (param: Param) => string;

/** Listings return at least one and at most this many rows (100 when the caller names no limit). */
const LIST_MAX = 1000;
const LIST_DEFAULT = 100;

/**
 * The listing both grant stores share: the rows of `kind` meeting every condition (AND), newest
 * request first, at most `limit` (clamped to 1..1000; 100 when absent).
 */
export function listGrantsSql(kind: GrantKind, conditions: readonly Condition[], limit?: number): GrantSql {
  const { table, columns } = TABLES[kind];
  const values: unknown[] = [];
  const param: Param = (value) => {
    values.push(value);
    return `$${values.length}`;
  };
  const where = conditions.map((condition) => condition(param));
  const max = param(Math.min(Math.max(limit ?? LIST_DEFAULT, 1), LIST_MAX));
  return {
    text: `SELECT ${columns} FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY requested_at DESC, id DESC LIMIT ${max}`,
    values,
  };
}

/** One row of `kind` by id; `lock` takes its row lock (inside a transaction). */
export function grantByIdSql(kind: GrantKind, id: string, lock = false): GrantSql {
  const { table, columns } = TABLES[kind];
  return {
    text: `SELECT ${columns} FROM ${table} WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
    values: [id],
  };
}

// ---------------------------------------------------------------------------------------------
// Waivers (table `exceptions`)

/** A waiver row as it is inserted: pending, with no approval yet. */
export type NewWaiverRow = Omit<
  StoredWaiver,
  'state' | 'approvals' | 'closed_by' | 'closed_at' | 'closed_reason'
>;

/** Stores a new pending waiver, returning its row. */
export function insertWaiverSql(row: NewWaiverRow): GrantSql {
  return {
    text: `INSERT INTO exceptions (id, control, severity, subject_id, resource_id, action, reason,
             compensating_controls, ticket, expires_at, state, requested_by, requested_at,
             approvers_required, approvals, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, 'pending', $11, $12, $13, '[]'::jsonb, $12)
           RETURNING ${WAIVER_COLUMNS}`,
    values: [
      row.id,
      row.control,
      row.severity,
      row.subject_id,
      row.resource_id,
      row.action,
      row.reason,
      JSON.stringify(row.compensating_controls),
      row.ticket ? JSON.stringify(row.ticket) : null,
      row.expires_at,
      row.requested_by,
      row.requested_at,
      row.approvers_required,
    ],
  };
}

/** Records a waiver's approvals and its state after one more, returning its row. */
export function approveWaiverSql(
  id: string,
  approvals: readonly object[],
  state: string,
  now: string,
): GrantSql {
  return {
    text: `UPDATE exceptions SET approvals = $2::jsonb, state = $3, updated_at = $4 WHERE id = $1 RETURNING ${WAIVER_COLUMNS}`,
    values: [id, JSON.stringify(approvals), state, now],
  };
}

/** Closes a waiver (rejected or revoked) by `actor` for `reason`, returning its row. */
export function closeWaiverSql(
  id: string,
  state: 'rejected' | 'revoked',
  actor: string,
  now: string,
  reason: string,
): GrantSql {
  return {
    text: `UPDATE exceptions SET state = $2, closed_by = $3, closed_at = $4, closed_reason = $5, updated_at = $4
           WHERE id = $1 RETURNING ${WAIVER_COLUMNS}`,
    values: [id, state, actor, now, reason],
  };
}

/** What a waiver listing narrows on (AND); `now` and the horizon are ISO-8601 instants. */
export interface WaiverConditions {
  state?: WaiverState;
  control?: string;
  subjectId?: string;
  resourceId?: string;
  /** Active, unexpired waivers that expire at or before this instant. */
  expiringBy?: string;
}

/** The conditions of a waiver listing at `now` (`expired` is an active row past its expiry). */
export function waiverConditions(filter: WaiverConditions, now: string): Condition[] {
  const conditions: Condition[] = [];
  if (filter.state === 'active') conditions.push((p) => `state = 'active' AND expires_at > ${p(now)}`);
  else if (filter.state === 'expired') conditions.push((p) => `state = 'active' AND expires_at <= ${p(now)}`);
  else if (filter.state) {
    const state = filter.state;
    conditions.push((p) => `state = ${p(state)}`);
  }
  const { control, subjectId, resourceId, expiringBy } = filter;
  if (control) conditions.push((p) => `control = ${p(control)}`);
  if (subjectId) conditions.push((p) => `subject_id = ${p(subjectId)}`);
  if (resourceId) conditions.push((p) => `resource_id = ${p(resourceId)}`);
  if (expiringBy !== undefined)
    conditions.push((p) => `state = 'active' AND expires_at > ${p(now)} AND expires_at <= ${p(expiringBy)}`);
  return conditions;
}

/** Every active waiver unexpired at `now`, in the shape the policy receives (the cache's load). */
export function activeWaiversSql(now: string): GrantSql {
  return {
    text: `SELECT id, control, subject_id, resource_id, action, expires_at FROM exceptions
           WHERE state = 'active' AND expires_at > $1 ORDER BY id`,
    values: [now],
  };
}

/** Waivers counted by stored state, expired at `now`, and expiring by `soon` (metrics). */
export function waiverCountsSql(now: string, soon: string): GrantSql {
  return {
    text: `SELECT state, (state = 'active' AND expires_at <= $1) AS expired,
                  (state = 'active' AND expires_at > $1 AND expires_at <= $2) AS soon, count(*) AS n
           FROM exceptions GROUP BY 1, 2, 3`,
    values: [now, soon],
  };
}

// ---------------------------------------------------------------------------------------------
// Approvals

/** The pending request of a binding; `lock` takes its row lock (inside a transaction). */
export function pendingApprovalSql(binding: ApprovalBinding, lock: boolean): GrantSql {
  return {
    text: `SELECT ${APPROVAL_COLUMNS} FROM approvals
           WHERE agent = $1 AND COALESCE(on_behalf_of, '') = COALESCE($2, '') AND tool = $3
             AND arguments_digest = $4 AND state = 'pending'${lock ? ' FOR UPDATE' : ''}`,
    values: [binding.agent, binding.on_behalf_of, binding.tool, binding.arguments_digest],
  };
}

/** Marks a lapsed pending request expired. */
export function expireApprovalSql(id: string, now: string): GrantSql {
  return {
    text: `UPDATE approvals SET state = 'expired', updated_at = $2 WHERE id = $1 AND state = 'pending'`,
    values: [id, now],
  };
}

/** An approval request as it is inserted: pending, unused, undecided, for one decision. */
export type NewApprovalRow = Omit<
  StoredApproval,
  'state' | 'uses' | 'decided_by' | 'decided_at' | 'decided_reason' | 'decision_id'
> & { decision_id: string };

/**
 * Opens a binding's pending request, returning its row — or no row when another one is pending
 * (the unique partial index on the binding admits one).
 */
export function insertApprovalSql(row: NewApprovalRow): GrantSql {
  return {
    text: `INSERT INTO approvals (id, agent, on_behalf_of, tool, arguments_digest, controls, reasons, decision_id,
             requested_by, requested_at, state, expires_at, window_minutes, max_uses, uses, updated_at, arguments)
           VALUES ($1, $2, $3, $4, $5, $6::text[], $7::jsonb, $8, $9, $10, 'pending', $11, $12, $13, 0, $10, $14::jsonb)
           ON CONFLICT (agent, COALESCE(on_behalf_of, ''), tool, arguments_digest) WHERE state = 'pending'
           DO NOTHING
           RETURNING ${APPROVAL_COLUMNS}`,
    values: [
      row.id,
      row.agent,
      row.on_behalf_of,
      row.tool,
      row.arguments_digest,
      row.controls,
      JSON.stringify(row.reasons),
      row.decision_id,
      row.requested_by,
      row.requested_at,
      row.expires_at,
      row.window_minutes,
      row.max_uses,
      // SQL NULL, not JSON null, when there are none: `arguments IS NULL` reads the same either way.
      row.arguments === null ? null : JSON.stringify(row.arguments),
    ],
  };
}

/** Grants or denies a request by `by` at `now`, returning its row. */
export function decideApprovalSql(
  id: string,
  state: 'granted' | 'denied',
  expiresAt: string,
  by: string,
  now: string,
  reason: string | null,
): GrantSql {
  return {
    text: `UPDATE approvals SET state = $2, expires_at = $3, decided_by = $4, decided_at = $5, decided_reason = $6,
             updated_at = $5
           WHERE id = $1 RETURNING ${APPROVAL_COLUMNS}`,
    values: [id, state, expiresAt, by, now, reason],
  };
}

/** Uses an approval once, only while it is granted, unexpired at `now` and not used up; no row otherwise. */
export function useApprovalSql(id: string, now: string): GrantSql {
  return {
    text: `UPDATE approvals SET uses = uses + 1, updated_at = $2
           WHERE id = $1 AND state = 'granted' AND uses < max_uses AND expires_at > $2
           RETURNING ${APPROVAL_COLUMNS}`,
    values: [id, now],
  };
}

/** What an approval listing narrows on. */
export interface ApprovalConditions {
  state?: ApprovalState;
}

/**
 * The conditions of an approval listing at `now`: `expired` is a stored expiry or a pending or
 * granted request past its expiry; pending and granted are those still unexpired.
 */
export function approvalConditions(filter: ApprovalConditions, now: string): Condition[] {
  const state = filter.state;
  if (state === 'expired')
    return [(p) => `(state = 'expired' OR (state IN ('pending', 'granted') AND expires_at <= ${p(now)}))`];
  if (state === 'pending' || state === 'granted')
    return [(p) => `state = ${p(state)} AND expires_at > ${p(now)}`];
  if (state) return [(p) => `state = ${p(state)}`];
  return [];
}

/** Approvals counted by listed state at `now` (metrics). */
export function approvalCountsSql(now: string): GrantSql {
  return {
    text: `SELECT CASE WHEN state IN ('pending', 'granted') AND expires_at <= $1 THEN 'expired' ELSE state END AS state,
                  count(*) AS n
           FROM approvals GROUP BY 1`,
    values: [now],
  };
}

// ---------------------------------------------------------------------------------------------
// The grants version (fleet_state)

/** The stored rows of the approvals `ids`, as stored, by id (an evidence package's copies). */
export function approvalRowsSql(ids: readonly string[]): Sql {
  return { text: 'SELECT * FROM approvals WHERE id = ANY($1::text[]) ORDER BY id', values: [ids] };
}

/** The stored rows of the waivers `ids`, as stored, by id (an evidence package's copies). */
export function waiverRowsSql(ids: readonly string[]): Sql {
  return { text: 'SELECT * FROM exceptions WHERE id = ANY($1::text[]) ORDER BY id', values: [ids] };
}

/**
 * Approved waivers whose expiry fell in [from, to) and has passed (the expiry KPIs): compliant when
 * revoked before it, or renewed — another waiver of the same control and scope requested before it.
 */
export function waiverExpirySql(window: readonly [from: string, to: string]): Sql {
  return {
    text: `SELECT count(*) AS due,
                  count(*) FILTER (WHERE compliant) AS compliant,
                  count(*) FILTER (WHERE NOT compliant) AS lapsed
           FROM (
             SELECT (e.state = 'revoked' AND e.closed_at < e.expires_at) OR EXISTS (
                      SELECT 1 FROM exceptions r
                      WHERE r.id <> e.id AND r.control = e.control
                        AND r.subject_id IS NOT DISTINCT FROM e.subject_id
                        AND r.resource_id IS NOT DISTINCT FROM e.resource_id
                        AND r.requested_at > e.requested_at AND r.requested_at < e.expires_at
                        AND r.state IN ('pending', 'active')) AS compliant
             FROM exceptions e
             WHERE e.state IN ('active', 'revoked') AND jsonb_array_length(e.approvals) > 0
               AND e.expires_at >= $1 AND e.expires_at < $2 AND e.expires_at <= now()
           ) d`,
    values: [...window],
  };
}
