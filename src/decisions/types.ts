import type { RevisionRef } from '../engine/engine.ts';
/**
 * Who asked for a decision, as established from the verified bearer token. Never taken from a
 * request body.
 */
export interface Caller {
  sub: string;
  iss: string | null;
  clientId: string | null;
  scopes: string[];
  /** The token's `principal_type` claim when it has one (`human` may approve agent actions). */
  principalType?: string;
}

/** One violated control in a policy result (the result contract of DESIGN.md). */
export interface Violation {
  control: string;
  message: string;
  severity?: string;
  /** The id of the waiver that waived this violation (it stays listed, marked). */
  waived_by?: string;
  [key: string]: unknown;
}

/** Something the caller must do before acting on an allow (or to turn a deny into an allow). */
export interface Obligation {
  type: string;
  [key: string]: unknown;
}

/** The validated result of a contract entrypoint (native and AuthZEN APIs). */
export interface PolicyResult {
  allow: boolean;
  violations: Violation[];
  obligations: Obligation[];
  exceptions: string[];
  /** The ids of the PDP-held human approvals the decision relied on (only when there are some). */
  approvals?: string[];
  /**
   * Set by the decision service (not the policy) on a deny that asks for a human approval: the one
   * pending approval request for this agent, user, tool and arguments.
   */
  approval_request?: ApprovalRequestRef;
}

/** Where an agent runtime finds the approval request a deny created (or reused). */
export interface ApprovalRequestRef {
  id: string;
  expires_at: string;
  status_url: string;
}

/** Which API surface a decision came through; recorded with it. */
export type DecisionSurface = 'native' | 'data' | 'authzen';

export type { RevisionRef } from '../engine/engine.ts';

/**
 * One row of the decision log. Every decision on every surface produces exactly one, built by
 * `decide()` and handed to a `DecisionRecorder`.
 */
export interface DecisionRecord {
  /** UUIDv7: time-ordered. */
  id: string;
  /** ISO-8601 timestamp: when the decision was made (the `now` the policy saw). */
  decidedAt: string;
  surface: DecisionSurface;
  caller: Caller;
  entrypoint: string;
  bundle: RevisionRef;
  subjectType: string | null;
  subjectId: string | null;
  actionName: string | null;
  resourceType: string | null;
  resourceId: string | null;
  allow: boolean;
  /** For contract entrypoints the PolicyResult; for /v1/data the raw result (undefined → null). */
  result: unknown;
  /** The policy input after masking. */
  input: unknown;
  /**
   * The RFC 8785 canonical JSON of `input` when the service already has it (the input was not
   * masked, so it is the text that was digested); the chain then reuses it instead of serialising
   * the input again. Never set when it would differ from `input`.
   */
  inputJson?: string;
  /** SHA-256 hex of the canonical JSON of the *unmasked* input. */
  inputSha256: string;
  exceptions: string[];
  /** Result of the shadow revision, when one is set (later). */
  shadow: unknown;
  evalMicros: number;
  traceId: string | null;
  /** Why the decision failed closed, when it did: a stable code and a short message. */
  error: { code: string; message: string } | null;
}

/**
 * Where decision records go. `record` resolves once the records are durable as the configured
 * audit mode promises (in `sync` mode: committed to the database or fsync'd to the spool); it
 * rejects when they cannot be kept, and then the decisions must fail closed.
 */
export interface DecisionRecorder {
  record(records: DecisionRecord[]): Promise<void>;
  /** Flushes everything pending and releases resources. */
  close(): Promise<void>;
}
