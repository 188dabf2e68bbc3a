import { v7 as uuidv7 } from 'uuid';
import { appendEvent, type EventRow, listEvents } from '../audit/event-log.ts';
import type { Database, Queryable, Sql } from '../store/types.ts';
import { ALWAYS_UNWAIVABLE, type CatalogControl, type GrantSettings, maxWaiverDays } from './catalog.ts';
import { GrantError } from './errors.ts';
import { bumpGrantsVersion, GRANTS_EVENT_WRITER } from './fleet.ts';

/** What a requester asks for (POST /v1/exceptions). */
export interface ExceptionRequest {
  control: string;
  subject_id?: string;
  resource_id?: string;
  action?: string;
  reason: string;
  compensating_controls?: string[];
  ticket?: { system: string; key: string; url?: string };
  /** RFC 3339. */
  expires_at: string;
}

/** A waiver's state as listed: `expired` is derived (active, and expires_at has passed). */
export type ExceptionState = 'pending' | 'active' | 'expired' | 'revoked' | 'rejected';

/** One stored waiver (the API's wire shape). */
export interface StoredException {
  id: string;
  control: string;
  severity: string;
  subject_id: string | null;
  resource_id: string | null;
  action: string | null;
  reason: string;
  compensating_controls: string[];
  ticket: { system: string; key: string; url?: string } | null;
  expires_at: string;
  state: ExceptionState;
  requested_by: string;
  requested_at: string;
  approvers_required: number;
  approvals: { by: string; at: string; reason: string | null }[];
  closed_by: string | null;
  closed_at: string | null;
  closed_reason: string | null;
}

/** A waiver as the policy receives it in input.grants.exceptions. */
export interface PolicyWaiver {
  id: string;
  control: string;
  subject_id: string | null;
  resource_id: string | null;
  action: string | null;
  expires_at: string;
  approved: true;
}

/** What a listing narrows on (AND). */
export interface ExceptionFilter {
  state?: ExceptionState;
  control?: string;
  subjectId?: string;
  resourceId?: string;
  /** Active, unexpired waivers that expire within this many seconds. */
  expiringWithinSeconds?: number;
  limit?: number;
}

/** Who acts, as the route established it from the verified token. */
export interface Actor {
  sub: string;
  admin: boolean;
}

const COLUMNS = `id, control, severity, subject_id, resource_id, action, reason, compensating_controls, ticket,
  expires_at, state, requested_by, requested_at, approvers_required, approvals, closed_by, closed_at,
  closed_reason`;

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}

function isoOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : iso(value);
}

function fromRow(row: Record<string, unknown>, now: Date): StoredException {
  const expiresAt = iso(row.expires_at);
  const stored = row.state as ExceptionState;
  const state = stored === 'active' && Date.parse(expiresAt) <= now.getTime() ? 'expired' : stored;
  return {
    id: row.id as string,
    control: row.control as string,
    severity: row.severity as string,
    subject_id: (row.subject_id as string | null) ?? null,
    resource_id: (row.resource_id as string | null) ?? null,
    action: (row.action as string | null) ?? null,
    reason: row.reason as string,
    compensating_controls: (row.compensating_controls as string[]) ?? [],
    ticket: (row.ticket as StoredException['ticket']) ?? null,
    expires_at: expiresAt,
    state,
    requested_by: row.requested_by as string,
    requested_at: iso(row.requested_at),
    approvers_required: Number(row.approvers_required),
    approvals: (row.approvals as StoredException['approvals']) ?? [],
    closed_by: (row.closed_by as string | null) ?? null,
    closed_at: isoOrNull(row.closed_at),
    closed_reason: (row.closed_reason as string | null) ?? null,
  };
}

/**
 * The stored waivers: request, four-eyes approval, rejection, revocation, listings. Every change
 * commits with its chained event (kind `exception`) and a bump of the grants version, then
 * `onChange` is told the new version (the cache and the bus publish it).
 */
export class ExceptionStore {
  private readonly db: Database;
  private readonly clock: () => Date;
  private readonly onChange: (version: number) => void;

  constructor(deps: { db: Database; clock?: () => Date; onChange?: (version: number) => void }) {
    this.db = deps.db;
    this.clock = deps.clock ?? (() => new Date());
    this.onChange = deps.onChange ?? (() => {});
  }

  /** Validates a request against the active bundle's catalog and settings, and stores it pending. */
  async request(
    body: ExceptionRequest,
    actor: Actor,
    policy: { catalog: Map<string, CatalogControl>; settings: GrantSettings },
  ): Promise<StoredException> {
    const now = this.clock();
    const control = policy.catalog.get(body.control);
    if (!control) {
      throw new GrantError(
        'invalid',
        'unknown_control',
        `control ${body.control} is not in the active bundle's catalog`,
      );
    }
    if (!control.waivable || ALWAYS_UNWAIVABLE.has(body.control)) {
      throw new GrantError('invalid', 'control_not_waivable', `control ${body.control} cannot be waived`);
    }
    if (!body.subject_id && !body.resource_id) {
      throw new GrantError(
        'invalid',
        'exception_unscoped',
        'a waiver must name a subject_id, a resource_id or both',
      );
    }
    const expires = Date.parse(body.expires_at);
    if (!Number.isFinite(expires)) {
      throw new GrantError('invalid', 'invalid_request', 'expires_at must be an RFC 3339 date-time');
    }
    if (expires <= now.getTime()) {
      throw new GrantError('invalid', 'expiry_in_past', 'expires_at must be in the future');
    }
    const maxDays = maxWaiverDays(policy.settings, control.severity);
    if (expires > now.getTime() + maxDays * 86_400_000) {
      throw new GrantError(
        'invalid',
        'expiry_too_far',
        `a waiver of a ${control.severity} control may last at most ${maxDays} days`,
      );
    }
    const id = `exc_${uuidv7({ msecs: now.getTime() })}`;
    const approversRequired = policy.settings.twoApproverSeverities.includes(control.severity) ? 2 : 1;
    const row = await this.change(actor.sub, async (tx) => {
      const { rows } = await tx.query<Record<string, unknown>>({
        text: `INSERT INTO exceptions (id, control, severity, subject_id, resource_id, action, reason,
                 compensating_controls, ticket, expires_at, state, requested_by, requested_at,
                 approvers_required, approvals, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, 'pending', $11, $12, $13, '[]'::jsonb, $12)
               RETURNING ${COLUMNS}`,
        values: [
          id,
          body.control,
          control.severity,
          body.subject_id ?? null,
          body.resource_id ?? null,
          body.action ?? null,
          body.reason,
          JSON.stringify(body.compensating_controls ?? []),
          body.ticket ? JSON.stringify(body.ticket) : null,
          new Date(expires).toISOString(),
          actor.sub,
          now.toISOString(),
          approversRequired,
        ],
      });
      const created = rows[0]!;
      await appendEvent(
        tx,
        GRANTS_EVENT_WRITER,
        {
          kind: 'exception',
          action: 'request',
          actor: actor.sub,
          subject: id,
          reason: body.reason,
          payload: {
            control: body.control,
            severity: control.severity,
            subject_id: body.subject_id ?? null,
            resource_id: body.resource_id ?? null,
            action: body.action ?? null,
            expires_at: new Date(expires).toISOString(),
            compensating_controls: body.compensating_controls ?? [],
            ticket: body.ticket ?? null,
            approvers_required: approversRequired,
          },
        },
        now,
      );
      return created;
    });
    return fromRow(row, now);
  }

  /**
   * One approval. The requester may not approve (403 self_approval), nor may one approver count
   * twice; the waiver turns active when it has the approvals its severity needs.
   */
  async approve(id: string, actor: Actor, reason: string | null): Promise<StoredException> {
    const now = this.clock();
    const row = await this.change(actor.sub, async (tx) => {
      const current = await this.locked(tx, id);
      if (current.state !== 'pending') {
        throw new GrantError(
          'conflict',
          'exception_not_pending',
          `exception ${id} is ${current.state}, not pending`,
        );
      }
      if (current.requested_by === actor.sub) {
        throw new GrantError('forbidden', 'self_approval', 'the requester of a waiver cannot approve it');
      }
      if (current.approvals.some((a) => a.by === actor.sub)) {
        throw new GrantError('conflict', 'already_approved', 'this approver has already approved the waiver');
      }
      if (Date.parse(current.expires_at) <= now.getTime()) {
        throw new GrantError(
          'conflict',
          'exception_expired',
          `exception ${id} expired before it was approved`,
        );
      }
      const approvals = [...current.approvals, { by: actor.sub, at: now.toISOString(), reason }];
      const state = approvals.length >= current.approvers_required ? 'active' : 'pending';
      const { rows } = await tx.query<Record<string, unknown>>({
        text: `UPDATE exceptions SET approvals = $2::jsonb, state = $3, updated_at = $4 WHERE id = $1 RETURNING ${COLUMNS}`,
        values: [id, JSON.stringify(approvals), state, now.toISOString()],
      });
      await appendEvent(
        tx,
        GRANTS_EVENT_WRITER,
        {
          kind: 'exception',
          action: state === 'active' ? 'activate' : 'approve',
          actor: actor.sub,
          subject: id,
          reason,
          payload: { approvals: approvals.length, approvers_required: current.approvers_required, state },
        },
        now,
      );
      return rows[0]!;
    });
    return fromRow(row, now);
  }

  /** Refuses a pending waiver. */
  async reject(id: string, actor: Actor, reason: string): Promise<StoredException> {
    return this.close(id, actor, reason, 'reject');
  }

  /** Ends an active waiver early: only one of its approvers, or an admin, may. */
  async revoke(id: string, actor: Actor, reason: string): Promise<StoredException> {
    return this.close(id, actor, reason, 'revoke');
  }

  private async close(id: string, actor: Actor, reason: string, action: 'reject' | 'revoke') {
    const now = this.clock();
    const row = await this.change(actor.sub, async (tx) => {
      const current = await this.locked(tx, id);
      const from = action === 'reject' ? 'pending' : 'active';
      // `expired` is an active row: it may still be revoked (the listing then says revoked).
      const stored = current.state === 'expired' ? 'active' : current.state;
      if (stored !== from) {
        throw new GrantError(
          'conflict',
          action === 'reject' ? 'exception_not_pending' : 'exception_not_active',
          `exception ${id} is ${current.state}, not ${from}`,
        );
      }
      if (action === 'revoke' && !actor.admin && !current.approvals.some((a) => a.by === actor.sub)) {
        throw new GrantError(
          'forbidden',
          'not_an_approver',
          'only an approver of the waiver or an admin may revoke it',
        );
      }
      const state = action === 'reject' ? 'rejected' : 'revoked';
      const { rows } = await tx.query<Record<string, unknown>>({
        text: `UPDATE exceptions SET state = $2, closed_by = $3, closed_at = $4, closed_reason = $5, updated_at = $4
               WHERE id = $1 RETURNING ${COLUMNS}`,
        values: [id, state, actor.sub, now.toISOString(), reason],
      });
      await appendEvent(
        tx,
        GRANTS_EVENT_WRITER,
        { kind: 'exception', action, actor: actor.sub, subject: id, reason, payload: { state } },
        now,
      );
      return rows[0]!;
    });
    return fromRow(row, now);
  }

  /** One waiver, or null. */
  async get(id: string): Promise<StoredException | null> {
    const { rows } = await this.db.query<Record<string, unknown>>({
      text: `SELECT ${COLUMNS} FROM exceptions WHERE id = $1`,
      values: [id],
    });
    return rows[0] ? fromRow(rows[0], this.clock()) : null;
  }

  /** A waiver's chained events, oldest first. */
  async history(id: string): Promise<EventRow[]> {
    const events = await listEvents(this.db, { kind: 'exception', subject: id, limit: 1000 });
    return events.reverse();
  }

  /** Waivers matching `filter`, newest request first. */
  async list(filter: ExceptionFilter = {}): Promise<StoredException[]> {
    const now = this.clock();
    const values: unknown[] = [];
    const where: string[] = [];
    const param = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    if (filter.state === 'active')
      where.push(`state = 'active' AND expires_at > ${param(now.toISOString())}`);
    else if (filter.state === 'expired')
      where.push(`state = 'active' AND expires_at <= ${param(now.toISOString())}`);
    else if (filter.state) where.push(`state = ${param(filter.state)}`);
    if (filter.control) where.push(`control = ${param(filter.control)}`);
    if (filter.subjectId) where.push(`subject_id = ${param(filter.subjectId)}`);
    if (filter.resourceId) where.push(`resource_id = ${param(filter.resourceId)}`);
    if (filter.expiringWithinSeconds !== undefined) {
      const horizon = new Date(now.getTime() + filter.expiringWithinSeconds * 1000).toISOString();
      where.push(
        `state = 'active' AND expires_at > ${param(now.toISOString())} AND expires_at <= ${param(horizon)}`,
      );
    }
    const limit = param(Math.min(Math.max(filter.limit ?? 100, 1), 1000));
    const { rows } = await this.db.query<Record<string, unknown>>({
      text: `SELECT ${COLUMNS} FROM exceptions ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
             ORDER BY requested_at DESC, id DESC LIMIT ${limit}`,
      values,
    });
    return rows.map((row) => fromRow(row, now));
  }

  /** Every active, unexpired waiver, as the policy receives it (the cache's load). */
  async activeWaivers(): Promise<PolicyWaiver[]> {
    const { rows } = await this.db.query<Record<string, unknown>>({
      text: `SELECT id, control, subject_id, resource_id, action, expires_at FROM exceptions
             WHERE state = 'active' AND expires_at > $1 ORDER BY id`,
      values: [this.clock().toISOString()],
    });
    return rows.map((row) => ({
      id: row.id as string,
      control: row.control as string,
      subject_id: (row.subject_id as string | null) ?? null,
      resource_id: (row.resource_id as string | null) ?? null,
      action: (row.action as string | null) ?? null,
      expires_at: iso(row.expires_at),
      approved: true as const,
    }));
  }

  /** Waivers per listed state, and the active ones expiring within `soonSeconds` (metrics). */
  async counts(
    soonSeconds = 7 * 86_400,
  ): Promise<{ byState: Record<ExceptionState, number>; expiringSoon: number }> {
    const now = this.clock();
    const { rows } = await this.db.query<{ state: string; expired: boolean; soon: boolean; n: string }>({
      text: `SELECT state, (state = 'active' AND expires_at <= $1) AS expired,
                    (state = 'active' AND expires_at > $1 AND expires_at <= $2) AS soon, count(*) AS n
             FROM exceptions GROUP BY 1, 2, 3`,
      values: [now.toISOString(), new Date(now.getTime() + soonSeconds * 1000).toISOString()],
    });
    const byState: Record<ExceptionState, number> = {
      pending: 0,
      active: 0,
      expired: 0,
      revoked: 0,
      rejected: 0,
    };
    let expiringSoon = 0;
    for (const row of rows) {
      const state = (row.expired ? 'expired' : row.state) as ExceptionState;
      byState[state] += Number(row.n);
      if (row.soon) expiringSoon += Number(row.n);
    }
    return { byState, expiringSoon };
  }

  private async locked(tx: Queryable, id: string): Promise<StoredException> {
    const { rows } = await tx.query<Record<string, unknown>>({
      text: `SELECT ${COLUMNS} FROM exceptions WHERE id = $1 FOR UPDATE`,
      values: [id],
    });
    if (!rows[0]) throw new GrantError('not_found', 'exception_not_found', `no exception ${id}`);
    return fromRow(rows[0], this.clock());
  }

  /** Runs a change with the grants version bump in one transaction, then tells `onChange`. */
  private async change<T>(actor: string, work: (tx: Queryable) => Promise<T>): Promise<T> {
    let version = 0;
    const result = await this.db.transaction(async (tx) => {
      const out = await work(tx);
      version = await bumpGrantsVersion(tx, actor);
      return out;
    });
    this.onChange(version);
    return result;
  }
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
