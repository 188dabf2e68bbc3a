import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DecisionService } from '../decisions/service.ts';
import { type JsonLimits, parseJsonText } from './body.ts';
import { traceIdOf } from './envelope.ts';
import { toProblem } from './errors.ts';
import { ProblemError } from './problem.ts';

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
 * The OPA REST API's data surface: POST /v1/data/{path} with {"input": …} and
 * GET /v1/data/{path}?input=<json>. Answers {"result": …, "decision_id": …}, or only
 * {"decision_id": …} when the policy is undefined for that input, as OPA does.
 */
export async function dataRoutes(
  app: FastifyInstance,
  opts: { decisions: DecisionService; jsonLimits: JsonLimits },
): Promise<void> {
  const { decisions, jsonLimits } = opts;

  // NOTE: errors on this surface carry OPA's {code, message} next to the problem fields, so that both
  // OPA client libraries and problem+json readers understand them.
  app.setErrorHandler((error, request, reply) => {
    const { problem, headers } = toProblem(error);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    reply.headers(headers);
    return reply
      .code(problem.status)
      .type('application/problem+json; charset=utf-8')
      .send({
        ...problem,
        code: opaCode(problem.status),
        verdict_code: problem.code,
        message: problem.detail ?? problem.title,
      });
  });

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
    const body: Record<string, unknown> = { decision_id: decision.id };
    if (decision.defined) body.result = decision.value;
    if (warn) body.warning = API_USAGE_WARNING;
    return reply.send(body);
  };

  const pathOf = (request: FastifyRequest): string => {
    const raw = (request.params as { '*': string })['*'] ?? '';
    const path = raw.replace(/^\/+|\/+$/g, '');
    if (!/^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/.test(path)) {
      throw new ProblemError(400, 'invalid_path', 'the data path must be segments of letters, digits and _');
    }
    return path;
  };

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
