import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Decision, DecisionService } from '../decisions/service.ts';
import { type JsonLimits, parseJsonText } from './body.ts';
import { traceIdOf } from './envelope.ts';
import { toProblem } from './errors.ts';
import { type Problem, ProblemError } from './problem.ts';

/** OPA's error codes, used on this surface so that OPA clients understand our errors. */
function opaCode(status: number): string {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 429) return 'too_many_requests';
  if (status >= 500) return 'internal_error';
  return 'invalid_parameter';
}

const API_USAGE_WARNING = {
  code: 'api_usage_warning',
  message: "'input' key missing from the request",
};

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

/**
 * Errors on the OPA surfaces carry OPA's {code, message} next to the problem fields, so that both OPA
 * client libraries and problem+json readers understand them. Registered in each OPA route plugin.
 */
export function registerOpaErrors(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const { problem, headers } = toProblem(error);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    reply.headers(headers);
    return reply
      .code(problem.status)
      .type(`${opaErrorMediaType(request)}; charset=utf-8`)
      .send({
        ...problem,
        code: opaCode(problem.status),
        verdict_code: problem.code,
        message: problem.detail ?? problem.title,
      });
  });
}

/**
 * The policy failed while evaluating (OPA: 500 `internal_error`), as opposed to being undefined
 * (200 without `result`). The decision was recorded as a deny with its error; the answer names it
 * by `decision_id` and carries no policy internals (docs/decisions/0007-data-api-evaluation-errors.md).
 */
export function evaluationFailed(decisionId: string): ProblemError {
  return new ProblemError(500, 'evaluation_error', 'error(s) occurred while evaluating the policy', {
    decision_id: decisionId,
    errors: [
      {
        code: 'evaluation_error',
        message: 'the policy failed to evaluate; the decision record holds the error',
      },
    ] as unknown as Problem['errors'],
  });
}

/** True when the decision is a failed evaluation rather than a value or an undefined document. */
export function isEvaluationFailure(decision: Decision): boolean {
  return decision.error?.code === 'evaluation_error';
}

/** The `{path}` of an OPA route: segments of letters, digits and `_` (400 `invalid_path` otherwise). */
export function dataPathOf(request: FastifyRequest): string {
  const raw = (request.params as { '*': string })['*'] ?? '';
  const path = raw.replace(/^\/+|\/+$/g, '');
  if (!/^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/.test(path)) {
    throw new ProblemError(400, 'invalid_path', 'the data path must be segments of letters, digits and _');
  }
  return path;
}

/**
 * The OPA REST API's data surface: POST /v1/data/{path} with {"input": …} and
 * GET /v1/data/{path}?input=<json>. Answers {"result": …, "decision_id": …}, or only
 * {"decision_id": …} when the policy is undefined for that input, as OPA does; a policy that fails
 * while evaluating is a 500 `internal_error` naming the (recorded, denied) decision.
 */
export async function dataRoutes(
  app: FastifyInstance,
  opts: { decisions: DecisionService; jsonLimits: JsonLimits },
): Promise<void> {
  const { decisions, jsonLimits } = opts;
  registerOpaErrors(app);

  const answer = async (
    request: FastifyRequest,
    reply: FastifyReply,
    path: string,
    input: unknown,
    warn: boolean,
  ) => {
    const decision = await decisions.decide({
      surface: 'data',
      entrypoint: path,
      input,
      caller: request.caller,
      traceId: traceIdOf(request),
    });
    if (isEvaluationFailure(decision)) throw evaluationFailed(decision.id);
    const body: Record<string, unknown> = { decision_id: decision.id };
    if (decision.defined) body.result = decision.value;
    if (warn) body.warning = API_USAGE_WARNING;
    return reply.send(body);
  };

  const pathOf = dataPathOf;

  app.post(
    '/v1/data/*',
    {
      config: { scope: 'decisions:evaluate' },
      schema: {
        summary: 'OPA-compatible policy query',
        tags: ['opa'],
        body: { type: 'object', additionalProperties: true },
      },
    },
    async (request, reply) => {
      const body = request.body as Record<string, unknown>;
      const hasInput = Object.hasOwn(body, 'input');
      return answer(request, reply, pathOf(request), hasInput ? body.input : undefined, !hasInput);
    },
  );

  app.get(
    '/v1/data/*',
    {
      config: { scope: 'decisions:evaluate' },
      schema: { summary: 'OPA-compatible policy query (input in the query string)', tags: ['opa'] },
    },
    async (request, reply) => {
      const raw = (request.query as Record<string, unknown>).input;
      let input: unknown;
      if (typeof raw === 'string') {
        // The same limits as a body: this JSON reaches the policy and the audit record just the same.
        input = parseJsonText(raw, jsonLimits, 'the input query parameter');
      } else if (raw !== undefined) {
        throw new ProblemError(400, 'invalid_request', 'give the input query parameter once');
      }
      return answer(request, reply, pathOf(request), input, raw === undefined);
    },
  );
}
