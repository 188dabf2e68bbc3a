import { performance } from 'node:perf_hooks';
import type { ActivePolicy, PolicyEngine } from '../engine/engine.ts';
import type { ContentScanner } from '../guardrails/scan.ts';
import { isObject } from '../json/values.ts';
import { canonicalJson, inputDigest } from './canonical-json.ts';
import {
  ContentScanners,
  isContentInput,
  policyReadsText,
  type ScannedInput,
  scanContentInput,
} from './content.ts';
import { epochNanos } from './epoch-nanos.ts';
import { evaluateDecision, isContractSurface } from './evaluate.ts';
import { type AttachedGrants, type DecisionGrants, needsSettlement, type Settlement } from './grants.ts';
import { decisionId } from './ids.ts';
import { applyMask, maskRules } from './mask.ts';
import { failClosed } from './result.ts';
import { divergence, evaluateShadow, type ShadowObserver, type ShadowPolicy } from './shadow.ts';
import type {
  Caller,
  DecisionRecord,
  DecisionRecorder,
  DecisionSurface,
  PolicyResult,
  RevisionRef,
} from './types.ts';

/** The entrypoint OPA's decision-log masking convention uses. */
export const MASK_ENTRYPOINT = 'system/log/mask';

/** One decision to make. */
export interface DecisionQuery {
  surface: DecisionSurface;
  entrypoint: string;
  /**
   * For contract surfaces (native, AuthZEN): the envelope without caller and now — the service adds
   * both. For the data surface: the policy input verbatim (undefined when the request had none).
   */
  input: unknown;
  caller: Caller;
  traceId: string | null;
}

/** A decision made and recorded. */
export interface Decision {
  id: string;
  decidedAt: string;
  /** For contract surfaces the validated result (a fail-closed deny on any error). */
  result: PolicyResult;
  /** The entrypoint's raw value (data surface); undefined when the policy produced none. */
  value: unknown;
  defined: boolean;
  allow: boolean;
  revision: { entrypoint: string; revision: string; digest: string };
  error: { code: string; message: string } | null;
}

/**
 * Watches every decision the service makes (metrics, request logs). Called once per decision after
 * recording settled: `recorded` is false when the record could not be kept (the decision then
 * failed closed). `seconds` is the whole decide call: evaluation plus the audit commit wait.
 * Must not throw and must be cheap: it runs on the request path.
 */
export type DecisionObserver = (
  decision: Decision,
  record: DecisionRecord,
  outcome: { recorded: boolean; seconds: number },
) => void;

/**
 * What a search evaluates its candidates with: the decision core (same entrypoint, envelope, caller,
 * `now` and result contract as a decision) on one pinned revision, recording nothing per candidate.
 */
export interface CandidateEvaluator {
  revision: RevisionRef;
  /** The revision's bundle data (where the entity catalog lives). */
  data: unknown;
  /** True when the contract entrypoint allows this envelope; any error or contract break is false. */
  allows(envelope: Record<string, unknown>): boolean;
}

/** What one search returned, as it is recorded: the single record of the whole search. */
export interface SearchSummary {
  /** True when the search returned at least one entity. */
  allow: boolean;
  /** Stored as the record's result (the kind of search and the ids returned). */
  result: Record<string, unknown>;
  /** Candidates evaluated for this page. */
  evaluated: number;
}

/** The decision could not be recorded, so it must not be answered (fail closed: unavailable). */
export class DecisionUnrecordedError extends Error {
  override name = 'DecisionUnrecordedError';
  readonly code = 'audit_unavailable';
  readonly kind = 'unavailable';
  readonly retryAfterSeconds = 1;
  constructor(options?: ErrorOptions) {
    super('the decision could not be recorded; denied (fail closed)', options);
  }
}

/** The named entrypoint does not exist in the active bundle (a client error). */
export class UnknownEntrypointError extends Error {
  override name = 'UnknownEntrypointError';
  readonly code = 'unknown_entrypoint';
  readonly kind = 'not_found';
  readonly entrypoint: string;
  constructor(entrypoint: string) {
    super(`entrypoint ${entrypoint} is not in the active policy bundle`);
    this.entrypoint = entrypoint;
  }
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function keysOf(input: unknown) {
  const subject = isObject(input) && isObject(input.subject) ? input.subject : {};
  const action = isObject(input) && isObject(input.action) ? input.action : {};
  const resource = isObject(input) && isObject(input.resource) ? input.resource : {};
  return {
    subjectType: stringOrNull(subject.type),
    subjectId: stringOrNull(subject.id),
    actionName: stringOrNull(action.name),
    resourceType: stringOrNull(resource.type),
    resourceId: stringOrNull(resource.id),
  };
}

function withServerFields(
  envelope: Record<string, unknown>,
  caller: Caller,
  now: string,
  nowMs: number,
  grants: AttachedGrants | undefined,
): Record<string, unknown> {
  // Guardrails (issue 25): a client-sent `findings` or `content_sha256` is dropped like `grants`.
  const {
    grants: _clientGrants,
    findings: _clientFindings,
    content_sha256: _clientDigest,
    now_ns: _clientNowNs,
    ...rest
  } = envelope;
  // NOTE: `now_ns` is `now` in nanoseconds, server-side like `now`: the policies read it instead of
  // parsing `now` (policies/lib/lib.rego), a builtin round trip saved on every decision.
  const input: Record<string, unknown> = {
    ...rest,
    caller,
    now,
    now_ns: epochNanos(nowMs),
  };
  if (grants !== undefined) input.grants = grants;
  return input;
}

/**
 * The one place where decisions are made: evaluate → record → respond. Every API surface calls it,
 * so every decision is recorded the same way.
 */
export class DecisionService {
  private readonly policy: ActivePolicy;
  private readonly recorder: DecisionRecorder;
  private readonly clock: () => Date;
  private readonly onDecision: DecisionObserver | undefined;
  private readonly shadow: ShadowPolicy | undefined;
  private readonly onShadowDivergence: ShadowObserver | undefined;
  private readonly grants: DecisionGrants | undefined;
  private readonly content: ContentScanner | ContentScanners;

  constructor(deps: {
    policy: ActivePolicy;
    recorder: DecisionRecorder;
    clock?: () => Date;
    onDecision?: DecisionObserver;
    /** The shadow revision evaluated beside the active one (src/bundles); none when absent. */
    shadow?: ShadowPolicy;
    onShadowDivergence?: ShadowObserver;
    /** PDP-held waivers and approvals (src/grants/stored-grants.ts); absent without a database. */
    grants?: DecisionGrants;
    /**
     * The detectors run on content actions (src/guardrails); default: every detector, national
     * identifiers of the regions the active bundle's data names (src/decisions/content.ts).
     */
    content?: ContentScanner;
  }) {
    this.policy = deps.policy;
    this.recorder = deps.recorder;
    this.clock = deps.clock ?? (() => new Date());
    this.onDecision = deps.onDecision;
    this.shadow = deps.shadow;
    this.onShadowDivergence = deps.onShadowDivergence;
    this.grants = deps.grants;
    this.content = deps.content ?? new ContentScanners();
  }

  /** True when the active bundle has the entrypoint (so a route can answer 404 before deciding). */
  hasEntrypoint(entrypoint: string): boolean {
    return this.policy.current().hasEntrypoint(entrypoint);
  }

  decide(query: DecisionQuery): Promise<Decision> {
    return this.decideMany([query]).then((decisions) => decisions[0]!);
  }

  /**
   * Decides every query on the same policy revision and records them together (one enqueue), so a
   * batch costs one group-commit wait. Throws DecisionUnrecordedError when recording fails: no
   * decision of the batch may then be answered.
   */
  async decideMany(
    queries: DecisionQuery[],
    options: {
      /**
       * Short-circuit (AuthZEN `deny_on_first_deny` / `permit_on_first_permit`): stop after the first
       * decision for which this is true. The queries after it are neither evaluated nor recorded, and
       * the returned list is shorter than `queries`.
       */
      stopAfter?: (decision: Decision) => boolean;
    } = {},
  ): Promise<Decision[]> {
    // NOTE: take the engine once, so that a hot swap mid-batch cannot split a batch across revisions.
    const engine = this.policy.current();
    const shadow = this.shadow?.current() ?? null;
    const started = performance.now();
    const decisions: Decision[] = [];
    const records: DecisionRecord[] = [];
    const inputs: unknown[] = [];
    // NOTE: no promise unless a query cites something the store must read (an approval id): most
    // decisions attach their waivers from the replica's cache synchronously.
    let attached = this.grants ? this.attachGrants(this.grants, queries) : undefined;
    if (attached instanceof Promise) attached = await attached;
    for (let i = 0; i < queries.length; i++) {
      const { decision, record, input } = this.evaluate(engine, shadow, queries[i]!, attached?.[i]);
      decisions.push(decision);
      records.push(record);
      inputs.push(input);
      if (options.stopAfter?.(decision)) break;
    }
    if (records.length === 0) return decisions;
    if (this.grants) {
      const indexes = this.toSettle(queries, decisions, inputs);
      if (indexes.length > 0)
        await this.settleGrants(this.grants, indexes, queries, decisions, records, inputs);
    }
    await this.keep(decisions, records, started);
    return decisions;
  }

  /**
   * A search (AuthZEN subject/resource/action search): `search` evaluates its candidates through
   * the evaluator — the decision core on this one revision, none of them recorded — and returns its
   * outcome and summary; the search is then recorded as ONE decision whose input is `query.input`
   * (the search request, masked like any input) and whose result is the summary. Throws
   * DecisionUnrecordedError when that record cannot be kept (nothing may then be answered).
   */
  async decideSearch<T>(
    query: DecisionQuery,
    search: (evaluator: CandidateEvaluator) => { outcome: T; summary: SearchSummary },
  ): Promise<{ decision: Decision; outcome: T }> {
    const engine = this.policy.current();
    if (!engine.hasEntrypoint(query.entrypoint)) throw new UnknownEntrypointError(query.entrypoint);
    const started = performance.now();
    // NOTE: one `now` for every candidate and the record, so that a page is judged at one instant.
    const now = this.clock();
    const evaluator: CandidateEvaluator = {
      revision: engine.ref,
      data: engine.bundle.data,
      allows: (envelope) => this.judge(engine, { ...query, input: envelope }, now).allow,
    };
    const { outcome, summary } = search(evaluator);
    const decidedAt = now.toISOString();
    const input = { ...(query.input as Record<string, unknown>), caller: query.caller, now: decidedAt };
    const inputJson = canonicalJson(input);
    const id = decisionId(now.getTime());
    const result: PolicyResult = { allow: summary.allow, violations: [], obligations: [], exceptions: [] };
    const decision: Decision = {
      id,
      decidedAt,
      result,
      value: summary.result,
      defined: true,
      allow: summary.allow,
      revision: { entrypoint: query.entrypoint, revision: engine.ref.revision, digest: engine.ref.digest },
      error: null,
    };
    const record = this.recordOf(engine, query, input, inputJson, {
      id,
      decidedAt,
      allow: summary.allow,
      result: summary.result,
      inputSha256: inputDigest(inputJson),
      exceptions: [],
      shadow: null,
      evalMicros: Math.round((performance.now() - started) * 1000),
      error: null,
    });
    await this.keep([decision], [record], started);
    return { decision, outcome };
  }

  /**
   * Records the decisions' records; throws DecisionUnrecordedError when they cannot be kept (no
   * decision of them may then be answered). The observer sees every decision either way.
   */
  private async keep(decisions: Decision[], records: DecisionRecord[], started: number): Promise<void> {
    try {
      await this.recorder.record(records);
    } catch (err) {
      this.observe(decisions, records, false, started);
      throw new DecisionUnrecordedError({ cause: err });
    }
    this.observe(decisions, records, true, started);
  }

  /** The grants of each contract-surface query; a promise only when one needs the store. */
  private attachGrants(
    grants: DecisionGrants,
    queries: DecisionQuery[],
  ): (AttachedGrants | undefined)[] | Promise<(AttachedGrants | undefined)[]> {
    const attached = queries.map((query) =>
      isContractSurface(query.surface) && isObject(query.input) ? grants.attach(query.input) : undefined,
    );
    return attached.some((a) => a instanceof Promise)
      ? Promise.all(attached)
      : (attached as (AttachedGrants | undefined)[]);
  }

  /** The decisions `settleGrants` must see: those that used an approval or ask for one. */
  private toSettle(queries: DecisionQuery[], decisions: Decision[], inputs: unknown[]): number[] {
    const indexes: number[] = [];
    for (let i = 0; i < decisions.length; i++) {
      const decision = decisions[i]!;
      if (
        isContractSurface(queries[i]!.surface) &&
        isObject(inputs[i]) &&
        needsSettlement(decision.result, decision.allow)
      )
        indexes.push(i);
    }
    return indexes;
  }

  /**
   * Lets the grants settle the decisions that used an approval or ask for one, before anything is
   * recorded: a use that cannot be consumed turns the allow into the fail-closed deny; a deny that
   * asks for a human approval gets its approval request (in the response and in the record).
   */
  private async settleGrants(
    grants: DecisionGrants,
    indexes: number[],
    queries: DecisionQuery[],
    decisions: Decision[],
    records: DecisionRecord[],
    inputs: unknown[],
  ): Promise<void> {
    let settlements: Settlement[];
    try {
      settlements = await grants.settle(
        indexes.map((i) => ({
          decisionId: decisions[i]!.id,
          input: inputs[i] as Record<string, unknown>,
          recordedInput: records[i]!.input,
          caller: queries[i]!.caller,
          result: decisions[i]!.result,
          allow: decisions[i]!.allow,
        })),
      );
    } catch {
      // NOTE: fail closed: an allow that relied on an approval is not answered unless its use was recorded.
      settlements = indexes.map((i) =>
        decisions[i]!.allow
          ? { failClosed: { code: 'approval_unusable', message: 'the approval could not be used' } }
          : {},
      );
    }
    indexes.forEach((i, k) => {
      const settlement = settlements[k] ?? {};
      const decision = decisions[i]!;
      const record = records[i]!;
      if (settlement.failClosed) {
        const { code, message } = settlement.failClosed;
        const result = failClosed(code, message);
        decision.result = result;
        decision.allow = false;
        decision.error = { code, message };
        record.result = result;
        record.allow = false;
        record.exceptions = [];
        record.error = { code, message };
      } else if (settlement.approvalRequest && !decision.allow) {
        const result = { ...decision.result, approval_request: settlement.approvalRequest };
        decision.result = result;
        record.result = result;
      }
    });
  }

  private observe(decisions: Decision[], records: DecisionRecord[], recorded: boolean, started: number) {
    if (!this.onDecision) return;
    const seconds = (performance.now() - started) / 1000;
    for (let i = 0; i < decisions.length; i++) {
      this.onDecision(decisions[i]!, records[i]!, { recorded, seconds });
    }
  }

  /**
   * Builds the policy input (contract surfaces get caller and now) and evaluates it on `engine`
   * through the evaluation core (evaluateDecision). Records nothing.
   */
  private judge(engine: PolicyEngine, query: DecisionQuery, now: Date, grants?: AttachedGrants) {
    const contract = isContractSurface(query.surface);
    // OPA's data API answers any path (undefined when nothing is there); the native and AuthZEN
    // APIs name an entrypoint, and an unknown one is the client's mistake.
    if (contract && !engine.hasEntrypoint(query.entrypoint))
      throw new UnknownEntrypointError(query.entrypoint);
    const decidedAt = now.toISOString();
    // NOTE: `grants`, like `caller` and `now`, is the server's: a client-sent one is dropped.
    let input = contract
      ? withServerFields(
          query.input as Record<string, unknown>,
          query.caller,
          decidedAt,
          now.getTime(),
          grants,
        )
      : query.input;
    // Guardrails (issue 25): content actions get the server's findings; the log keeps them redacted.
    // The scan also makes the input's JSON (and the logged and mask texts) with the content in once.
    let scanned: ScannedInput | undefined;
    if (isContentInput(input)) {
      const scanner =
        this.content instanceof ContentScanners ? this.content.for(engine.bundle.data) : this.content;
      scanned = scanContentInput(input, scanner, { policyReadsText: policyReadsText(engine.bundle.data) });
      input = scanned.input;
    }
    // NOTE: one serialisation serves both the engine and the digest: canonical JSON (RFC 8785) is
    // valid JSON, and hashing it lets an auditor recompute the digest from the stored input.
    const inputJson = scanned ? scanned.inputJson : input === undefined ? undefined : canonicalJson(input);
    const evaluation = evaluateDecision(engine, query.surface, query.entrypoint, inputJson);
    const { result, error, allow } = evaluation;
    return { contract, decidedAt, input, inputJson, evaluation, result, error, allow, scanned };
  }

  private evaluate(
    engine: PolicyEngine,
    shadowEngine: PolicyEngine | null,
    query: DecisionQuery,
    grants: AttachedGrants | undefined,
  ): { decision: Decision; record: DecisionRecord; input: unknown } {
    const now = this.clock();
    const { contract, decidedAt, input, inputJson, evaluation, result, error, allow, scanned } = this.judge(
      engine,
      query,
      now,
      grants,
    );
    const inputSha256 = inputDigest(inputJson);
    const id = decisionId(now.getTime());
    const decision: Decision = {
      id,
      decidedAt,
      result,
      value: evaluation.value,
      defined: evaluation.defined,
      allow,
      revision: { entrypoint: query.entrypoint, revision: engine.ref.revision, digest: engine.ref.digest },
      error,
    };
    // The shadow revision sees the same input text and goes through the same core; it never
    // changes the answer, only what is recorded beside it.
    let shadow = null;
    if (shadowEngine) {
      shadow = evaluateShadow(shadowEngine, query.surface, query.entrypoint, inputJson);
      const direction = divergence(allow, shadow);
      if (direction) this.onShadowDivergence?.({ entrypoint: query.entrypoint, direction });
    }
    const record = this.recordOf(
      engine,
      query,
      input,
      inputJson,
      {
        id,
        decidedAt,
        allow,
        result: contract ? result : (evaluation.value ?? null),
        inputSha256,
        exceptions: result.exceptions,
        shadow,
        evalMicros: evaluation.evalMicros,
        error,
      },
      scanned,
    );
    return { decision, record, input };
  }

  /**
   * The record of a decision: what the query and the engine say, the outcome `fields`, and the
   * input as it may be stored (masked; its canonical JSON reused when masking changed nothing).
   * `scanned`: a content input's texts — what may be stored of it (its findings redacted, masked
   * in turn), that record's JSON and the mask's event.
   */
  private recordOf(
    engine: PolicyEngine,
    query: DecisionQuery,
    input: unknown,
    inputJson: string | undefined,
    fields: Pick<
      DecisionRecord,
      | 'id'
      | 'decidedAt'
      | 'allow'
      | 'result'
      | 'inputSha256'
      | 'exceptions'
      | 'shadow'
      | 'evalMicros'
      | 'error'
    >,
    scanned?: ScannedInput,
  ): DecisionRecord {
    const logged = scanned ? scanned.logged : input;
    const stored = this.masked(engine, logged, inputJson, scanned?.maskEventJson);
    return {
      ...fields,
      surface: query.surface,
      caller: query.caller,
      entrypoint: query.entrypoint,
      bundle: engine.ref,
      ...keysOf(input),
      input: stored,
      // A content input's record text is the logged one (the engine may have read the texts emptied).
      inputJson: stored === logged ? (scanned?.loggedJson ?? inputJson) : undefined,
      traceId: query.traceId,
    };
  }

  private masked(
    engine: PolicyEngine,
    input: unknown,
    inputJson: string | undefined,
    eventJson?: string,
  ): unknown {
    if (input === undefined || inputJson === undefined) return null;
    if (!engine.hasEntrypoint(MASK_ENTRYPOINT)) return input;
    // The mask event wraps the canonical JSON already made for the digest rather than serialising
    // the input a second time (bench/README.md: a few % of a release-gate request).
    const mask = engine.evaluateJson(MASK_ENTRYPOINT, eventJson ?? `{"input":${inputJson}}`);
    // NOTE: when the mask policy itself fails, keep nothing of the input rather than risk storing a
    // secret: the digest still identifies it.
    if (mask.error) return { masked: 'mask policy failed; input withheld' };
    return applyMask(input, maskRules(mask.value)).input;
  }
}
