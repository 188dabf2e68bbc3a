import type { Caller, PolicyResult } from './types.ts';

/**
 * The grants the server attaches to a contract-surface input as `input.grants` (like `caller` and
 * `now`: a client cannot write it). Recorded with the input, so a replay or an offline
 * re-evaluation sees exactly the grants the decision was made with.
 */
export interface AttachedGrants {
  /** Stored, active waivers naming this subject or resource (the policy checks scope and expiry). */
  exceptions?: unknown[];
  /** The stored approval named by context.approval_id (absent when unknown). */
  approval?: unknown;
  /** SHA-256 hex of the canonical JSON of resource.properties.arguments (or of null). */
  arguments_digest?: string;
  /** Only with VERDICT_LEGACY_CLIENT_APPROVALS: a client's context.approval may satisfy TOOL-002/003. */
  legacy_client_approvals?: true;
}

/** One decision handed to `settle`: what was asked, and what the policy answered. */
export interface SettleItem {
  decisionId: string;
  /** The input as evaluated (envelope, caller, now, grants). */
  input: Record<string, unknown>;
  /**
   * The input as the decision record stores it: masked by `system/log/mask` (null when none may be
   * stored). What of the input a grant may show a human (an approval request's arguments).
   */
  recordedInput: unknown;
  caller: Caller;
  result: PolicyResult;
  allow: boolean;
}

/** How `settle` changes one decision (nothing, for most). */
export interface Settlement {
  /** The decision must become the fail-closed deny with this error (an approval could not be used). */
  failClosed?: { code: string; message: string };
  /** The deny asks for a human approval: the pending request to point the agent runtime at. */
  approvalRequest?: { id: string; expires_at: string; status_url: string };
}

/**
 * The PDP-held grants the decision service consults: waivers and human approvals. Optional: without
 * it (no database) no grant is attached.
 */
export interface DecisionGrants {
  /** The grants for one contract-surface input; a promise only when the store must be read. */
  attach(input: Record<string, unknown>): AttachedGrants | undefined | Promise<AttachedGrants | undefined>;
  /**
   * After evaluation, before recording, for the decisions that used an approval or asked for one
   * (the service calls it only then): consumes uses, opens approval requests. One settlement per item.
   */
  settle(items: SettleItem[]): Promise<Settlement[]>;
}

/** True when the decision needs `settle`: it relied on an approval, or a deny asks for one. */
export function needsSettlement(result: PolicyResult, allow: boolean): boolean {
  if (allow) return (result.approvals?.length ?? 0) > 0;
  return result.obligations.some((o) => o.type === 'human_approval');
}
