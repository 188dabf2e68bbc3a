import { type Exchanger, nodeExchanger } from './node-http.ts';
import type {
  Approval,
  AuditFilter,
  BatchItem,
  BundleChange,
  BundleRevision,
  BundlesStatus,
  DecisionPage,
  DecisionRecord,
  DecisionRequest,
  DecisionResponse,
  DecisionSearchQuery,
  EvaluationRequest,
  EvaluationResponse,
  EvaluationsRequest,
  ExceptionListQuery,
  ExceptionRequest,
  PolicyEvent,
  Problem,
  SearchRequest,
  SearchResponse,
  Violation,
  Waiver,
} from './wire.ts';

/** Where a bearer token comes from: a fixed string, or a provider asked again after a 401. */
export type TokenSource = string | ((options: { refresh: boolean }) => string | Promise<string>);

/** How a call failed before Verdict could answer it. */
export type FailureKind = 'timeout' | 'network' | 'server' | 'rejected' | 'invalid_response';

/** Options of a `VerdictClient`. */
export interface VerdictClientOptions {
  /** Base URL of Verdict, e.g. `http://verdict:8080`. */
  url: string;
  /** The bearer token, or a provider of it. */
  token: TokenSource;
  /** Default per-call timeout in milliseconds (connect, answer and body); default 2000. */
  timeoutMs?: number;
  /** Throw a `VerdictError` instead of answering a fail-closed deny; default false. */
  throwOnError?: boolean;
  /** Extra attempts of a safe read (GET) after a network error, 429, 502, 503 or 504; default 2. */
  retries?: number;
  /** A `fetch` to use instead of the platform's. */
  fetch?: typeof fetch;
  /** Called per request for a W3C `traceparent` when the call passes none (e.g. from OpenTelemetry). */
  traceparent?: () => string | undefined;
}

/** Options of one call. */
export interface CallOptions {
  timeoutMs?: number;
  /** Sent as the `traceparent` header, so the decision's record carries the caller's trace id. */
  traceparent?: string;
  signal?: AbortSignal;
  /** Overrides the client's `throwOnError` for decision calls. */
  throwOnError?: boolean;
}

/** A call that Verdict did not answer with a 2xx, or whose answer could not be read. */
export class VerdictError extends Error {
  readonly kind: FailureKind;
  /** The HTTP status, when there was one. */
  readonly status: number | undefined;
  /** The problem's stable `code`, when Verdict sent one. */
  readonly code: string | undefined;
  readonly problem: Problem | undefined;
  constructor(kind: FailureKind, message: string, status?: number, problem?: Problem) {
    super(message);
    this.name = 'VerdictError';
    this.kind = kind;
    this.status = status;
    this.code = problem?.code;
    this.problem = problem;
  }
}

/** The control a fail-closed deny names: Verdict could not be asked or did not answer. */
export const PDP_UNAVAILABLE = 'PDP-UNAVAILABLE';
/** The control a fail-closed deny names: Verdict refused the request (4xx) or answered garbage. */
export const PDP_REJECTED = 'PDP-REJECTED';

/** A decision Verdict answered. */
export interface Decided extends DecisionResponse {
  decided: true;
}

/**
 * A deny made by the client because Verdict did not answer: a timeout, a network error, a 5xx, a 4xx
 * or an unreadable answer. It is never an allow; `error` says why.
 */
export interface FailedClosed {
  decided: false;
  decision_id: null;
  allow: false;
  violations: Violation[];
  obligations: [];
  exceptions: [];
  error: { kind: FailureKind; message: string; status?: number; code?: string };
}

/** The answer of `decide`: check `allow`; `decided` says whether Verdict made it. */
export type DecisionResult = Decided | FailedClosed;

/** A fail-closed deny for `error`. */
export function failedClosed(error: VerdictError): FailedClosed {
  const unavailable = error.kind === 'timeout' || error.kind === 'network' || error.kind === 'server';
  return {
    decided: false,
    decision_id: null,
    allow: false,
    violations: [
      {
        control: unavailable ? PDP_UNAVAILABLE : PDP_REJECTED,
        message: `no decision from Verdict (${error.kind}): ${error.message}`,
        severity: 'critical',
      },
    ],
    obligations: [],
    exceptions: [],
    error: {
      kind: error.kind,
      message: error.message,
      ...(error.status !== undefined ? { status: error.status } : {}),
      ...(error.code !== undefined ? { code: error.code } : {}),
    },
  };
}

/** An answer: its body read whole, or (streaming) the `fetch` response to read. */
interface Answer {
  status: number;
  response?: Response;
  text?: string;
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const MAX_BACKOFF_MS = 2000;

/** Options of `waitForApproval`. */
export interface WaitForApprovalOptions {
  /** How long to wait for a human, in milliseconds. */
  timeoutMs: number;
  /** Time between two status reads; default 1000. */
  intervalMs?: number;
  signal?: AbortSignal;
  /** Told after each read that found the request still pending. Must not throw. */
  onProgress?: (progress: { elapsedMs: number; timeoutMs: number; approval: Approval | null }) => void;
}

/** How a wait for a human ended: their answer, the request's lapse, or the wait's own timeout. */
export interface ApprovalWait {
  state: 'granted' | 'denied' | 'expired' | 'timed_out';
  /** The approval as last read (null when no read succeeded). */
  approval: Approval | null;
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A request to any Verdict route (see `VerdictClient.call`). */
export interface ApiRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Raw bytes instead of a JSON body (a bundle upload), with their media type. */
  bytes?: { data: Uint8Array; type: string };
  /**
   * Whether the request may be sent again after a failure that may have reached the server. Only
   * reads are: a POST decision that timed out may have been evaluated and recorded (and may have
   * used a one-time approval), so sending it again would record a second decision the caller never
   * saw, or spend the approval twice.
   */
  idempotent: boolean;
}

/** The base URL without trailing slashes; a TypeError naming the value when it is not http(s). */
function baseUrl(value: unknown): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(String(value));
  } catch {
    parsed = undefined;
  }
  if (typeof value !== 'string' || !parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:'))
    throw new TypeError(`VerdictClient: url ${JSON.stringify(value)} is not an http(s) URL`);
  return value.replace(/\/+$/, '');
}

/**
 * Verdict's client. Decision calls (`decide`, `decideMany`, `evaluation`, `evaluations`) fail
 * closed: when Verdict does not answer, they resolve to a deny that says why (or throw, with
 * `throwOnError`). Every other call resolves to Verdict's answer or throws a `VerdictError`.
 */
export class VerdictClient {
  private readonly url: string;
  private readonly tokenSource: TokenSource;
  private readonly timeoutMs: number;
  private readonly throwOnError: boolean;
  private readonly retries: number;
  private readonly fetchImpl: typeof fetch;
  /**
   * Node's transport for answers read whole (src/node-http.ts), once looked up; null when the
   * caller gave a `fetch` (every request goes through it) or off Node.
   */
  private exchange: Exchanger | null | undefined;
  private readonly traceparentOf: (() => string | undefined) | undefined;
  private token: Promise<string> | undefined;

  /** Throws a TypeError when `options.url` is not an http(s) URL: every call would fail otherwise. */
  constructor(options: VerdictClientOptions) {
    this.url = baseUrl(options.url);
    this.tokenSource = options.token;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.throwOnError = options.throwOnError ?? false;
    this.retries = options.retries ?? 2;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.exchange = options.fetch === undefined ? undefined : null;
    this.traceparentOf = options.traceparent;
  }

  /** One decision (`POST /v1/decisions`); never retried, fails closed. */
  async decide(request: DecisionRequest, options: CallOptions = {}): Promise<DecisionResult> {
    try {
      const answer = await this.call<DecisionResponse>(
        { method: 'POST', path: '/v1/decisions', body: request, idempotent: false },
        options,
      );
      if (typeof answer?.allow !== 'boolean' || typeof answer.decision_id !== 'string') {
        throw new VerdictError('invalid_response', 'the answer is not a decision');
      }
      return { ...answer, decided: true };
    } catch (err) {
      return this.failClosed(err, options);
    }
  }

  /**
   * Many decisions in one request (`POST /v1/decisions/batch`), in item order; each is recorded on
   * its own. When the batch fails, every item is a fail-closed deny.
   */
  async decideMany(
    items: BatchItem[],
    options: CallOptions & { defaults?: BatchItem } = {},
  ): Promise<DecisionResult[]> {
    try {
      const answer = await this.call<{ results: DecisionResponse[] }>(
        {
          method: 'POST',
          path: '/v1/decisions/batch',
          body: options.defaults ? { items, defaults: options.defaults } : { items },
          idempotent: false,
        },
        options,
      );
      const results = answer?.results;
      if (
        !Array.isArray(results) ||
        results.length !== items.length ||
        results.some((r) => typeof r?.allow !== 'boolean')
      ) {
        throw new VerdictError('invalid_response', 'the answer is not one decision per item');
      }
      return results.map((result) => ({ ...result, decided: true as const }));
    } catch (err) {
      const denied = this.failClosed(err, options);
      return items.map(() => denied);
    }
  }

  /** AuthZEN 1.0 evaluation; fails closed to `{decision: false, context: {error}}`. */
  async evaluation(request: EvaluationRequest, options: CallOptions = {}): Promise<EvaluationResponse> {
    try {
      const answer = await this.call<EvaluationResponse>(
        { method: 'POST', path: '/access/v1/evaluation', body: request, idempotent: false },
        options,
      );
      if (typeof answer?.decision !== 'boolean') {
        throw new VerdictError('invalid_response', 'the answer is not an AuthZEN decision');
      }
      return answer;
    } catch (err) {
      return { decision: false, context: { error: this.failClosed(err, options).error } };
    }
  }

  /**
   * AuthZEN 1.0 evaluations. With an `evaluations` array the answer has one item per evaluation;
   * when the call fails, each is `{decision: false, context: {error}}`.
   */
  async evaluations(
    request: EvaluationsRequest,
    options: CallOptions = {},
  ): Promise<{ evaluations: EvaluationResponse[] } | EvaluationResponse> {
    try {
      const answer = await this.call<{ evaluations: EvaluationResponse[] } | EvaluationResponse>(
        { method: 'POST', path: '/access/v1/evaluations', body: request, idempotent: false },
        options,
      );
      const items =
        'evaluations' in (answer ?? {}) ? (answer as { evaluations: unknown[] }).evaluations : [answer];
      if (
        !Array.isArray(items) ||
        items.some((i) => typeof (i as EvaluationResponse)?.decision !== 'boolean')
      ) {
        throw new VerdictError('invalid_response', 'the answer is not AuthZEN decisions');
      }
      return answer;
    } catch (err) {
      const error = this.failClosed(err, options).error;
      const count = Array.isArray(request.evaluations) ? request.evaluations.length : 0;
      if (count === 0) return { decision: false, context: { error } };
      return { evaluations: Array.from({ length: count }, () => ({ decision: false, context: { error } })) };
    }
  }

  /** AuthZEN 1.0 search (`subject`, `resource` or `action`); throws when Verdict does not answer. */
  search(kind: 'subject' | 'resource' | 'action', request: SearchRequest, options: CallOptions = {}) {
    return this.call<SearchResponse>(
      { method: 'POST', path: `/access/v1/search/${kind}`, body: request, idempotent: false },
      options,
    );
  }

  /** One page of recorded decisions (`GET /v1/decisions`); retried when safe. */
  searchDecisions(query: DecisionSearchQuery = {}, options: CallOptions = {}) {
    return this.call<DecisionPage>(
      { method: 'GET', path: '/v1/decisions', query: { ...query }, idempotent: true },
      options,
    );
  }

  /** Every recorded decision matching `query`, page by page. */
  async *allDecisions(
    query: DecisionSearchQuery = {},
    options: CallOptions = {},
  ): AsyncGenerator<DecisionRecord> {
    let cursor = query.cursor;
    for (;;) {
      const page = await this.searchDecisions({ ...query, ...(cursor ? { cursor } : {}) }, options);
      yield* page.items;
      if (!page.has_more || !page.next_cursor) return;
      cursor = page.next_cursor;
    }
  }

  /** One recorded decision (`GET /v1/decisions/{id}`). */
  getDecision(id: string, options: CallOptions = {}) {
    return this.call<DecisionRecord>(
      { method: 'GET', path: `/v1/decisions/${encodeURIComponent(id)}`, idempotent: true },
      options,
    );
  }

  /** Re-evaluates a recorded decision on its stored and on the active revision; records nothing. */
  replay(id: string, options: CallOptions = {}) {
    return this.call<Record<string, unknown>>(
      { method: 'POST', path: `/v1/decisions/${encodeURIComponent(id)}/replay`, idempotent: false },
      options,
    );
  }

  /** The hash-chain verification report (`GET /v1/audit/verify`). */
  verifyAudit(query: { from?: string; to?: string } = {}, options: CallOptions = {}) {
    return this.call<{ ok: boolean; [key: string]: unknown }>(
      { method: 'GET', path: '/v1/audit/verify', query: { ...query }, idempotent: true },
      options,
    );
  }

  /**
   * The audit export as NDJSON records (`GET /v1/audit/export`), read as the body streams in. The
   * timeout covers the response's headers only: an export may take long.
   */
  async *exportAudit(filter: AuditFilter = {}, options: CallOptions = {}): AsyncGenerator<DecisionRecord> {
    const response = await this.stream(
      { method: 'GET', path: '/v1/audit/export', query: { ...filter, format: 'ndjson' }, idempotent: true },
      options,
    );
    if (!response.body) return;
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield JSON.parse(line) as DecisionRecord;
        newline = buffered.indexOf('\n');
      }
    }
    buffered += decoder.decode();
    if (buffered.trim()) yield JSON.parse(buffered) as DecisionRecord;
  }

  /** The audit export as CSV text. */
  async exportAuditCsv(filter: AuditFilter = {}, options: CallOptions = {}): Promise<string> {
    const response = await this.stream(
      { method: 'GET', path: '/v1/audit/export', query: { ...filter, format: 'csv' }, idempotent: true },
      options,
    );
    return response.text();
  }

  // Policy bundles (issue 12): scopes bundles:write / bundles:read.

  /** Uploads a bundle (`POST /v1/bundles`); with `activate`, activates it in the same call. */
  pushBundle(
    bundle: Uint8Array,
    options: CallOptions & { activate?: boolean; reason?: string; expectedActive?: string } = {},
  ) {
    return this.call<BundleRevision>(
      {
        method: 'POST',
        path: '/v1/bundles',
        bytes: { data: bundle, type: 'application/gzip' },
        query: {
          activate: options.activate ? 'true' : undefined,
          reason: options.reason,
          expected_active: options.expectedActive,
        },
        idempotent: false,
      },
      options,
    );
  }

  /** Stored revisions, newest first. */
  listBundles(query: { limit?: string; before?: string } = {}, options: CallOptions = {}) {
    return this.call<{ revisions: BundleRevision[] }>(
      { method: 'GET', path: '/v1/bundles', query: { ...query }, idempotent: true },
      options,
    );
  }

  /** One revision by digest. */
  getBundle(digest: string, options: CallOptions = {}) {
    return this.call<BundleRevision>(
      { method: 'GET', path: `/v1/bundles/${encodeURIComponent(digest)}`, idempotent: true },
      options,
    );
  }

  /**
   * Activates a stored revision on every replica. `expectedActive` (a digest, or null for none yet) makes
   * it a compare-and-set: 409 when another change came first. A rollback is the activation of the
   * previous digest.
   */
  activateBundle(
    digest: string,
    options: CallOptions & { reason?: string; expectedActive?: string | null } = {},
  ) {
    return this.call<BundleChange>(
      {
        method: 'POST',
        path: `/v1/bundles/${encodeURIComponent(digest)}/activate`,
        body: {
          ...(options.reason ? { reason: options.reason } : {}),
          ...(options.expectedActive !== undefined ? { expected_active: options.expectedActive } : {}),
        },
        idempotent: false,
      },
      options,
    );
  }

  /** Evaluates a revision in shadow beside the active one; `null` stops shadowing. */
  shadowBundle(digest: string | null, options: CallOptions & { reason?: string } = {}) {
    if (digest === null) {
      return this.call<BundleChange>(
        {
          method: 'DELETE',
          path: '/v1/bundles/shadow',
          query: { reason: options.reason },
          idempotent: false,
        },
        options,
      );
    }
    return this.call<BundleChange>(
      {
        method: 'POST',
        path: `/v1/bundles/${encodeURIComponent(digest)}/shadow`,
        body: options.reason ? { reason: options.reason } : {},
        idempotent: false,
      },
      options,
    );
  }

  /** The desired state and every live replica. */
  bundleStatus(options: CallOptions = {}) {
    return this.call<BundlesStatus>({ method: 'GET', path: '/v1/bundles/status', idempotent: true }, options);
  }

  /** The chained policy events, newest first. */
  bundleEvents(query: { action?: string; limit?: string; before?: string } = {}, options: CallOptions = {}) {
    return this.call<{ events: PolicyEvent[] }>(
      { method: 'GET', path: '/v1/bundles/events', query: { ...query }, idempotent: true },
      options,
    );
  }

  // Waivers (issue 13): scopes exceptions:request / exceptions:approve.

  /** Requests a waiver of a control; it is pending until approved. */
  requestException(request: ExceptionRequest, options: CallOptions = {}) {
    return this.call<Waiver>(
      { method: 'POST', path: '/v1/exceptions', body: request, idempotent: false },
      options,
    );
  }

  /** Waivers, newest first. */
  listExceptions(query: ExceptionListQuery = {}, options: CallOptions = {}) {
    return this.call<{ exceptions: Waiver[] }>(
      { method: 'GET', path: '/v1/exceptions', query: { ...query }, idempotent: true },
      options,
    );
  }

  /** One waiver with its history. */
  getException(id: string, options: CallOptions = {}) {
    return this.call<Waiver>(
      { method: 'GET', path: `/v1/exceptions/${encodeURIComponent(id)}`, idempotent: true },
      options,
    );
  }

  /** Approves, rejects or revokes a waiver (reject and revoke need a reason). */
  decideException(
    id: string,
    verb: 'approve' | 'reject' | 'revoke',
    reason?: string,
    options: CallOptions = {},
  ) {
    return this.call<Waiver>(
      {
        method: 'POST',
        path: `/v1/exceptions/${encodeURIComponent(id)}/${verb}`,
        body: reason ? { reason } : {},
        idempotent: false,
      },
      options,
    );
  }

  // Human approvals (issue 13): approvals:grant; the status needs decisions:evaluate.

  /** One approval request and its history: what a deny's `approval_request.status_url` names. */
  getApproval(id: string, options: CallOptions = {}) {
    return this.call<Approval>(
      { method: 'GET', path: `/v1/approvals/${encodeURIComponent(id)}`, idempotent: true },
      options,
    );
  }

  /**
   * Waits until a human decides approval request `id` (or it lapses), asking its status every
   * `intervalMs` (default 1000): resolves `granted`, `denied` or `expired` with the approval as last
   * read, or `timed_out` when `timeoutMs` passed first while it was still pending. A status read
   * that fails (Verdict briefly unreachable) is tried again at the next tick; a 4xx (an unknown id,
   * a token without the scope) rejects. `signal` aborts the wait (rejects with its reason);
   * `onProgress` is told after every read, e.g. to send MCP progress notifications.
   */
  async waitForApproval(id: string, options: WaitForApprovalOptions): Promise<ApprovalWait> {
    const { timeoutMs, signal, onProgress } = options;
    const intervalMs = Math.max(10, options.intervalMs ?? 1000);
    const started = Date.now();
    let approval: Approval | null = null;
    for (;;) {
      signal?.throwIfAborted();
      try {
        approval = await this.getApproval(id, { ...(signal ? { signal } : {}) });
      } catch (err) {
        signal?.throwIfAborted();
        if (err instanceof VerdictError && err.kind === 'rejected') throw err;
      }
      const elapsedMs = Date.now() - started;
      if (approval && approval.state !== 'pending') {
        return { state: approval.state as ApprovalWait['state'], approval };
      }
      onProgress?.({ elapsedMs, timeoutMs, approval });
      const left = timeoutMs - elapsedMs;
      if (left <= 0) return { state: 'timed_out', approval };
      await sleep(Math.min(intervalMs, left), signal);
    }
  }

  /** Approval requests, newest first. */
  listApprovals(
    query: { state?: 'pending' | 'granted' | 'denied' | 'expired'; limit?: string } = {},
    options: CallOptions = {},
  ) {
    return this.call<{ approvals: Approval[] }>(
      { method: 'GET', path: '/v1/approvals', query: { ...query }, idempotent: true },
      options,
    );
  }

  /** Grants or denies an approval request (a human principal, not the agent). */
  decideApproval(id: string, verb: 'approve' | 'deny', reason?: string, options: CallOptions = {}) {
    return this.call<Approval>(
      {
        method: 'POST',
        path: `/v1/approvals/${encodeURIComponent(id)}/${verb}`,
        body: reason ? { reason } : {},
        idempotent: false,
      },
      options,
    );
  }

  /**
   * Sends a request to any Verdict route and resolves its parsed JSON answer; throws `VerdictError`.
   * The typed methods are built on it; use it for routes this version of the client does not name.
   */
  async call<T>(request: ApiRequest, options: CallOptions = {}): Promise<T> {
    const { status, text = '' } = await this.send(request, options, { streaming: false });
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new VerdictError('invalid_response', 'the answer is not JSON', status);
    }
  }

  private failClosed(err: unknown, options: CallOptions): FailedClosed {
    const error =
      err instanceof VerdictError
        ? err
        : new VerdictError('invalid_response', (err as Error)?.message ?? String(err));
    if (options.throwOnError ?? this.throwOnError) throw error;
    return failedClosed(error);
  }

  private currentToken(refresh: boolean): Promise<string> {
    if (typeof this.tokenSource === 'string') return Promise.resolve(this.tokenSource);
    if (refresh || !this.token) {
      const source = this.tokenSource;
      const pending = Promise.resolve().then(() => source({ refresh }));
      // A provider that fails is asked again on the next call, not cached as a failure.
      pending.catch(() => {
        if (this.token === pending) this.token = undefined;
      });
      this.token = pending;
    }
    return this.token;
  }

  /** A 2xx answer whose body the caller reads as it streams in (always through `fetch`). */
  private async stream(request: ApiRequest, options: CallOptions): Promise<Response> {
    const { response } = await this.send(request, options, { streaming: true });
    if (!response) throw new VerdictError('invalid_response', 'no response body to stream');
    return response;
  }

  /**
   * Sends `request` with the timeout, the token (asked again once after a 401: a 401 is answered
   * before anything is evaluated, so this is safe for any method) and, for idempotent requests,
   * retries with a capped exponential backoff. Resolves a 2xx response (with its body read unless
   * streaming); throws `VerdictError` for anything else.
   */
  private async send(
    request: ApiRequest,
    options: CallOptions,
    mode: { streaming: boolean },
  ): Promise<Answer> {
    let refreshed = false;
    let attempt = 0;
    for (;;) {
      try {
        return await this.attempt(request, options, mode, refreshed);
      } catch (err) {
        const error = err as VerdictError;
        if (error.status === 401 && typeof this.tokenSource === 'function' && !refreshed) {
          refreshed = true;
          continue;
        }
        const retryable =
          error.kind === 'network' ||
          error.kind === 'timeout' ||
          (error.status !== undefined && RETRYABLE_STATUS.has(error.status));
        if (!request.idempotent || !retryable || attempt >= this.retries || options.signal?.aborted)
          throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(MAX_BACKOFF_MS, 100 * 2 ** attempt)));
        attempt += 1;
      }
    }
  }

  private async attempt(
    request: ApiRequest,
    options: CallOptions,
    mode: { streaming: boolean },
    refresh: boolean,
  ): Promise<Answer> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new VerdictError('timeout', `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
    try {
      let token: string;
      try {
        token = await this.currentToken(refresh);
      } catch (err) {
        throw new VerdictError('rejected', `the token provider failed: ${(err as Error)?.message ?? err}`);
      }
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
      };
      const traceparent = options.traceparent ?? this.traceparentOf?.();
      if (traceparent) headers.traceparent = traceparent;
      if (request.bytes) headers['content-type'] = request.bytes.type;
      else if (request.body !== undefined) headers['content-type'] = 'application/json';
      const url = new URL(`${this.url}${request.path}`);
      for (const [key, value] of Object.entries(request.query ?? {})) {
        if (value !== undefined) url.searchParams.set(key, value);
      }
      const body = request.bytes
        ? request.bytes.data
        : request.body === undefined
          ? undefined
          : JSON.stringify(request.body);
      // On Node, an answer read whole goes over node:http (src/node-http.ts): the same request.
      if (this.exchange === undefined) this.exchange = (await nodeExchanger()) ?? null;
      const exchange = mode.streaming ? null : this.exchange;
      let status: number;
      let statusText: string;
      let response: Response | undefined;
      let text: string | undefined;
      try {
        if (exchange) {
          ({ status, statusText, text } = await exchange(url, {
            method: request.method,
            headers,
            body,
            signal,
          }));
        } else {
          response = await this.fetchImpl(url, {
            method: request.method,
            headers,
            body: body as string | Uint8Array<ArrayBuffer> | undefined,
            signal,
          });
          ({ status, statusText } = response);
        }
      } catch (err) {
        throw this.transportError(err, signal);
      }
      if (status < 200 || status > 299) {
        const problemText = text ?? (await response?.text().catch(() => '')) ?? '';
        let problem: Problem | undefined;
        try {
          problem = JSON.parse(problemText) as Problem;
        } catch {
          problem = undefined;
        }
        const kind: FailureKind = status >= 500 ? 'server' : 'rejected';
        const detail = problem?.detail ?? problem?.title ?? statusText;
        throw new VerdictError(
          kind,
          `${status}${problem?.code ? ` ${problem.code}` : ''}: ${detail}`,
          status,
          typeof problem?.code === 'string' ? problem : undefined,
        );
      }
      if (response && mode.streaming) return { status, response };
      if (text === undefined) {
        try {
          text = await response!.text();
        } catch (err) {
          throw this.transportError(err, signal);
        }
      }
      return { status, text };
    } finally {
      // NOTE: a streamed export outlives the timeout; only its headers are timed.
      clearTimeout(timer);
    }
  }

  private transportError(err: unknown, signal: AbortSignal): VerdictError {
    if (err instanceof VerdictError) return err;
    if (signal.aborted && signal.reason instanceof VerdictError) return signal.reason;
    if (signal.aborted)
      return new VerdictError('timeout', `aborted: ${String(signal.reason ?? 'by the caller')}`);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    // fetch wraps the socket's error in `cause`; node:http throws it as it is.
    const code = (err as { code?: unknown })?.code;
    const reason =
      cause?.code ??
      cause?.message ??
      (typeof code === 'string' ? code : undefined) ??
      (err as Error)?.message ??
      String(err);
    return new VerdictError('network', `cannot reach Verdict: ${reason}`);
  }
}
