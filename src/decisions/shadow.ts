import type { PolicyEngine } from '../engine/engine.ts';
import { evaluateDecision } from './evaluate.ts';
import type { DecisionSurface } from './types.ts';

/**
 * What the shadow revision decided on a decision's input, stored in the record's `shadow` column
 * (and so chained and exported with it). It never changes the answer.
 */
export interface ShadowResult {
  digest: string;
  revision: string;
  allow: boolean;
  /** The controls the shadow revision reported as violated. */
  controls: string[];
  /** Why the shadow evaluation failed closed (an unknown entrypoint, an error), else null. */
  error: { code: string; message: string } | null;
  eval_micros: number;
}

/** Which way a shadow revision would flip a decision. */
export type ShadowDirection = 'allow_to_deny' | 'deny_to_allow';

/** Where a divergence between the active and the shadow revision is reported (a metric). */
export type ShadowObserver = (divergence: { entrypoint: string; direction: ShadowDirection }) => void;

/** The shadow revision, right now (null when none is set). Swapped atomically by src/bundles. */
export interface ShadowPolicy {
  current(): PolicyEngine | null;
}

/**
 * Evaluates the shadow revision on the same input through the same evaluation core as the decision
 * itself, so a shadow result means exactly what the decision would have been on that revision.
 */
export function evaluateShadow(
  engine: PolicyEngine,
  surface: DecisionSurface,
  entrypoint: string,
  inputJson: string | undefined,
): ShadowResult {
  const checked = evaluateDecision(engine, surface, entrypoint, inputJson);
  return {
    digest: engine.ref.digest,
    revision: engine.ref.revision,
    allow: checked.allow,
    controls: checked.result.violations.map((violation) => violation.control),
    error: checked.error,
    eval_micros: checked.evalMicros,
  };
}

/** The direction of a flip, or null when the shadow agrees with the decision. */
export function divergence(allow: boolean, shadow: ShadowResult): ShadowDirection | null {
  if (allow === shadow.allow) return null;
  return allow ? 'allow_to_deny' : 'deny_to_allow';
}
