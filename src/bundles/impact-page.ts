import type { Cursor } from '../audit/queries.ts';
import { canonicalJson, inputDigest } from '../decisions/canonical-json.ts';
import { evaluateDecision, isContractSurface } from '../decisions/evaluate.ts';
import type { PolicyEngine } from '../engine/engine.ts';
import { isObject } from '../json/values.ts';

/** One recorded decision as impact analysis reads it (decision-log.ts `impactPageSql`). */
export interface ImpactRecord {
  id: string;
  decided_at: string;
  surface: string;
  entrypoint: string;
  allow: boolean;
  violated_controls: string[];
  /**
   * The stored input as a value (null: the data API was asked without input, or the record is
   * stored as json and comes as `input_text`).
   */
  input: unknown;
  /**
   * The stored input's JSON text as stored (records written since migration 0015: the canonical
   * text the service made), or null. When its digest is the recorded one it is evaluated as it is:
   * no parse and no canonical serialisation again.
   */
  input_text?: string | null;
  input_sha256: string;
  /** Why the recorded decision failed closed, if it did. */
  error?: { code?: unknown } | null;
}

/** A page as decision-log.ts `impactPageSql` returns it: one row. */
export interface ImpactPageRow {
  /** Records read before the byte budget cut the page. */
  scanned: number;
  count: number;
  last_decided_at: string | null;
  last_id: string | null;
  /** The kept records as one JSON text (an array of `ImpactRecord`). */
  records: string;
}

/**
 * The cursor of the page after `page` (read with at most `pageSize` records), or null when the
 * window ended: no records, or fewer than a page and the byte budget cut none of them.
 */
export function nextPageCursor(page: ImpactPageRow | undefined, pageSize: number): Cursor | null {
  if (!page || page.count === 0 || page.last_decided_at === null || page.last_id === null) return null;
  if (page.scanned < pageSize && page.count === page.scanned) return null;
  return { decidedAt: page.last_decided_at, id: page.last_id };
}

export type FlipDirection = 'allow_to_deny' | 'deny_to_allow';

/** A recorded decision the candidate would have answered the other way. */
export interface ImpactFlip {
  id: string;
  direction: FlipDirection;
  /**
   * allow_to_deny: the controls the candidate raised; deny_to_allow: the recorded controls it no
   * longer raises (the shadow report's rule).
   */
  controls: string[];
  /** The stored input was masked: the candidate saw less than the recorded decision did. */
  masked: boolean;
}

/** What a page of records came to on the candidate. */
export interface ImpactPageOutcome {
  /** Records read (evaluated + skipped). */
  read: number;
  evaluated: number;
  unchanged: number;
  /** Records not evaluated, by reason. */
  skipped: Record<string, number>;
  /** Evaluated records whose stored input was masked (flipped or not). */
  masked: number;
  flips: ImpactFlip[];
  /** Evaluations that failed closed on the candidate, by error code: a message and sample ids. */
  errors: Record<string, { message: string; count: number; sampleIds: string[] }>;
}

/** How many decision ids a report keeps per direction, control and error. */
export const IMPACT_SAMPLE_IDS = 5;

const EMPTY_INPUT_SHA256 = inputDigest(undefined);

/** Why a record is not evaluated; null when it is. */
function skipReason(record: ImpactRecord, input: unknown): string | null {
  // Denied by the decision service after the policy allowed (the approval it relied on was used up
  // meanwhile): what the candidate would have answered depends on that settlement, not only on
  // the input, so a re-evaluation cannot say it.
  if (record.error?.code === 'approval_unusable') return 'approval_unusable';
  // An AuthZEN search is one record for a whole page of candidates, judged in a loop by the
  // decision service (decideSearch): one evaluation of its input would not be that answer.
  if (isContractSurface(record.surface) && isObject(input) && typeof input.search === 'string') {
    return 'search_page';
  }
  return null;
}

/** The control ids of a contract result's violations. */
function controlsOf(value: unknown): string[] {
  if (!isObject(value) || !Array.isArray(value.violations)) return [];
  const ids = new Set<string>();
  for (const v of value.violations) if (isObject(v) && typeof v.control === 'string') ids.add(v.control);
  return [...ids].sort();
}

/** An outcome with nothing counted yet. */
export function emptyImpactOutcome(): ImpactPageOutcome {
  return { read: 0, evaluated: 0, unchanged: 0, skipped: {}, masked: 0, flips: [], errors: {} };
}

/**
 * Evaluates a page of recorded decisions on the candidate engine, each through the evaluation core
 * (`evaluateDecision`) on its input exactly as stored — with the `caller`, `now` and `grants` the
 * service attached when it decided — and compares with what was recorded. A candidate that errors
 * is the fail-closed deny (control EVAL-ERROR), as it would have been live, and its error is kept.
 * Adds to `outcome` when given (a page evaluated in parts, in order). Runs in a worker thread
 * (impact-worker.ts) or in-process; never throws for a policy's failure.
 */
export function evaluateImpactPage(
  engine: PolicyEngine,
  records: readonly ImpactRecord[],
  outcome: ImpactPageOutcome = emptyImpactOutcome(),
): ImpactPageOutcome {
  outcome.read += records.length;
  for (const record of records) {
    const text = record.input_text ?? null;
    // The stored text is the canonical text of the unmasked input when its digest is the recorded
    // one (the input was not masked): the candidate evaluates it as it is. Otherwise (masked, or
    // text not in canonical form) the value is parsed and made canonical, as for a jsonb record.
    const unmaskedText = text !== null && inputDigest(text) === record.input_sha256 ? text : null;
    const input =
      text === null
        ? record.input
        : unmaskedText === null || isContractSurface(record.surface)
          ? JSON.parse(text)
          : undefined;
    const noInput = text === null && record.input === null && record.input_sha256 === EMPTY_INPUT_SHA256;
    const reason = skipReason(record, input);
    if (reason) {
      outcome.skipped[reason] = (outcome.skipped[reason] ?? 0) + 1;
      continue;
    }
    // Masked exactly when the stored input's digest is not the recorded digest of the input the
    // policy saw (the record keeps the digest of the unmasked input; replay's rule).
    // The canonical text serves twice: the digest, and the input the candidate evaluates.
    const inputJson = unmaskedText ?? (noInput ? undefined : canonicalJson(input));
    const masked = unmaskedText === null && !noInput && inputDigest(inputJson) !== record.input_sha256;
    const evaluation = evaluateDecision(engine, record.surface, record.entrypoint, inputJson);
    outcome.evaluated += 1;
    if (masked) outcome.masked += 1;
    if (evaluation.error) {
      const { code, message } = evaluation.error;
      const seen = outcome.errors[code] ?? { message, count: 0, sampleIds: [] };
      outcome.errors[code] = seen;
      seen.count += 1;
      if (seen.sampleIds.length < IMPACT_SAMPLE_IDS) seen.sampleIds.push(record.id);
    }
    if (evaluation.allow === record.allow) {
      outcome.unchanged += 1;
      continue;
    }
    if (record.allow) {
      const raised = isContractSurface(record.surface) ? controlsOf(evaluation.result) : [];
      outcome.flips.push({ id: record.id, direction: 'allow_to_deny', controls: raised, masked });
    } else {
      const still = new Set(isContractSurface(record.surface) ? controlsOf(evaluation.result) : []);
      const dropped = [...new Set(record.violated_controls)].filter((c) => !still.has(c)).sort();
      outcome.flips.push({ id: record.id, direction: 'deny_to_allow', controls: dropped, masked });
    }
  }
  return outcome;
}
