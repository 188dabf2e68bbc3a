import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DecisionUnrecordedError, UnknownEntrypointError } from '../decisions/service.ts';
import { type Problem, ProblemError, problem, sendProblem } from './problem.ts';
import { REQUEST_ID_HEADER } from './request-id.ts';

/**
 * Maps any error to a problem: 4xx with a stable code and a safe detail; 5xx with nothing internal.
 * Returns null for errors it does not know (→ 500 internal_error).
 */
export function toProblem(error: unknown): { problem: Problem; headers: Record<string, string> } {
  if (error instanceof ProblemError) {
    return { problem: problem(error.status, error.code, error.message, error.extra), headers: error.headers };
  }
  if (error instanceof DecisionUnrecordedError) {
    return {
      problem: problem(503, 'audit_unavailable', 'the decision could not be recorded; denied (fail closed)'),
      headers: { 'retry-after': '1' },
    };
  }
  if (error instanceof UnknownEntrypointError) {
    return { problem: problem(404, 'unknown_entrypoint', error.message), headers: {} };
  }
  const fe = error as FastifyError & { validation?: SchemaError[]; validationContext?: string };
  if (fe.validation) {
    return {
      problem: problem(400, 'invalid_request', 'the request does not match the schema', {
        errors: fe.validation.slice(0, 20).map((v) => schemaErrorEntry(v, fe.validationContext)),
      }),
      headers: {},
    };
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        problem: problem(413, 'body_too_large', 'the request body is larger than allowed'),
        headers: {},
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        problem: problem(415, 'unsupported_media_type', 'send application/json'),
        headers: {},
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { problem: problem(400, 'empty_body', 'the JSON body is empty'), headers: {} };
    // Fastify's own JSON parser (replaced by src/http/body.ts, kept here should a scope restore it)
    // reports proto poisoning and bad syntax alike with this code.
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { problem: problem(400, 'malformed_json', 'the body is not valid JSON'), headers: {} };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return {
        problem: problem(400, 'invalid_content_length', 'content-length does not match the body'),
        headers: {},
      };
  }
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
  return {
    problem: problem(500, 'internal_error', 'an internal error occurred; it was logged'),
    headers: {},
  };
}

/** What Fastify's validator (Ajv) reports for one schema violation. */
interface SchemaError {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: { additionalProperty?: unknown };
}

/** Longest client-sent name echoed in an error entry; a longer one is cut (it is still refused). */
const MAX_NAME_IN_ERROR = 64;

/**
 * One `errors[]` entry. An unknown property or query parameter is named in its path and message
 * (`?limt=5` → `{path: "/limt", message: "unknown query parameter 'limt'"}`), not reported at `/`
 * where the client cannot tell which of its parameters was refused.
 */
function schemaErrorEntry(v: SchemaError, context: string | undefined): { path: string; message: string } {
  const extra = v.params?.additionalProperty;
  if (v.keyword === 'additionalProperties' && typeof extra === 'string') {
    const name = extra.length > MAX_NAME_IN_ERROR ? `${extra.slice(0, MAX_NAME_IN_ERROR)}…` : extra;
    const pointer = name.replaceAll('~', '~0').replaceAll('/', '~1');
    const what = context === 'querystring' ? 'query parameter' : 'property';
    return { path: `${v.instancePath ?? ''}/${pointer}`, message: `unknown ${what} '${name}'` };
  }
  return { path: v.instancePath || '/', message: v.message ?? 'invalid' };
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

/** One error handler and one not-found handler for the whole app (routes may scope their own). */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request: FastifyRequest, reply: FastifyReply) => {
    const { problem: body, headers } = toProblem(error);
    if (body.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.code }, 'request refused');
    reply.headers(headers);
    return sendProblem(reply, body);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
