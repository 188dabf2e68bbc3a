export {
  type ApiRequest,
  type ApprovalWait,
  type CallOptions,
  type Decided,
  type DecisionResult,
  type FailedClosed,
  type FailureKind,
  failedClosed,
  PDP_REJECTED,
  PDP_UNAVAILABLE,
  type TokenSource,
  VerdictClient,
  type VerdictClientOptions,
  VerdictError,
  type WaitForApprovalOptions,
} from './client.ts';
// Guardrails (issue 25): applying `redact` obligations to content.
export { applyRedactions, type Content, type RedactionSpan, redactionSpans } from './redact.ts';
export type * from './wire.ts';
