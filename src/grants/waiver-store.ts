import { v7 as uuidv7 } from 'uuid';
import { appendEvent, type EventRow, listEvents } from '../audit/event-log.ts';
import { epochNanos } from '../decisions/epoch-nanos.ts';
import type { Bus } from '../store/bus.ts';
import type { Database, Queryable } from '../store/types.ts';
import {
  ALWAYS_UNWAIVABLE,
  type CatalogControl,
  type GrantSettings,
  maxWaiverDays,
} from './control-catalog.ts';
import { GrantError } from './grant-error.ts';
import {
  activeWaiversSql,
  approveWaiverSql,
  closeWaiverSql,
  grantByIdSql,
  insertWaiverSql,
  listGrantsSql,
  waiverConditions,
  waiverCountsSql,
} from './grants-sql.ts';
import { bumpGrantsVersion, GRANTS_EVENT_WRITER, GRANTS_TOPIC } from './grants-version.ts';

/** What a requester asks for (POST /v1/exceptions). */
export interface WaiverRequest {
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
export type WaiverState = 'pending' | 'active' | 'expired' | 'revoked' | 'rejected';

/** One stored waiver (the API's wire shape). */
export interface StoredWaiver {
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
  state: WaiverState;
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
  /**
   * `expires_at` in nanoseconds since the epoch (server-side, like the waiver itself): the policies
   * compare it with `input.now_ns` instead of parsing `expires_at` on every decision.
   */
  expires_at_ns: number;
  approved: true;
}

/** What a listing narrows on (AND). */
export interface WaiverFilter {
  state?: WaiverState;
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

/**
 * Where a committed waiver change must show before the call that made it returns: this replica's
 * cache (reloaded at once, so its next decision sees the change) and every other replica (a notice
 * on the bus; they also poll the grants version, so a lost notice only delays them).
 */
export interface WaiverPropagation {
  cache: { refresh(): Promise<void> };
  bus: Bus;
  /** This replica, named in the notice. */
  origin: string;
}

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}

function isoOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : iso(value);
}

function fromRow(row: Record<string, unknown>, now: Date): StoredWaiver {
  const expiresAt = iso(row.expires_at);
  const stored = row.state as WaiverState;
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
    ticket: (row.ticket as StoredWaiver['ticket']) ?? null,
    expires_at: expiresAt,
    state,
    requested_by: row.requested_by as string,
    requested_at: iso(row.requested_at),
    approvers_required: Number(row.approvers_required),
    approvals: (row.approvals as StoredWaiver['approvals']) ?? [],
    closed_by: (row.closed_by as string | null) ?? null,
    closed_at: isoOrNull(row.closed_at),
    closed_reason: (row.closed_reason as string | null) ?? null,
  };
}

/** Every active waiver unexpired at `now`, as the policy receives it (the waiver cache's load). */
export async function readActiveWaivers(db: Queryable, now: Date): Promise<PolicyWaiver[]> {
  const { rows } = await db.query<Record<string, unknown>>(activeWaiversSql(now.toISOString()));
  return rows.map((row) => {
    const expiresAt = iso(row.expires_at);
    return {
      id: row.id as string,
      control: row.control as string,
      subject_id: (row.subject_id as string | null) ?? null,
      resource_id: (row.resource_id as string | null) ?? null,
      action: (row.action as string | null) ?? null,
      expires_at: expiresAt,
      expires_at_ns: epochNanos(Date.parse(expiresAt)),
      approved: true as const,
    };
  });
}

/**
 * The stored waivers (rows of the `exceptions` table, the public name: ADR 0015): request,
 * four-eyes approval, rejection, revocation, listings. Every change
 * commits with its chained event (kind `exception`) and a bump of the grants version; then, before
 * the call returns, the change is propagated (`WaiverPropagation`): whoever calls the store — the
 * HTTP routes, a console, a CLI — gets a fleet that sees the change, with nothing to remember.
 */
export class WaiverStore {
  private readonly db: Database;
  private readonly clock: () => Date;
  private readonly propagation: WaiverPropagation | undefined;

  constructor(deps: { db: Database; clock?: () => Date; propagation?: WaiverPropagation }) {
    this.db = deps.db;
    this.clock = deps.clock ?? (() => new Date());
    this.propagation = deps.propagation;
  }

  /** Validates a request against the active bundle's catalog and settings, and stores it pending. */
  async request(
    body: WaiverRequest,
    actor: Actor,
    policy: { catalog: Map<string, CatalogControl>; settings: GrantSettings },
  ): Promise<StoredWaiver> {
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
      const { rows } = await tx.query<Record<string, unknown>>(
        insertWaiverSql({
          id,
          control: body.control,
          severity: control.severity,
          subject_id: body.subject_id ?? null,
          resource_id: body.resource_id ?? null,
          action: body.action ?? null,
          reason: body.reason,
          compensating_controls: body.compensating_controls ?? [],
          ticket: body.ticket ?? null,
          expires_at: new Date(expires).toISOString(),
          requested_by: actor.sub,
          requested_at: now.toISOString(),
          approvers_required: approversRequired,
        }),
      );
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
  async approve(id: string, actor: Actor, reason: string | null): Promise<StoredWaiver> {
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
      const { rows } = await tx.query<Record<string, unknown>>(
        approveWaiverSql(id, approvals, state, now.toISOString()),
      );
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
  async reject(id: string, actor: Actor, reason: string): Promise<StoredWaiver> {
    return this.close(id, actor, reason, 'reject');
  }

  /** Ends an active waiver early: only one of its approvers, or an admin, may. */
  async revoke(id: string, actor: Actor, reason: string): Promise<StoredWaiver> {
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
      const { rows } = await tx.query<Record<string, unknown>>(
        closeWaiverSql(id, state, actor.sub, now.toISOString(), reason),
      );
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
  async get(id: string): Promise<StoredWaiver | null> {
    const { rows } = await this.db.query<Record<string, unknown>>(grantByIdSql('waivers', id));
    return rows[0] ? fromRow(rows[0], this.clock()) : null;
  }

  /** A waiver's chained events, oldest first. */
  async history(id: string): Promise<EventRow[]> {
    const events = await listEvents(this.db, { kind: 'exception', subject: id, limit: 1000 });
    return events.reverse();
  }

  /** Waivers matching `filter`, newest request first. */
  async list(filter: WaiverFilter = {}): Promise<StoredWaiver[]> {
    const now = this.clock();
    const expiringBy =
      filter.expiringWithinSeconds === undefined
        ? undefined
        : new Date(now.getTime() + filter.expiringWithinSeconds * 1000).toISOString();
    const conditions = waiverConditions({ ...filter, expiringBy }, now.toISOString());
    const { rows } = await this.db.query<Record<string, unknown>>(
      listGrantsSql('waivers', conditions, filter.limit),
    );
    return rows.map((row) => fromRow(row, now));
  }

  /** Every active, unexpired waiver, as the policy receives it. */
  activeWaivers(): Promise<PolicyWaiver[]> {
    return readActiveWaivers(this.db, this.clock());
  }

  /** Waivers per listed state, and the active ones expiring within `soonSeconds` (metrics). */
  async counts(
    soonSeconds = 7 * 86_400,
  ): Promise<{ byState: Record<WaiverState, number>; expiringSoon: number }> {
    const now = this.clock();
    const { rows } = await this.db.query<{ state: string; expired: boolean; soon: boolean; n: string }>(
      waiverCountsSql(now.toISOString(), new Date(now.getTime() + soonSeconds * 1000).toISOString()),
    );
    const byState: Record<WaiverState, number> = {
      pending: 0,
      active: 0,
      expired: 0,
      revoked: 0,
      rejected: 0,
    };
    let expiringSoon = 0;
    for (const row of rows) {
      const state = (row.expired ? 'expired' : row.state) as WaiverState;
      byState[state] += Number(row.n);
      if (row.soon) expiringSoon += Number(row.n);
    }
    return { byState, expiringSoon };
  }

  private async locked(tx: Queryable, id: string): Promise<StoredWaiver> {
    const { rows } = await tx.query<Record<string, unknown>>(grantByIdSql('waivers', id, true));
    if (!rows[0]) throw new GrantError('not_found', 'exception_not_found', `no exception ${id}`);
    return fromRow(rows[0], this.clock());
  }

  /** Runs a change with the grants version bump in one transaction, then propagates it. */
  private async change<T>(actor: string, work: (tx: Queryable) => Promise<T>): Promise<T> {
    let version = 0;
    const result = await this.db.transaction(async (tx) => {
      const out = await work(tx);
      version = await bumpGrantsVersion(tx, actor);
      return out;
    });
    await this.propagate(version);
    return result;
  }

  /** This replica's cache reloads, then the other replicas are told (`WaiverPropagation`). */
  private async propagate(version: number): Promise<void> {
    if (!this.propagation) return;
    const { cache, bus, origin } = this.propagation;
    // The cache never rejects (a failed reload is logged, and the poll retries).
    await cache.refresh();
    // NOTE: after the commit, never before: a replica that reloads on the notice must see the
    // change. Publishing never rejects either (replicas poll the version when a notice is lost).
    await bus.publish({ topic: GRANTS_TOPIC, version, origin });
  }
}
