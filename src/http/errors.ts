import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Static } from 'typebox';
import { type Problem, ProblemError, problem, sendProblem } from './problem.ts';
import { REQUEST_ID_HEADER } from './request-id.ts';
import type { ItemErrorV1, OpaErrorDetailV1, OpaErrorV1 } from './wire/index.ts';

/**
 * The kinds of refusal a domain error declares, and the one place their HTTP status is chosen:
 * domain code names what went wrong, never a status (Cerbos' rule: errors become codes at the
 * boundary).
 */
export const STATUS_OF_KIND = {
  invalid: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
} as const;

export type RefusalKind = keyof typeof STATUS_OF_KIND;

/**
 * What a domain error carries to become a problem. Domain folders never import the HTTP layer, so
 * their errors satisfy this shape structurally (src/bundles/lifecycle.ts `RevisionNotFoundError`,
 * src/grants/grant-error.ts `GrantError`, …): a stable `code` (documented in docs/api.md), the
 * `kind` of refusal (its status is STATUS_OF_KIND's), and a `message` safe to show to the client —
 * it becomes the problem's `detail`.
 */
export interface DomainRefusal {
  readonly code: string;
  readonly kind: RefusalKind;
  readonly message: string;
  /** The request parameter at fault: named in `errors[]` (`{path: "/<parameter>", message}`). */
  readonly parameter?: string;
  /** Problem extension members, safe to show (e.g. a conflict's `active` revision). */
  readonly problemExtensions?: Readonly<Record<string, unknown>>;
  /** For an `unavailable` refusal: when to retry (the `Retry-After` header). */
  readonly retryAfterSeconds?: number;
}

/** True when the error declares a code and a kind of refusal (see DomainRefusal). */
export function isDomainRefusal(error: unknown): error is Error & DomainRefusal {
  return (
    error instanceof Error &&
    'code' in error &&
    typeof error.code === 'string' &&
    'kind' in error &&
    typeof error.kind === 'string' &&
    Object.hasOwn(STATUS_OF_KIND, error.kind)
  );
}

/** A problem and the headers that go with it. */
export interface MappedProblem {
  problem: Problem;
  headers: Record<string, string>;
}

/**
 * THE mapping from any error to a problem: 4xx with a stable code and a safe detail; 5xx with
 * nothing internal. An error it does not know is a 500 `internal_error` (logged, never shown).
 */
export function toProblem(error: unknown): MappedProblem {
  if (error instanceof ProblemError) {
    return { problem: problem(error.status, error.code, error.message, error.extra), headers: error.headers };
  }
  if (isDomainRefusal(error)) return refusalProblem(error);
  if (typeof error !== 'object' || error === null) return internalError();
  const fe = error as Partial<FastifyError> & { validation?: SchemaError[]; validationContext?: string };
  if (fe.validation) {
    return {
      problem: problem(400, 'invalid_request', 'the request does not match the schema', {
        errors: fe.validation.slice(0, 20).map((v) => schemaErrorEntry(v, fe.validationContext)),
      }),
      headers: {},
    };
  }
  const known = fe.code === undefined ? undefined : FASTIFY_CODES[fe.code];
  if (known) return withStatus(known);
  if (
    fe.statusCode === 400 &&
    (fe.name === 'SyntaxError' || /JSON|prototype|constructor/i.test(fe.message ?? ''))
  ) {
    const forbidden = /prototype|constructor/i.test(fe.message ?? '');
    return {
      problem: forbidden
        ? problem(
            400,
            'forbidden_key',
            'the body contains a forbidden key (__proto__ or constructor.prototype)',
          )
        : problem(400, 'malformed_json', 'the body is not valid JSON'),
      headers: {},
    };
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { problem: problem(fe.statusCode, 'bad_request', 'the request was not accepted'), headers: {} };
  }
  return internalError();
}

/** Anything unknown: a 500 that says nothing of it (the error is logged with the request id). */
function internalError(): MappedProblem {
  return {
    problem: problem(500, 'internal_error', 'an internal error occurred; it was logged'),
    headers: {},
  };
}

function refusalProblem(error: DomainRefusal): MappedProblem {
  const status = STATUS_OF_KIND[error.kind];
  const extra: Partial<Problem> = { ...error.problemExtensions };
  if (error.parameter !== undefined) extra.errors = [{ path: `/${error.parameter}`, message: error.message }];
  const headers: Record<string, string> =
    error.retryAfterSeconds === undefined ? {} : { 'retry-after': String(error.retryAfterSeconds) };
  return { problem: problem(status, error.code, error.message, extra), headers };
}

/** Fastify's own errors that Verdict answers with its codes: status, code, detail. */
const FASTIFY_CODES: Record<string, readonly [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'body_too_large', 'the request body is larger than allowed'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'send application/json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'empty_body', 'the JSON body is empty'],
  // Fastify's own JSON parser (replaced by src/http/body.ts, kept here should a scope restore it)
  // reports proto poisoning and bad syntax alike with this code.
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'malformed_json', 'the body is not valid JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [
    400,
    'invalid_content_length',
    'content-length does not match the body',
  ],
};

function withStatus([status, code, detail]: readonly [number, string, string]): MappedProblem {
  return { problem: problem(status, code, detail), headers: {} };
}

/** What Fastify's validator (Ajv) reports for one schema violation. */
interface SchemaError {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: { additionalProperty?: unknown; missingProperty?: unknown };
}

/** Longest client-sent name echoed in an error entry; a longer one is cut (it is still refused). */
const MAX_NAME_IN_ERROR = 64;

/**
 * One `errors[]` entry. An unknown property or query parameter is named in its path and message
 * (`?limt=5` → `{path: "/limt", message: "unknown query parameter 'limt'"}`), not reported at `/`
 * where the client cannot tell which of its parameters was refused; a missing one likewise.
 */
function schemaErrorEntry(v: SchemaError, context: string | undefined): { path: string; message: string } {
  const extra = v.params?.additionalProperty;
  if (v.keyword === 'additionalProperties' && typeof extra === 'string') {
    const name = extra.length > MAX_NAME_IN_ERROR ? `${extra.slice(0, MAX_NAME_IN_ERROR)}…` : extra;
    const pointer = name.replaceAll('~', '~0').replaceAll('/', '~1');
    const what = context === 'querystring' ? 'query parameter' : 'property';
    return { path: `${v.instancePath ?? ''}/${pointer}`, message: `unknown ${what} '${name}'` };
  }
  const missing = v.params?.missingProperty;
  if (v.keyword === 'required' && typeof missing === 'string') {
    const name = missing.length > MAX_NAME_IN_ERROR ? `${missing.slice(0, MAX_NAME_IN_ERROR)}…` : missing;
    const pointer = name.replaceAll('~', '~0').replaceAll('/', '~1');
    return { path: `${v.instancePath ?? ''}/${pointer}`, message: `missing required property '${name}'` };
  }
  return { path: v.instancePath || '/', message: v.message ?? 'invalid' };
}

/**
 * How a surface words the same problem:
 * - `problem`: RFC 9457 as mapped (every native, auditor, bundle and grant route);
 * - `authzen`: AuthZEN answers 400 to any body it cannot read, so a 415 becomes a 400 (same code);
 * - `opa`: OPA's `{code, message}` beside the problem fields (docs/api.md, "Errors").
 */
export type ErrorDialect = 'problem' | 'authzen' | 'opa';

/**
 * The error of one item of a batch that answers per item (AuthZEN evaluations): the item is a deny
 * carrying this, never a failed batch.
 */
export function itemError(error: unknown): Static<typeof ItemErrorV1> {
  const { problem: mapped } = toProblem(error);
  return {
    status: mapped.status,
    code: mapped.code,
    message: mapped.detail ?? mapped.title,
    ...(mapped.errors ? { errors: mapped.errors } : {}),
  };
}

/** OPA's errors[] entry of a policy that failed while evaluating: no policy internals (ADR 0007). */
export const EVALUATION_ERROR_DETAIL: Static<typeof OpaErrorDetailV1> = {
  code: 'evaluation_error',
  message: 'the policy failed to evaluate; the decision record holds the error',
};

/** The answer of a policy that failed while evaluating on the OPA surfaces (ADR 0007). */
export const EVALUATION_ERROR_MESSAGE = 'error(s) occurred while evaluating the policy';

/**
 * The policy failed while evaluating (OPA: 500 `internal_error`), as opposed to being undefined
 * (200 without `result`). The decision was recorded as a deny with its error; the answer names it
 * by `decision_id` and carries no policy internals (docs/decisions/0007-data-api-evaluation-errors.md).
 */
export function evaluationFailed(decisionId: string): ProblemError {
  return new ProblemError(500, 'evaluation_error', EVALUATION_ERROR_MESSAGE, { decision_id: decisionId });
}

/** OPA's error codes, used on the OPA surfaces so that OPA clients understand our errors. */
function opaCode(status: number): string {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 429) return 'too_many_requests';
  if (status >= 500) return 'internal_error';
  return 'invalid_parameter';
}

/** A problem in OPA's words too; an evaluation error lists OPA's `{code, message}` entry. */
function opaErrorOf(mapped: Problem): Static<typeof OpaErrorV1> {
  return {
    ...mapped,
    code: opaCode(mapped.status),
    verdict_code: mapped.code,
    message: mapped.detail ?? mapped.title,
    ...(mapped.code === 'evaluation_error' ? { errors: [EVALUATION_ERROR_DETAIL] } : {}),
  };
}

/**
 * OPA clients (the `@open-policy-agent/opa` SDK among them) send `Accept: application/json` and read
 * an error body only when it comes as exactly that type. The body is the same either way (problem
 * fields and OPA's): it is labelled `application/json` for a client that asks for JSON and not for
 * problem+json, and `application/problem+json` otherwise (no Accept, `*\/*`, or problem+json asked).
 */
function opaErrorMediaType(request: FastifyRequest): string {
  const accept = (request.headers.accept ?? '').toLowerCase();
  return accept.includes('application/json') && !accept.includes('application/problem+json')
    ? 'application/json'
    : 'application/problem+json';
}

/** Answers an error: mapped by toProblem, logged, worded in the surface's dialect. */
export function answerError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  dialect: ErrorDialect = 'problem',
): FastifyReply {
  const { problem: mapped, headers } = toProblem(error);
  if (mapped.status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: mapped.code }, 'request refused');
  reply.headers(headers);
  if (dialect === 'opa') {
    return reply
      .code(mapped.status)
      .type(`${opaErrorMediaType(request)}; charset=utf-8`)
      .send(opaErrorOf(mapped));
  }
  if (dialect === 'authzen' && mapped.status === 415) {
    return sendProblem(reply, problem(400, mapped.code, mapped.detail));
  }
  return sendProblem(reply, mapped);
}

/**
 * The errors of a route plugin's scope are answered in this dialect (the app's root answers
 * problems; OPA and AuthZEN plugins call this for theirs).
 */
export function useErrorDialect(app: Parameters<FastifyPluginAsyncTypebox>[0], dialect: ErrorDialect): void {
  app.setErrorHandler((error, request, reply) => answerError(error, request, reply, dialect));
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing, where no hook runs (a malformed URL:
 * `FST_ERR_BAD_URL`, `FST_ERR_MAX_PARAM_LENGTH`). Answered as problem+json with the request id,
 * instead of Fastify's default body, which reflects the raw path.
 */
export function answerFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const { problem: body, headers } = toProblem(error);
  request.log.info({ code: error.code }, 'request refused');
  reply.header(REQUEST_ID_HEADER, request.id).headers(headers);
  sendProblem(reply, body);
}

/** One error handler and one not-found handler for the whole app (plugins may change the dialect). */
export function registerErrorHandling(app: Parameters<FastifyPluginAsyncTypebox>[0]): void {
  app.setErrorHandler((error, request, reply) => answerError(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
