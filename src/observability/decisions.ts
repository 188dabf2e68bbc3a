import { AsyncLocalStorage } from 'node:async_hooks';
import type { DecisionObserver } from '../decisions/service.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import type { Metrics } from './metrics.ts';

/** What the request log line learns while a request runs (filled by the decision observer). */
export interface RequestTrace {
  decisionIds: string[];
}

/**
 * The request being served, if any. The HTTP layer enters it once per request; the decision
 * observer appends to it, so routes need no logging code of their own.
 */
export const requestTrace = new AsyncLocalStorage<RequestTrace>();

/** Label value for anything outside a bounded set. */
export const OTHER = 'other';

// A control id is an identifier from the policy library (TOOL-002, REL-010, DATA_RESIDENCY-1...):
// anything else a policy writes there is folded into "other" so the label set stays bounded.
const CONTROL_ID = /^[A-Za-z][A-Za-z0-9_.:-]{0,47}$/;
const MAX_CONTROLS = 500;

/** Where evaluation errors are logged. */
export interface EvaluationErrorLog {
  warn(fields: object, message: string): void;
}

/** At most one evaluation-error line per entrypoint in this window; the rest are counted in it. */
const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * The one place decision metrics are fed from: the decision service's observer. Labels are bounded:
 * `entrypoint` only takes entrypoints of the active bundle (a data-API path below a rule or an
 * unknown path becomes "other"); `control` is the first violated control id, or "none".
 */
export function observeDecisions(
  metrics: Metrics,
  policy: ActivePolicy,
  log?: EvaluationErrorLog,
  now: () => number = Date.now,
): DecisionObserver {
  // NOTE: a broken policy fails every decision; the log gets one line per entrypoint per window
  // (with how many were suppressed), the counter gets every one.
  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  const logEvaluationError = (entrypoint: string, decisionId: string, message: string) => {
    const seen = lastLogged.get(entrypoint);
    const t = now();
    if (seen && t - seen.at < ERROR_LOG_INTERVAL_MS) {
      seen.suppressed += 1;
      return;
    }
    log?.warn(
      { entrypoint, decision_id: decisionId, err: message, suppressed: seen?.suppressed ?? 0 },
      'policy evaluation error',
    );
    lastLogged.set(entrypoint, { at: t, suppressed: 0 });
  };
  const controlsSeen = new Set<string>();
  const controlLabel = (control: unknown): string => {
    if (typeof control !== 'string' || !CONTROL_ID.test(control)) return OTHER;
    if (controlsSeen.has(control)) return control;
    if (controlsSeen.size >= MAX_CONTROLS) return OTHER;
    controlsSeen.add(control);
    return control;
  };
  return (decision, record, { recorded, seconds }) => {
    const entrypoint = policy.current().hasEntrypoint(record.entrypoint) ? record.entrypoint : OTHER;
    // An OPA data-API path with no value (no such rule, or below one) is undefined, as OPA answers
    // it (200, no result): not a policy error.
    const undefinedPath =
      record.surface === 'data' && (!decision.defined || decision.error?.code === 'unknown_entrypoint');
    const outcome =
      !recorded || (decision.error && !undefinedPath)
        ? 'error'
        : undefinedPath
          ? 'undefined'
          : decision.allow
            ? 'allow'
            : 'deny';
    const first = decision.result.violations[0];
    const control = first ? controlLabel(first.control) : 'none';
    metrics.decisions.inc({ entrypoint, outcome, control });
    metrics.decisionDuration.observe({ entrypoint }, seconds);
    metrics.evaluationDuration.observe({ entrypoint }, record.evalMicros / 1e6);
    if (decision.error?.code === 'evaluation_error') {
      metrics.evaluationErrors.inc({ entrypoint });
      logEvaluationError(entrypoint, decision.id, decision.error.message);
    }
    requestTrace.getStore()?.decisionIds.push(decision.id);
  };
}
