/**
 * Verdict's v1 wire types, as the client sends and reads them. They are plain interfaces so that the
 * package has no runtime dependency; test/sdk/wire-types.ts checks them against the server's TypeBox
 * schemas (src/http/schemas.ts and the route modules) with `Static`, so a server change that breaks
 * the client fails `tsc`.
 */

/** A subject or a resource: `type` and `id`, optional `properties`. */
export interface Entity {
  type: string;
  id: string;
  properties?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The action: `name`, optional `properties`. */
export interface Action {
  name: string;
  properties?: Record<string, unknown>;
  [key: string]: unknown;
}

/** `POST /v1/decisions`: the envelope without caller and now (the server adds them). */
export interface DecisionRequest {
  subject: Entity;
  action: Action;
  resource: Entity;
  context?: Record<string, unknown>;
  /** An entrypoint of the active bundle; default the server's `verdict/decision`. */
  policy?: string;
}

/** One batch item or the batch defaults: each part may come from the defaults. */
export interface BatchItem {
  subject?: Record<string, unknown>;
  action?: Record<string, unknown>;
  resource?: Record<string, unknown>;
  context?: Record<string, unknown>;
  policy?: string;
  [key: string]: unknown;
}

/** A violated control. */
export interface Violation {
  control: string;
  message: string;
  severity?: string;
  [key: string]: unknown;
}

/** Something the caller must do (`human_approval`, `redact`, …). */
export interface Obligation {
  type: string;
  [key: string]: unknown;
}

/** A pending human approval that a denied decision asks for (the approvals API). */
export interface ApprovalRequest {
  id: string;
  expires_at: string;
  status_url: string;
}

/** The answer of `POST /v1/decisions`, and each result of a batch. */
export interface DecisionResponse {
  decision_id: string;
  allow: boolean;
  violations: Violation[];
  obligations: Obligation[];
  exceptions: string[];
  /** The PDP-held human approvals the decision relied on. */
  approvals?: string[];
  /** On a deny that asks for a human approval: the pending request. */
  approval_request?: ApprovalRequest;
  policy: { entrypoint: string; revision: string; digest: string };
  evaluated_at: string;
}

/** An RFC 9457 problem, as every Verdict error is. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  errors?: { path: string; message: string }[];
  [key: string]: unknown;
}

/** AuthZEN 1.0 evaluation request. */
export interface EvaluationRequest {
  subject: Record<string, unknown>;
  action: Record<string, unknown>;
  resource: Record<string, unknown>;
  context?: Record<string, unknown>;
  [key: string]: unknown;
}

/** AuthZEN 1.0 evaluations (batch) request. */
export interface EvaluationsRequest {
  subject?: Record<string, unknown>;
  action?: Record<string, unknown>;
  resource?: Record<string, unknown>;
  context?: Record<string, unknown>;
  evaluations?: unknown[];
  options?: {
    evaluations_semantic?: 'execute_all' | 'deny_on_first_deny' | 'permit_on_first_permit';
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** AuthZEN 1.0 evaluation answer. */
export interface EvaluationResponse {
  decision: boolean;
  context?: Record<string, unknown>;
}

/** AuthZEN 1.0 search request (subject, resource or action search). */
export interface SearchRequest {
  subject?: Record<string, unknown>;
  action?: Record<string, unknown>;
  resource?: Record<string, unknown>;
  context?: Record<string, unknown>;
  page?: { limit?: number; token?: string };
  [key: string]: unknown;
}

/** AuthZEN 1.0 search answer. */
export interface SearchResponse {
  results: Record<string, unknown>[];
  page?: { next_token?: string; count?: number; [key: string]: unknown };
  context?: Record<string, unknown>;
}

/** Filters of the audit search and export (`GET /v1/decisions`, `GET /v1/audit/export`). */
export interface AuditFilter {
  from?: string;
  to?: string;
  caller_sub?: string;
  subject_type?: string;
  subject_id?: string;
  action?: string;
  resource_type?: string;
  resource_id?: string;
  allow?: 'true' | 'false';
  entrypoint?: string;
  revision?: string;
  control?: string;
}

/** `GET /v1/decisions` query. */
export interface DecisionSearchQuery extends AuditFilter {
  limit?: string;
  cursor?: string;
}

/** One recorded decision (`DecisionRecordV1`). */
export interface DecisionRecord {
  id: string;
  decided_at: string;
  surface: string;
  caller_sub: string;
  caller: unknown;
  entrypoint: string;
  bundle_revision: string;
  bundle_digest: string;
  subject_type: string | null;
  subject_id: string | null;
  action_name: string | null;
  resource_type: string | null;
  resource_id: string | null;
  allow: boolean;
  violated_controls: string[];
  result: unknown;
  input: unknown;
  input_sha256: string;
  exceptions: string[];
  shadow: unknown;
  eval_micros: number;
  trace_id: string | null;
  error: unknown;
  writer_id: string;
  seq: number;
  prev_hash: string;
  hash: string;
}

/** A page of the audit search. */
export interface DecisionPage {
  items: DecisionRecord[];
  next_cursor: string | null;
  has_more: boolean;
}

/** One stored policy revision (`BundleRevisionV1`). */
export interface BundleRevision {
  digest: string;
  revision: string;
  entrypoints: string[];
  size: number;
  signed: boolean;
  uploaded_by: string;
  uploaded_at: string;
  state: 'active' | 'shadow' | 'inactive';
}

/** The fleet's desired bundle state (`BundlesStateV1`). */
export interface BundlesState {
  version: number;
  active: string | null;
  active_since: string | null;
  shadow: string | null;
  shadow_since: string | null;
  updated_by: string;
  updated_at: string;
}

/** The answer of an activation, a shadow change or a rollback. */
export interface BundleChange {
  changed: boolean;
  state: BundlesState;
}

/** `GET /v1/bundles/status`: the desired state and every live replica. */
export interface BundlesStatus {
  desired: BundlesState;
  replicas: Record<string, unknown>[];
}

/** One chained policy event (`PolicyEventV1`). */
export interface PolicyEvent {
  id: string;
  occurred_at: string;
  action: string;
  actor: string;
  subject: string | null;
  from_digest: string | null;
  to_digest: string | null;
  reason: string | null;
  payload: Record<string, unknown>;
  writer_id: string;
  seq: number;
  prev_hash: string;
  hash: string;
}

/** `POST /v1/exceptions`: a waiver request (`ExceptionRequestV1`). */
export interface ExceptionRequest {
  control: string;
  subject_id?: string;
  resource_id?: string;
  action?: string;
  reason: string;
  compensating_controls?: string[];
  ticket?: { system: string; key: string; url?: string };
  /** RFC 3339 date-time. */
  expires_at: string;
}

/** `GET /v1/exceptions` query (`ExceptionListQueryV1`). */
export interface ExceptionListQuery {
  state?: 'pending' | 'active' | 'expired' | 'revoked' | 'rejected';
  control?: string;
  subject_id?: string;
  resource_id?: string;
  /** ISO-8601 duration, e.g. `P7D`. */
  expiring_within?: string;
  limit?: string;
}

/** A waiver, as the exceptions API answers it. */
export interface Waiver {
  id: string;
  state: string;
  control?: string;
  severity?: string;
  subject_id?: string | null;
  resource_id?: string | null;
  expires_at?: string;
  approvers_required?: number;
  approvals?: { by: string; at: string; reason?: string | null }[];
  [key: string]: unknown;
}

/** A human approval request of an agent action, as the approvals API answers it. */
export interface Approval {
  id: string;
  /** `pending`, `granted`, `denied` or `expired` (a lapsed request or approval window). */
  state: 'pending' | 'granted' | 'denied' | 'expired' | (string & {});
  agent?: string;
  on_behalf_of?: string | null;
  tool?: string;
  /** SHA-256 hex of the RFC 8785 canonical JSON of the call's arguments: what the approval binds. */
  arguments_digest?: string;
  /**
   * The call's arguments, masked as the decision record's input is masked (the bundle's
   * `system/log/mask`): masked values appear as the mask writes them (an erased key is absent, an
   * upserted one shows the mask's value). Null when the call had none or the mask removed them.
   * Sent only to callers with `approvals:grant`; absent for a status read with `decisions:evaluate`.
   */
  arguments?: unknown;
  controls?: string[];
  reasons?: string[];
  decision_id?: string | null;
  requested_at?: string;
  expires_at?: string;
  decided_by?: string | null;
  decided_at?: string | null;
  decided_reason?: string | null;
  [key: string]: unknown;
}
