import { v7 as uuidv7 } from 'uuid';
import { appendEvent, type EventRow, listEvents } from '../audit/event-log.ts';
import type { Database, Queryable } from '../store/types.ts';
import type { GrantSettings } from './control-catalog.ts';
import { GrantError } from './grant-error.ts';
import {
  approvalConditions,
  approvalCountsSql,
  decideApprovalSql,
  expireApprovalSql,
  grantByIdSql,
  insertApprovalSql,
  listGrantsSql,
  pendingApprovalSql,
  useApprovalSql,
} from './grants-sql.ts';
import { GRANTS_EVENT_WRITER } from './grants-version.ts';

/** What one approval is for: this agent, acting for this user, calling this tool with these arguments. */
export interface ApprovalBinding {
  agent: string;
  on_behalf_of: string | null;
  tool: string;
  /** SHA-256 hex of the RFC 8785 canonical JSON of resource.properties.arguments (or of null). */
  arguments_digest: string;
}

export type ApprovalState = 'pending' | 'granted' | 'denied' | 'expired';

/** One stored approval (the API's wire shape). */
export interface StoredApproval extends ApprovalBinding {
  id: string;
  /**
   * The call's arguments (resource.properties.arguments) as the decision record stores its input:
   * masked by the bundle's `system/log/mask`, so an erased value is absent and an upserted one
   * appears as the mask wrote it. Null when the call had none or the mask removed them (or the mask
   * policy failed). Only the digest binds the approval; these are for the human who decides it.
   */
  arguments: unknown;
  controls: string[];
  reasons: string[];
  decision_id: string | null;
  requested_by: string;
  requested_at: string;
  /** Listed as `expired` once expires_at has passed (pending or granted). */
  state: ApprovalState;
  /** Pending: when the request lapses. Granted: the end of the approval window. */
  expires_at: string;
  window_minutes: number;
  max_uses: number;
  uses: number;
  decided_by: string | null;
  decided_at: string | null;
  decided_reason: string | null;
}

/** An approval as the policy receives it in input.grants.approval. */
export interface PolicyApproval extends ApprovalBinding {
  id: string;
  state: string;
  expires_at: string;
  uses: number;
  max_uses: number;
  granted_by: string | null;
}

/** Who approves or denies, from the verified token. */
export interface Approver {
  sub: string;
  human: boolean;
}

/** Why a request is opened: the deny that asked for it, and the masked arguments to show. */
export interface ApprovalRequestReason {
  controls: string[];
  reasons: string[];
  decisionId: string;
  requestedBy: string;
  /** The call's arguments as masked for the decision record (StoredApproval.arguments). */
  arguments: unknown;
}

/** How long a replica reuses the pending request it answered for a binding without reading it again. */
const PENDING_MEMO_MS = 2_000;
/** Bindings remembered at most (the memo is dropped whole past it: it is only a shortcut). */
const PENDING_MEMO_MAX = 10_000;

function bindingKey(binding: ApprovalBinding): string {
  return `${binding.agent}\u0000${binding.on_behalf_of ?? ''}\u0000${binding.tool}\u0000${binding.arguments_digest}`;
}

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}

function fromRow(row: Record<string, unknown>, now: Date | null): StoredApproval {
  const expiresAt = iso(row.expires_at);
  let state = row.state as ApprovalState;
  if (now && (state === 'pending' || state === 'granted') && Date.parse(expiresAt) <= now.getTime())
    state = 'expired';
  return {
    id: row.id as string,
    agent: row.agent as string,
    on_behalf_of: (row.on_behalf_of as string | null) ?? null,
    tool: row.tool as string,
    arguments_digest: row.arguments_digest as string,
    arguments: row.arguments ?? null,
    controls: (row.controls as string[]) ?? [],
    reasons: (row.reasons as string[]) ?? [],
    decision_id: (row.decision_id as string | null) ?? null,
    requested_by: row.requested_by as string,
    requested_at: iso(row.requested_at),
    state,
    expires_at: expiresAt,
    window_minutes: Number(row.window_minutes),
    max_uses: Number(row.max_uses),
    uses: Number(row.uses),
    decided_by: (row.decided_by as string | null) ?? null,
    decided_at: row.decided_at == null ? null : iso(row.decided_at),
    decided_reason: (row.decided_reason as string | null) ?? null,
  };
}

function same(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return false;
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/**
 * Human approvals of agent actions. A deny carrying a `human_approval` obligation opens (or reuses)
 * the one pending request of its binding; a human grants or denies it; a decision that relies on it
 * consumes one use atomically. Every change commits with its chained event (kind `approval`).
 */
export class ApprovalStore {
  private readonly db: Database;
  private readonly clock: () => Date;
  /**
   * The pending request of each binding this replica answered lately, for PENDING_MEMO_MS: an agent
   * retrying a denied call (the common case) gets the same request without a read per deny. A request
   * granted or denied here leaves the memo at once; on another replica, within PENDING_MEMO_MS.
   */
  private readonly pendingMemo = new Map<string, { approval: StoredApproval; until: number }>();

  /** Told after each committed change that a live view shows (opened, granted, denied). */
  private readonly onChange: (approval: StoredApproval) => void;

  constructor(deps: { db: Database; clock?: () => Date; onChange?: (approval: StoredApproval) => void }) {
    this.db = deps.db;
    this.clock = deps.clock ?? (() => new Date());
    this.onChange = deps.onChange ?? (() => {});
  }

  /**
   * The pending request for `binding`: the existing one while it has not lapsed, else a new one.
   * `created` tells the caller to notify (webhook). Safe under concurrency: the unique partial
   * index on the binding admits one pending row, and a losing insert reads the winner's.
   */
  async requestFor(
    binding: ApprovalBinding,
    why: ApprovalRequestReason,
    settings: GrantSettings,
  ): Promise<{ approval: StoredApproval; created: boolean }> {
    const now = this.clock();
    const key = bindingKey(binding);
    const memo = this.pendingMemo.get(key);
    if (memo && memo.until > now.getTime()) return { approval: memo.approval, created: false };
    // NOTE: the common case — the binding's request is already pending — is one plain read, not a
    // transaction: every retry of a denied tool call lands here, and a lock-taking transaction per
    // deny (BEGIN, SELECT … FOR UPDATE, COMMIT) cost three round trips and serialised the retries.
    const pending = await this.pendingFor(this.db, binding, false);
    const answer =
      pending && Date.parse(pending.expires_at) > now.getTime()
        ? { approval: pending, created: false }
        : await this.openRequest(binding, why, settings, now);
    this.remember(key, answer.approval, now);
    if (answer.created) this.onChange(answer.approval);
    return answer;
  }

  private remember(key: string, approval: StoredApproval, now: Date): void {
    if (this.pendingMemo.size >= PENDING_MEMO_MAX) this.pendingMemo.clear();
    const until = Math.min(now.getTime() + PENDING_MEMO_MS, Date.parse(approval.expires_at));
    this.pendingMemo.set(key, { approval, until });
  }

  private forget(id: string): void {
    for (const [key, memo] of this.pendingMemo) if (memo.approval.id === id) this.pendingMemo.delete(key);
  }

  /** Opens the binding's request (expiring a lapsed one), or reads the one another replica opened. */
  private openRequest(
    binding: ApprovalBinding,
    why: ApprovalRequestReason,
    settings: GrantSettings,
    now: Date,
  ): Promise<{ approval: StoredApproval; created: boolean }> {
    return this.db.transaction(async (tx) => {
      const existing = await this.pendingFor(tx, binding, true);
      if (existing && Date.parse(existing.expires_at) > now.getTime())
        return { approval: existing, created: false };
      if (existing) {
        await tx.query(expireApprovalSql(existing.id, now.toISOString()));
        await appendEvent(
          tx,
          GRANTS_EVENT_WRITER,
          { kind: 'approval', action: 'expire', actor: 'system', subject: existing.id, payload: {} },
          now,
        );
      }
      const id = `apr_${uuidv7({ msecs: now.getTime() })}`;
      const expiresAt = new Date(now.getTime() + settings.approvalRequestTtlMinutes * 60_000).toISOString();
      const { rows } = await tx.query<Record<string, unknown>>(
        insertApprovalSql({
          id,
          agent: binding.agent,
          on_behalf_of: binding.on_behalf_of,
          tool: binding.tool,
          arguments_digest: binding.arguments_digest,
          arguments: why.arguments ?? null,
          controls: why.controls,
          reasons: why.reasons,
          decision_id: why.decisionId,
          requested_by: why.requestedBy,
          requested_at: now.toISOString(),
          expires_at: expiresAt,
          window_minutes: settings.approvalWindowMinutes,
          max_uses: settings.approvalMaxUses,
        }),
      );
      if (!rows[0]) {
        // Another replica opened it first (it committed while we waited on the index).
        const winner = await this.pendingFor(tx, binding, true);
        if (!winner) throw new Error('approval request vanished after an insert conflict');
        return { approval: winner, created: false };
      }
      await appendEvent(
        tx,
        GRANTS_EVENT_WRITER,
        {
          kind: 'approval',
          action: 'request',
          actor: why.requestedBy,
          subject: id,
          reason: why.reasons.join('; ') || null,
          payload: { ...binding, controls: why.controls, decision_id: why.decisionId, expires_at: expiresAt },
        },
        now,
      );
      return { approval: fromRow(rows[0], now), created: true };
    });
  }

  private async pendingFor(
    tx: Queryable,
    binding: ApprovalBinding,
    lock: boolean,
  ): Promise<StoredApproval | null> {
    const { rows } = await tx.query<Record<string, unknown>>(pendingApprovalSql(binding, lock));
    return rows[0] ? fromRow(rows[0], null) : null;
  }

  /**
   * Grants a pending request: the approver must be a human principal, not the agent, and not the
   * user the agent acts for unless the bundle allows it. The window starts now.
   */
  async grant(
    id: string,
    approver: Approver,
    reason: string | null,
    settings: GrantSettings,
  ): Promise<StoredApproval> {
    return this.decide(id, approver, reason, 'grant', settings);
  }

  /** Denies a pending request (the same approvers as grant). */
  async deny(
    id: string,
    approver: Approver,
    reason: string | null,
    settings: GrantSettings,
  ): Promise<StoredApproval> {
    return this.decide(id, approver, reason, 'deny', settings);
  }

  private async decide(
    id: string,
    approver: Approver,
    reason: string | null,
    action: 'grant' | 'deny',
    settings: GrantSettings,
  ): Promise<StoredApproval> {
    const now = this.clock();
    this.forget(id);
    const decided = await this.db.transaction(async (tx) => {
      const { rows: found } = await tx.query<Record<string, unknown>>(grantByIdSql('approvals', id, true));
      if (!found[0]) throw new GrantError('not_found', 'approval_not_found', `no approval ${id}`);
      const current = fromRow(found[0], now);
      if (current.state !== 'pending') {
        throw new GrantError(
          'conflict',
          'approval_not_pending',
          `approval ${id} is ${current.state}, not pending`,
        );
      }
      if (!approver.human) {
        throw new GrantError(
          'forbidden',
          'approver_not_human',
          'only a human principal may approve an agent action',
        );
      }
      if (same(approver.sub, current.agent)) {
        throw new GrantError('forbidden', 'self_approval', 'an agent cannot approve its own action');
      }
      if (!settings.onBehalfOfMayApprove && same(approver.sub, current.on_behalf_of)) {
        throw new GrantError(
          'forbidden',
          'on_behalf_of_approval',
          'the user the agent acts for may not approve its action',
        );
      }
      const state = action === 'grant' ? 'granted' : 'denied';
      const expiresAt =
        action === 'grant'
          ? new Date(now.getTime() + current.window_minutes * 60_000).toISOString()
          : current.expires_at;
      const { rows } = await tx.query<Record<string, unknown>>(
        decideApprovalSql(id, state, expiresAt, approver.sub, now.toISOString(), reason),
      );
      await appendEvent(
        tx,
        GRANTS_EVENT_WRITER,
        {
          kind: 'approval',
          action,
          actor: approver.sub,
          subject: id,
          reason,
          payload: { state, expires_at: expiresAt, max_uses: current.max_uses },
        },
        now,
      );
      return fromRow(rows[0]!, now);
    });
    this.onChange(decided);
    return decided;
  }

  /**
   * Uses the approval once for `decisionId`: atomically, only while it is granted, unexpired and not
   * used up. Null when it cannot be used (the decision must then fail closed).
   */
  async consume(id: string, decisionId: string, actor: string): Promise<StoredApproval | null> {
    const now = this.clock();
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<Record<string, unknown>>(useApprovalSql(id, now.toISOString()));
      if (!rows[0]) return null;
      const used = fromRow(rows[0], now);
      await appendEvent(
        tx,
        GRANTS_EVENT_WRITER,
        {
          kind: 'approval',
          action: 'use',
          actor,
          subject: id,
          payload: { decision_id: decisionId, uses: used.uses, max_uses: used.max_uses },
        },
        now,
      );
      return used;
    });
  }

  /** One approval, or null. */
  async get(id: string): Promise<StoredApproval | null> {
    const { rows } = await this.db.query<Record<string, unknown>>(grantByIdSql('approvals', id));
    return rows[0] ? fromRow(rows[0], this.clock()) : null;
  }

  /** The approval as the policy sees it (stored state; expiry is the policy's call at now). */
  async forPolicy(id: string): Promise<PolicyApproval | null> {
    const { rows } = await this.db.query<Record<string, unknown>>(grantByIdSql('approvals', id));
    if (!rows[0]) return null;
    const a = fromRow(rows[0], null);
    return {
      id: a.id,
      state: a.state,
      agent: a.agent,
      on_behalf_of: a.on_behalf_of,
      tool: a.tool,
      arguments_digest: a.arguments_digest,
      expires_at: a.expires_at,
      uses: a.uses,
      max_uses: a.max_uses,
      granted_by: a.state === 'granted' ? a.decided_by : null,
    };
  }

  /** An approval's chained events, oldest first. */
  async history(id: string): Promise<EventRow[]> {
    return (await listEvents(this.db, { kind: 'approval', subject: id, limit: 1000 })).reverse();
  }

  /** Approvals in `state` (listed state: `expired` is derived), newest first. */
  async list(filter: { state?: ApprovalState; limit?: number } = {}): Promise<StoredApproval[]> {
    const now = this.clock();
    const conditions = approvalConditions(filter, now.toISOString());
    const { rows } = await this.db.query<Record<string, unknown>>(
      listGrantsSql('approvals', conditions, filter.limit),
    );
    return rows.map((row) => fromRow(row, now));
  }

  /** Approvals per listed state (metrics). */
  async counts(): Promise<Record<ApprovalState, number>> {
    const now = this.clock().toISOString();
    const { rows } = await this.db.query<{ state: ApprovalState; n: string }>(approvalCountsSql(now));
    const counts: Record<ApprovalState, number> = { pending: 0, granted: 0, denied: 0, expired: 0 };
    for (const row of rows) counts[row.state] += Number(row.n);
    return counts;
  }
}
