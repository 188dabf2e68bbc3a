import crypto from 'node:crypto';
import { canonicalJson } from '../decisions/canonical-json.ts';
import type { AttachedGrants, DecisionGrants, SettleItem, Settlement } from '../decisions/grants.ts';
import { isObject } from '../json/values.ts';
import type { ApprovalBinding, ApprovalStore, StoredApproval } from './approval-store.ts';
import type { GrantSettings } from './control-catalog.ts';
import type { WaiverCache } from './waiver-cache.ts';

function field(value: unknown, key: string): unknown {
  return isObject(value) ? value[key] : undefined;
}

function nonEmpty(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/** SHA-256 hex of the RFC 8785 canonical JSON of resource.properties.arguments (null when absent). */
export function argumentsDigest(envelope: Record<string, unknown>): string {
  const args = field(field(envelope.resource, 'properties'), 'arguments');
  return crypto.hash('sha256', canonicalJson(args === undefined ? null : args) ?? 'null', 'hex');
}

/**
 * True for a listing decision (`context.listing: true`, as the MCP guard marks `tools/list`): it
 * asks whether a tool may be shown, not whether a call may run, so it has no call to approve.
 */
export function isListing(envelope: Record<string, unknown>): boolean {
  return field(envelope.context, 'listing') === true;
}

/**
 * The call's arguments as the decision record keeps them (masked by `system/log/mask`), or null
 * when the record keeps none.
 */
export function recordedArguments(recordedInput: unknown): unknown {
  return field(field(field(recordedInput, 'resource'), 'properties'), 'arguments') ?? null;
}

/** The approval binding of a tool-call envelope; null for anything else, listings included. */
export function bindingOf(envelope: Record<string, unknown>): ApprovalBinding | null {
  if (field(envelope.action, 'name') !== 'tool.call' || field(envelope.resource, 'type') !== 'tool')
    return null;
  if (isListing(envelope)) return null;
  const agent = field(envelope.subject, 'id');
  const tool = field(envelope.resource, 'id');
  if (!nonEmpty(agent) || !nonEmpty(tool)) return null;
  const onBehalfOf = field(field(envelope.subject, 'properties'), 'on_behalf_of');
  return {
    agent,
    tool,
    on_behalf_of: typeof onBehalfOf === 'string' ? onBehalfOf : null,
    arguments_digest: argumentsDigest(envelope),
  };
}

/** Told about approval activity (webhook, metrics, logs). Must not throw. */
export interface ApprovalEvents {
  onRequested?(approval: StoredApproval): void;
  onUsed?(approval: StoredApproval, decisionId: string): void;
  onError?(err: unknown, what: string): void;
}

/** Longest approval id the service looks up (ids are `apr_` + a UUID). */
const MAX_APPROVAL_ID = 64;

/**
 * The grants of the PDP's own store, for the decision service: waivers from this replica's cache,
 * the approval a retry names (one database read), and, after evaluation, the use of an approval
 * (atomic, or the decision fails closed) and the approval request of a deny that asks for one.
 */
export class StoredGrants implements DecisionGrants {
  private readonly cache: WaiverCache;
  private readonly approvals: ApprovalStore;
  private readonly settings: () => GrantSettings;
  private readonly legacyClientApprovals: boolean;
  private readonly statusUrl: (id: string) => string;
  private readonly events: ApprovalEvents;

  constructor(deps: {
    cache: WaiverCache;
    approvals: ApprovalStore;
    settings: () => GrantSettings;
    legacyClientApprovals: boolean;
    /** VERDICT_PUBLIC_URL, when set: status URLs are then absolute. */
    publicUrl?: string;
    events?: ApprovalEvents;
  }) {
    this.cache = deps.cache;
    this.approvals = deps.approvals;
    this.settings = deps.settings;
    this.legacyClientApprovals = deps.legacyClientApprovals;
    const base = (deps.publicUrl ?? '').replace(/\/+$/, '');
    this.statusUrl = (id) => `${base}/v1/approvals/${encodeURIComponent(id)}`;
    this.events = deps.events ?? {};
  }

  attach(
    envelope: Record<string, unknown>,
  ): AttachedGrants | undefined | Promise<AttachedGrants | undefined> {
    const subjectId = field(envelope.subject, 'id');
    const resourceId = field(envelope.resource, 'id');
    const waivers = this.cache.relevant(
      typeof subjectId === 'string' ? subjectId : null,
      typeof resourceId === 'string' ? resourceId : null,
    );
    const grants: AttachedGrants = {};
    if (waivers.length > 0) grants.exceptions = waivers;
    if (this.legacyClientApprovals) grants.legacy_client_approvals = true;
    const approvalId = field(envelope.context, 'approval_id');
    if (nonEmpty(approvalId) && approvalId.length <= MAX_APPROVAL_ID) {
      grants.arguments_digest = argumentsDigest(envelope);
      // NOTE: read from Postgres, not from a cache: a just-granted approval works at once on any
      // replica, and a use is a database write anyway. A failed read attaches nothing (deny).
      return this.approvals
        .forPolicy(approvalId)
        .then((approval) => {
          if (approval) grants.approval = approval;
          return grants;
        })
        .catch((err) => {
          this.events.onError?.(err, 'approval lookup');
          return grants;
        });
    }
    return Object.keys(grants).length > 0 ? grants : undefined;
  }

  settle(items: SettleItem[]): Promise<Settlement[]> {
    return Promise.all(items.map((item) => this.settleOne(item)));
  }

  private async settleOne(item: SettleItem): Promise<Settlement> {
    if (item.allow) {
      for (const id of item.result.approvals ?? []) {
        let used: StoredApproval | null = null;
        try {
          used = await this.approvals.consume(id, item.decisionId, item.caller.sub);
        } catch (err) {
          this.events.onError?.(err, 'approval use');
        }
        if (!used) {
          return {
            failClosed: {
              code: 'approval_unusable',
              message: 'the approval is no longer usable (used up, expired or withdrawn)',
            },
          };
        }
        this.events.onUsed?.(used, item.decisionId);
      }
      return {};
    }
    const binding = bindingOf(item.input);
    if (!binding) return {};
    const asking = item.result.obligations.filter((o) => o.type === 'human_approval');
    try {
      const { approval, created } = await this.approvals.requestFor(
        binding,
        {
          controls: [...new Set(asking.map((o) => String(o.control ?? '')).filter(Boolean))],
          reasons: asking.map((o) => String(o.reason ?? '')).filter(Boolean),
          decisionId: item.decisionId,
          requestedBy: item.caller.sub,
          arguments: recordedArguments(item.recordedInput),
        },
        this.settings(),
      );
      if (created) this.events.onRequested?.(approval);
      return {
        approvalRequest: {
          id: approval.id,
          expires_at: approval.expires_at,
          status_url: this.statusUrl(approval.id),
        },
      };
    } catch (err) {
      // The deny stands without a request; the agent runtime may retry the call to get one.
      this.events.onError?.(err, 'approval request');
      return {};
    }
  }
}
