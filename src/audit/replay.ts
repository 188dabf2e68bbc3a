import { canonicalJson, inputDigest } from '../decisions/canonical-json.ts';
import { evaluateDecision, isContractSurface } from '../decisions/evaluate.ts';
import { replaySearch, searchOfRecord } from '../decisions/search.ts';
import type { ParsedBundle } from '../engine/bundle.ts';
import type { ActivePolicy } from '../engine/engine.ts';
import { PolicyEngine } from '../engine/engine.ts';
import { isObject } from '../json/values.ts';
import type { DecisionLogReader, StoredDecision } from './queries.ts';

/**
 * Where replay finds the bundle of a stored revision (src/bundles' RevisionStore). An interface
 * here, so that audit does not import bundles (bundles records its events in audit's chained log).
 */
export interface RevisionSource {
  get(digest: string): Promise<ParsedBundle | null>;
}

/** One re-evaluation of a recorded decision on one policy revision. */
export interface ReplayOutcome {
  revision: string | null;
  digest: string;
  /** False when the revision's bundle is not stored (then nothing below was evaluated). */
  available: boolean;
  allow: boolean | null;
  /** Contract surfaces: the validated result (fail-closed deny on error). Data surface: the raw value. */
  result: unknown;
  error: { code: string; message: string } | null;
  /** Whether the outcome equals the recorded result; null when it could not be evaluated. */
  matches: boolean | null;
}

/** What replaying a recorded decision found. */
export interface ReplayReport {
  decisionId: string;
  surface: string;
  entrypoint: string;
  recorded: { allow: boolean; result: unknown; revision: string; digest: string };
  /**
   * True when the stored input differs from the input the policy saw (masking removed or replaced
   * something): the replays then ran on less than the original input and a mismatch may be the
   * mask's doing, not the policy's. Known exactly: the record keeps the digest of the unmasked input.
   */
  masked: boolean;
  /** On the revision the decision was made on. */
  stored: ReplayOutcome;
  /** On the revision active now. */
  active: ReplayOutcome;
}

const EMPTY_INPUT_SHA256 = inputDigest(undefined);
const ENGINE_CACHE_LIMIT = 8;

/** Canonical JSON of a contract result, with its lists in a canonical order (policies emit sets). */
function contractKey(result: unknown): string {
  const r = isObject(result) ? result : {};
  const sorted = (list: unknown) =>
    (Array.isArray(list) ? list : [])
      .map((item) => canonicalJson(item) ?? 'null')
      .sort()
      .join(',');
  return JSON.stringify([
    r.allow === true,
    sorted(r.violations),
    sorted(r.obligations),
    sorted(r.exceptions),
  ]);
}

/**
 * Re-evaluates recorded decisions. Replay is a read: it evaluates engines directly and never goes
 * through the decision service, so nothing is recorded.
 */
export class DecisionReplayer {
  private readonly log: DecisionLogReader;
  private readonly revisions: RevisionSource;
  private readonly policy: ActivePolicy;
  private readonly engines = new Map<string, PolicyEngine>();

  constructor(deps: { log: DecisionLogReader; revisions: RevisionSource; policy: ActivePolicy }) {
    this.log = deps.log;
    this.revisions = deps.revisions;
    this.policy = deps.policy;
  }

  /** Null when there is no decision with this id. */
  async replay(id: string): Promise<ReplayReport | null> {
    const record = await this.log.get(id);
    if (!record) return null;
    return this.replayRecord(record);
  }

  async replayRecord(record: StoredDecision): Promise<ReplayReport> {
    // NOTE: take the active engine once, so that an activation during the replay cannot mix revisions.
    const active = this.policy.current();
    const storedEngine = await this.engineFor(record.bundle_digest, active);
    return {
      decisionId: record.id,
      surface: record.surface,
      entrypoint: record.entrypoint,
      recorded: {
        allow: record.allow,
        result: record.result,
        revision: record.bundle_revision,
        digest: record.bundle_digest,
      },
      masked: this.wasMasked(record),
      stored: storedEngine
        ? this.evaluate(storedEngine, record)
        : {
            revision: record.bundle_revision,
            digest: record.bundle_digest,
            available: false,
            allow: null,
            result: null,
            error: { code: 'revision_unavailable', message: 'the policy revision is not stored' },
            matches: null,
          },
      active: this.evaluate(active, record),
    };
  }

  private wasMasked(record: StoredDecision): boolean {
    if (record.input === null && record.input_sha256 === EMPTY_INPUT_SHA256) return false;
    return inputDigest(canonicalJson(record.input)) !== record.input_sha256;
  }

  private async engineFor(digest: string, active: PolicyEngine): Promise<PolicyEngine | null> {
    if (active.ref.digest === digest) return active;
    const cached = this.engines.get(digest);
    if (cached) return cached;
    const bundle = await this.revisions.get(digest);
    if (!bundle) return null;
    // The engine's module cache makes a revision seen before cheap to load again. A revision stored
    // before builtins were checked at upload replays as it was decided: the call fails, not the load.
    const engine = PolicyEngine.fromBundle(bundle, { refuseUnsupported: false });
    if (this.engines.size >= ENGINE_CACHE_LIMIT) {
      const oldest = this.engines.keys().next().value;
      if (oldest !== undefined) this.engines.delete(oldest);
    }
    this.engines.set(digest, engine);
    return engine;
  }

  private evaluate(engine: PolicyEngine, record: StoredDecision): ReplayOutcome {
    return replayOn(engine, record);
  }
}

/**
 * Re-evaluates one stored record on `engine` and compares with what was recorded (the replay
 * comparison). Needs no database: offline evidence verification (src/evidence) uses it too.
 */
export function replayOn(engine: PolicyEngine, record: StoredDecision): ReplayOutcome {
  const contract = isContractSurface(record.surface);
  const base = { revision: engine.ref.revision, digest: engine.ref.digest, available: true };
  if (contract && !engine.hasEntrypoint(record.entrypoint)) {
    return {
      ...base,
      allow: null,
      result: null,
      error: {
        code: 'unknown_entrypoint',
        message: `entrypoint ${record.entrypoint} is not in this revision`,
      },
      matches: false,
    };
  }
  // An AuthZEN search is one record for a whole page: replay the page, not one evaluation.
  const search = contract ? searchOfRecord(record) : null;
  if (search) return { ...base, ...replaySearch(engine, record.entrypoint, search, record.result) };
  // A data-surface request without input was stored as null with the digest of nothing.
  const noInput = record.input === null && record.input_sha256 === EMPTY_INPUT_SHA256;
  const inputJson = noInput ? undefined : JSON.stringify(record.input);
  const evaluation = evaluateDecision(engine, record.surface, record.entrypoint, inputJson);
  if (!contract) {
    const value = evaluation.value ?? null;
    return {
      ...base,
      allow: evaluation.allow,
      result: value,
      error: evaluation.error,
      matches: canonicalJson(value) === canonicalJson(record.result ?? null),
    };
  }
  const { result, allow, error } = evaluation;
  return {
    ...base,
    allow,
    result,
    error,
    matches: contractKey(result) === contractKey(record.result) && allow === record.allow,
  };
}
